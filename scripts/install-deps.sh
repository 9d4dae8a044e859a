#!/usr/bin/env bash
# Installs what Sono's build and tests need on a Debian machine, and nothing that is there
# already. Run by `make` before every build; quiet when nothing is missing.
set -euo pipefail

packages=(
    pkg-config gcc make
    libserialport-dev     # serial transport (SonoDevices)
    libusb-1.0-0-dev      # USB transport (SonoDevices)
    umockdev libumockdev-dev  # emulated devices for hardware-free tests
    zlib1g-dev            # PNG frames and key frames (SonoImaging), CRC-32 of MCAP files (SonoRecord)
    libzstd-dev           # zstd-compressed MCAP chunks of session recordings (SonoRecord)
    libdnnl-dev           # oneDNN: the view classifier's inference (SonoVision)
    systemd               # systemd-analyze, -sysusers, -tmpfiles (make test-systemd), systemd-socket-activate
    time                  # /usr/bin/time: make bench-replay's CPU and memory figures
    udev                  # udevadm test: the udev rules on emulated devices (make test-systemd)
    chromium              # headless rendering of the session report (make test-report), the console's browser tests
    chromium-driver       # WebDriver for chromium: the console's browser tests (make test-console, Selenium)
    fonts-liberation      # the report's font (Arial metrics); a Recommends of chromium, not pulled in here
    openssl               # the console's HTTPS test makes its certificate and keys (make test-console)
)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "install-deps: missing Debian packages: ${missing[*]}" >&2
        echo "install-deps: run as root, or: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v swift >/dev/null 2>&1; then
    if [[ -x /opt/swift/usr/bin/swift ]]; then
        echo "install-deps: swift is at /opt/swift/usr/bin; add it to PATH" >&2
    else
        echo "install-deps: Swift 6.1 or newer is required (swift.org toolchain for Debian)" >&2
    fi
    exit 1
fi

# Python tooling, pinned: the golden-vector cross-check (tools/requirements.txt), the
# onnxruntime parity check of the view classifier (tools/vision/requirements.txt), the
# control-API document check (tools/api/requirements.txt) and the MCAP recordings' check with
# the reference reader (tools/record/requirements.txt).
python=${PYTHON:-python3}
if ! "$python" - <<'PY' 2>/dev/null
import importlib.metadata as m, pathlib, sys
lines = pathlib.Path("tools/requirements.txt").read_text().splitlines()
lines += pathlib.Path("tools/vision/requirements.txt").read_text().splitlines()
lines += pathlib.Path("tools/api/requirements.txt").read_text().splitlines()
lines += pathlib.Path("tools/record/requirements.txt").read_text().splitlines()
lines += pathlib.Path("tools/console/requirements.txt").read_text().splitlines()
for line in lines:
    line = line.split("#")[0].strip()
    if not line:
        continue
    name, _, version = line.partition("==")
    if m.version(name) != version:
        sys.exit(1)
PY
then
    echo "install-deps: installing Python tooling from tools/requirements.txt, tools/vision/, tools/api/ and tools/record/"
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        -r tools/requirements.txt -r tools/vision/requirements.txt -r tools/api/requirements.txt \
        -r tools/record/requirements.txt -r tools/console/requirements.txt
fi
