#!/usr/bin/env bash
# Checks an installed Sono tree (`make test-systemd` stages one with `make install-files
# DESTDIR=ROOT`) with systemd's own tools, without a running systemd or udev and without touching
# this machine's configuration:
#   1. systemd-sysusers --root: sono.sysusers creates the account and both groups;
#   2. systemd-tmpfiles --root --create: sono.tmpfiles creates the directories, modes and owners
#      the units expect;
#   3. systemd-analyze verify --root: the units load without a warning, their dependencies
#      resolve, and ExecStart's binary exists and is executable (fails on any finding);
#   4. systemd-analyze security --offline: the service's exposure score (informational);
#   5. the udev rules through udev's real rule engine (`udevadm test`) on umockdev-emulated boards
#      and probe: names, group, mode and the ModemManager opt-out. udevadm 252 has no `verify`,
#      and `udevadm test` writes its results (symlinks in /dev, the database in /run/udev), so it
#      runs in a private mount namespace where /dev, /run, /etc/udev/rules.d and the account
#      files are throwaway copies;
#   6. the service binary (ExecStart's /usr/bin/sonod) carries no test bench: ldd lists no
#      libumockdev, and no symbol of the simulator's modules (SonoSim, SonoTestbed, SonoSimHost)
#      is linked into it.
# Usage: scripts/test-systemd.sh ROOT
set -euo pipefail

root=${1:?usage: scripts/test-systemd.sh ROOT}
root=$(realpath "$root")
unitdir=/usr/lib/systemd/system
failures=0
fail() { echo "test-systemd: FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "test-systemd: ok: $*"; }

# 1. Accounts. The host's account files (not its shadow files) are copied in so that sysusers
#    sees the real dialout group.
mkdir -p "$root/etc"
cp /etc/passwd /etc/group "$root/etc/"
rm -f "$root/etc/shadow" "$root/etc/gshadow"
output=$(systemd-sysusers --root="$root" 2>&1) || { echo "$output" >&2; fail "systemd-sysusers"; }
group_entry() { grep "^$1:" "$root/etc/group" || true; }
sono_gid=$(group_entry sono | cut -d: -f3)
[[ -n $sono_gid ]] && grep -q "^sono:x:[0-9]*:$sono_gid:" "$root/etc/passwd" \
    && pass "sysusers: user and group sono (gid $sono_gid)" || fail "sysusers: no user/group sono"
[[ -n $(group_entry sono-operators) ]] && pass "sysusers: group sono-operators" || fail "sysusers: no group sono-operators"
[[ $(group_entry dialout | cut -d: -f4) =~ (^|,)sono(,|$) ]] && pass "sysusers: sono in dialout" || fail "sysusers: sono not in dialout"

# 2. Directories.
output=$(systemd-tmpfiles --root="$root" --create 2>&1) || { echo "$output" >&2; fail "systemd-tmpfiles --create"; }
check_dir() {
    # Owners resolve through the root's account files, not this machine's: compare numerically.
    local mode=$2 user=$3 group=$4
    local uid gid actual
    uid=$(if [[ $user == root ]]; then echo 0; else grep "^$user:" "$root/etc/passwd" | cut -d: -f3; fi)
    gid=$(if [[ $group == root ]]; then echo 0; else group_entry "$group" | cut -d: -f3; fi)
    actual=$(stat -c '%a %u %g' "$root$1" 2>/dev/null || echo missing)
    [[ $actual == "$mode $uid $gid" ]] && pass "tmpfiles: $1 $mode $user:$group" \
        || fail "tmpfiles: $1 is '$actual', expected '$mode $uid $gid' ($user:$group)"
}
check_dir /run/sono 755 root root
check_dir /var/lib/sono 750 sono sono
check_dir /var/lib/sono/sessions 750 sono sono

# 3. The units. verify prints nothing when all is well; any finding is a non-zero exit.
echo "test-systemd: systemd-analyze verify --root=$root $unitdir/sono.service $unitdir/sono.socket"
if output=$(systemd-analyze verify --root="$root" "$unitdir/sono.service" "$unitdir/sono.socket" 2>&1) \
        && [[ -z $output ]]; then
    pass "systemd-analyze verify: sono.service sono.socket"
else
    echo "$output" >&2
    fail "systemd-analyze verify"
fi

# 4. Exposure score, informational (the daemon needs real-time scheduling, its devices and
#    netlink, so it cannot score like a network-less batch job).
score=$(systemd-analyze security --offline=yes --root="$root" --no-pager sono.service 2>&1 | grep "Overall exposure level") \
    || score="(systemd-analyze security --offline printed no score)"
echo "test-systemd: info: ${score#→ }"

# 5. udev rules.
rules=$root/usr/lib/udev/rules.d/99-sono.rules
scratch=$(mktemp -d)
trap 'rm -rf --one-file-system "$scratch"' EXIT
mkdir -p "$scratch/rules" "$scratch/hostdev"
cp "$rules" "$scratch/rules/"
# Two boards, the probe and a stranger (an Arduino's CDC-ACM port), as the kernel shows them in
# sysfs: usb_device -> interface -> ttyACM*.
cat >"$scratch/devices.umockdev" <<'EOF'
P: /devices/usb1/1-1/1-1:1.0/tty/ttyACM0
N: ttyACM0
E: DEVNAME=/dev/ttyACM0
E: SUBSYSTEM=tty
E: MAJOR=166
E: MINOR=0
A: dev=166:0
L: device=../../../1-1:1.0

P: /devices/usb1/1-1/1-1:1.0
E: DEVTYPE=usb_interface
E: DRIVER=cdc_acm
E: SUBSYSTEM=usb
A: bInterfaceClass=02
A: bInterfaceNumber=00

P: /devices/usb1/1-1
N: bus/usb/001/002
E: DEVNAME=/dev/bus/usb/001/002
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
E: MAJOR=189
E: MINOR=1
A: dev=189:1
A: idVendor=1209
A: idProduct=5302
A: busnum=1
A: devnum=2

P: /devices/usb1/1-2/1-2:1.0/tty/ttyACM1
N: ttyACM1
E: DEVNAME=/dev/ttyACM1
E: SUBSYSTEM=tty
E: MAJOR=166
E: MINOR=1
A: dev=166:1
L: device=../../../1-2:1.0

P: /devices/usb1/1-2/1-2:1.0
E: DEVTYPE=usb_interface
E: DRIVER=cdc_acm
E: SUBSYSTEM=usb
A: bInterfaceClass=02
A: bInterfaceNumber=00

P: /devices/usb1/1-2
N: bus/usb/001/003
E: DEVNAME=/dev/bus/usb/001/003
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
E: MAJOR=189
E: MINOR=2
A: dev=189:2
A: idVendor=1209
A: idProduct=5301
A: busnum=1
A: devnum=3

P: /devices/usb1/1-3
N: bus/usb/001/004
E: DEVNAME=/dev/bus/usb/001/004
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
E: MAJOR=189
E: MINOR=3
A: dev=189:3
A: idVendor=1209
A: idProduct=5310
A: busnum=1
A: devnum=4

P: /devices/usb1/1-4/1-4:1.0/tty/ttyACM2
N: ttyACM2
E: DEVNAME=/dev/ttyACM2
E: SUBSYSTEM=tty
E: MAJOR=166
E: MINOR=2
A: dev=166:2
L: device=../../../1-4:1.0

P: /devices/usb1/1-4/1-4:1.0
E: DEVTYPE=usb_interface
E: DRIVER=cdc_acm
E: SUBSYSTEM=usb
A: bInterfaceClass=02
A: bInterfaceNumber=00

P: /devices/usb1/1-4
N: bus/usb/001/005
E: DEVNAME=/dev/bus/usb/001/005
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
E: MAJOR=189
E: MINOR=4
A: dev=189:4
A: idVendor=2341
A: idProduct=0043
A: busnum=1
A: devnum=5

P: /devices/usb1
E: DEVTYPE=usb_device
E: SUBSYSTEM=usb
A: idVendor=1d6b
A: idProduct=0002
A: busnum=1
A: devnum=1
EOF

# One `udevadm test` per device, in a private mount namespace: /dev and /run are fresh tmpfs
# (/dev with the host's null, zero, full, random, urandom and tty bound in, and a new devpts
# instance for umockdev's PTYs), the only local rules are Sono's, and the account files are the
# root's (so GROUP="sono" resolves). The system's own rules in /usr/lib/udev/rules.d run too, as
# on a real machine: Sono's must win over them (50-udev-default.rules gives ttyACM* to dialout).
if ! unshare --mount --propagation private -- bash -euc '
    scratch=$1 root=$2
    mount --rbind /dev "$scratch/hostdev"
    mount -t tmpfs tmpfs /dev
    for node in null zero full random urandom tty; do
        touch "/dev/$node"
        mount --bind "$scratch/hostdev/$node" "/dev/$node"
    done
    mkdir /dev/pts /dev/shm
    mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts /dev/pts
    ln -s pts/ptmx /dev/ptmx
    mount -t tmpfs tmpfs /dev/shm
    mount -t tmpfs tmpfs /run
    mount --bind "$scratch/rules" /etc/udev/rules.d
    mount --bind "$root/etc/passwd" /etc/passwd
    mount --bind "$root/etc/group" /etc/group
    for device in usb1/1-1/1-1:1.0/tty/ttyACM0 usb1/1-2/1-2:1.0/tty/ttyACM1 usb1/1-3 usb1/1-4/1-4:1.0/tty/ttyACM2; do
        log=$scratch/$(basename "$device").log
        umockdev-run -d "$scratch/devices.umockdev" -- udevadm test --action=add "/sys/devices/$device" \
            >"$log" 2>&1 || echo "udevadm test exited with status $?" >>"$log"
    done
' _ "$scratch" "$root"; then
    fail "udev: could not run udevadm test in a private mount namespace (needs root and unshare)"
fi

if grep -h "^/etc/udev/rules.d/99-sono.rules:" "$scratch"/*.log | sort -u | grep . >&2; then
    fail "udev: 99-sono.rules does not parse cleanly (above)"
fi
# $1 device log, $2 expected link ('' for none), $3 group id, $4 mode, $5 ModemManager opt-out
check_device() {
    local log=$scratch/$1.log name=$1 link=$2 gid=$3 mode=$4 mm=$5
    [[ -s $log ]] || { fail "udev: $name: no udevadm output"; return; }
    local links group_set mode_set mm_set
    links=$(grep "^DEVLINKS=" "$log" | cut -d= -f2- || true)
    group_set=$(grep -E "^$name: .* GROUP [0-9]+$" "$log" | tail -1 | awk '{print $NF}' || true)
    mode_set=$(grep -E "^$name: .* MODE [0-7]+$" "$log" | tail -1 | awk '{print $NF}' || true)
    mm_set=$(grep -c "^ID_MM_DEVICE_IGNORE=1$" "$log" || true)
    local problems=()
    if [[ -n $link ]]; then
        [[ " $links " == *" /dev/$link "* ]] || problems+=("links '$links' lack /dev/$link")
    else
        [[ $links != *sono-* ]] || problems+=("a stranger got a Sono name: '$links'")
    fi
    [[ $group_set == "$gid" ]] || problems+=("group $group_set, expected $gid")
    [[ -z $mode || $mode_set == "$mode" ]] || problems+=("mode $mode_set, expected $mode")
    [[ $mm_set -eq $mm ]] || problems+=("ID_MM_DEVICE_IGNORE=1 $( ((mm)) && echo missing || echo unexpected)")
    if ((${#problems[@]})); then
        tail -40 "$log" >&2
        fail "udev: $name: $(IFS=';'; echo "${problems[*]}")"
    else
        pass "udev: $name -> ${link:-no Sono name}, gid $gid, mode ${mode:-default}$( ((mm)) && echo ", ModemManager ignores it")"
    fi
}
dialout_gid=$(group_entry dialout | cut -d: -f3)
check_device ttyACM0 sono-arm "$sono_gid" 0600 1
check_device ttyACM1 sono-force "$sono_gid" 0600 1
check_device 1-3 sono-probe "$sono_gid" 0600 0
check_device ttyACM2 "" "$dialout_gid" "" 0

# 6. The service binary. Swift mangles a module's name as <length><name> in every symbol it
#    defines, so `nm` finds any code of those modules that was linked in.
service_binary="$root/usr/bin/sonod"
libraries=$(ldd "$service_binary") || fail "ldd $service_binary"
if grep -qi umockdev <<<"$libraries"; then
    fail "sonod links libumockdev: $(grep -i umockdev <<<"$libraries" | tr -s ' \t' ' ')"
else
    pass "sonod: ldd lists no libumockdev ($(wc -l <<<"$libraries") libraries)"
fi
for module in SonoSim SonoTestbed SonoSimHost; do
    count=$(nm "$service_binary" | grep -c "${#module}${module}[A-Z0-9_]" || true)
    ((count == 0)) && pass "sonod: no symbol of $module" || fail "sonod: $count symbols of $module are linked in"
done

if ((failures)); then
    echo "test-systemd: $failures check(s) failed" >&2
    exit 1
fi
echo "test-systemd: all checks passed"
