# Sono — build, test and demo. `make demo` and `make test` do all set-up on a fresh Debian
# machine (as root); see README.md.

SHELL        := /bin/bash
SWIFT        ?= swift
PYTHON       ?= python3
BUILD_FLAGS  ?=
DEBUG_BIN     = .build/debug
RELEASE_BIN   = .build/release
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 5
# The Swift test suites' passes. Every suite of `swift test list` runs in exactly one of them:
# test-passes checks that first thing in `make test` (scripts/test-passes.py), naming any suite
# left out or run twice. Suites that need umockdev's LD_PRELOAD run one at a time under
# umockdev-wrapper (test-emulated); they are those whose @Suite is gated on the preload
# (`.enabled(if: EmulatedSerialBench.isPreloaded ...)`), listed from the sources, not by hand.
EMULATED_SUITES := $(shell $(PYTHON) scripts/test-passes.py emulated)
EMULATED_TESTS   = $(subst $(eval) ,|,$(strip $(EMULATED_SUITES)))
VISION_TESTS     = OnnxRuntimeParityTests
RECORD_TESTS     = SonoRecordTests
REPORT_TESTS     = SonoReportTests
USB_REPLAY_TESTS = ProbeCaptureTests
# Suites that run whole simulated daemons (sonod-sim, its 1 kHz loop and emulated boards in real
# time): alone, not beside test-swift's parallel suites, whose load on a 2-core machine can push
# the simulation past its stale-data deadlines and end a scan early.
DAEMON_SUITES    = DaemonProcessTests RecordingReplayTests
DAEMON_TESTS     = $(subst $(eval) ,|,$(strip $(DAEMON_SUITES)))
# test-swift runs everything the other passes do not.
SEPARATE_TESTS   = $(EMULATED_TESTS)|$(VISION_TESTS)|$(RECORD_TESTS)|$(REPORT_TESTS)|$(USB_REPLAY_TESTS)|$(DAEMON_TESTS)

.PHONY: all deps build demo test test-modules test-passes test-swift test-daemon test-emulated test-faults test-c test-vectors fuzz fuzz-build fuzz-smoke \
        bench bench-codec bench-safety bench-loop bench-stop bench-link bench-sim bench-eval bench-vision bench-record bench-replay bench-usb bench-usb-path bench-api bench-console \
        test-vision test-record test-report test-usb-emulation test-usb-replay eval-vision test-systemd test-api test-console install install-files scan-eval sim-eval scan-soak soak crash-soak demo-devlab \
        sheets clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

# The main job: sonod-sim (sonod's daemon body on the virtual patient) scans the default patient
# on its own (PLAX, PSAX, A4C, A2C) through the real serial drivers, control loop, classifier and
# planner, and prints the scan's summary.
# The run is recorded (MCAP); the recording is then replayed (every stream must come out identical)
# and turned into an HTML report.
demo: build
	rm -rf .build/demo-recordings
	$(DEBUG_BIN)/sonod-sim --scan PLAX,PSAX,A4C,A2C --exit-when-done --summary .build/demo-summary.json \
		--recordings .build/demo-recordings
	$(DEBUG_BIN)/sonoctl replay .build/demo-recordings/*.mcap
	$(DEBUG_BIN)/sonoctl session report .build/demo-recordings/*.mcap --out .build/demo-report.html
	@echo "summary: .build/demo-summary.json; recording: .build/demo-recordings/; report: .build/demo-report.html;" \
		"the session's events and key frames: /tmp/sono-sessions/"

# The device-lab walk-throughs the demo ran before the daemon: the link demo and the patient tour.
demo-devlab: build
	umockdev-wrapper $(DEBUG_BIN)/sono-devlab demo
	umockdev-wrapper $(DEBUG_BIN)/sono-devlab patient

# The autonomous scan on every shipped patient (sonod-sim, the same drivers and loop as
# hardware), then success rate, median time per view and the maximum force over all of them.
SCAN_EVAL_DIR = .build/scan-eval
scan-eval: build
	@mkdir -p $(SCAN_EVAL_DIR)
	@for p in hardware/patients/*.toml; do \
		n=$$(basename $$p .toml); echo "== $$n"; \
		$(DEBUG_BIN)/sonod-sim $$p --scan PLAX,PSAX,A4C,A2C --exit-when-done \
			--summary $(SCAN_EVAL_DIR)/$$n.json --socket /tmp/sono-scan-eval.sock 2>/dev/null | head -1; \
	done
	$(DEBUG_BIN)/sonoctl scan summarize $(SCAN_EVAL_DIR)/*.json

# Whole autonomous scans in simulated time (sonoctl sim eval: the planner, classifier and motion
# core against the simulated boards, stepped at 1 kHz, no threads or wall clock) on random patients
# unseen in training: per view success rate, false acquisitions by the simulator's true quality,
# time to acquire and the true maximum force; the worst patients; summaries in SIM_EVAL_DIR.
# Not in make test (100 patients on 2 jobs: 10–20 minutes on the 2-core machine, as loaded).
SIM_EVAL_DIR      = .build/sim-eval
SIM_EVAL_PATIENTS ?= 100
SIM_EVAL_JOBS     ?= 2
SIM_EVAL_SEED     ?= 0
sim-eval: deps
	$(SWIFT) build -c release --product sonoctl
	rm -rf $(SIM_EVAL_DIR)
	$(RELEASE_BIN)/sonoctl sim eval --patients $(SIM_EVAL_PATIENTS) --jobs $(SIM_EVAL_JOBS) --seed $(SIM_EVAL_SEED) \
		--out $(SIM_EVAL_DIR)

# Whole scans back to back through the real-time daemon path, quiet and then beside a parallel
# build of this package (issue 16, finding 15): 0 stops, faults or lease expiries, and the oldest
# inputs the interlocks saw against their deadlines. Not in make test (about 45 min for 20 + 20).
SOAK_SCANS ?= 20
scan-soak: build
	$(PYTHON) scripts/scan-soak.py --scans $(SOAK_SCANS)
	$(PYTHON) scripts/scan-soak.py --scans $(SOAK_SCANS) --load build

# One sonod-sim run of SOAK_MINUTES: whole scans back to back on a random patient through the
# control API, polled throughout; a row a minute (RSS, descriptors, threads, recording bytes, loop
# overruns, stops, faults), then the growth slopes after the warm-up against their bounds, and the
# recording checked complete and replayed identical (issue 18). Not in make test. The release
# build, as the service ships: a soak is about what runs for weeks.
SOAK_MINUTES ?= 30
SOAK_SEED    ?= 0
soak: deps
	$(SWIFT) build -c release --product sonod-sim
	$(SWIFT) build -c release --product sonoctl
	$(PYTHON) scripts/soak.py --minutes $(SOAK_MINUTES) --seed $(SOAK_SEED) \
		--sim $(RELEASE_BIN)/sonod-sim --sonoctl $(RELEASE_BIN)/sonoctl

# sonod-sim killed with SIGKILL at CRASH_KILLS random moments of recorded scans: every recording
# recovered (sonoctl session recover) with at most its last chunk lost, and the restarted daemon
# up with the drives off, as counts (issue 18). Not in make test (100 kills: about 25 minutes on
# the 2-core machine, shared).
CRASH_KILLS ?= 100
CRASH_SEED  ?= 0
crash-soak: build
	$(PYTHON) scripts/crash-soak.py --kills $(CRASH_KILLS) --seed $(CRASH_SEED)

test: deps test-modules test-passes test-c test-usb-emulation test-vectors test-swift test-daemon test-usb-replay test-systemd test-api test-console test-vision test-record test-report test-emulated test-faults fuzz-smoke
	@echo "make test: all passed"

# Fault injection on the emulated stack (issue 16): one table row per scenario, fault → safe
# state and the contact force at the end; fails on any row that does not hold.
test-faults: build
	umockdev-wrapper $(DEBUG_BIN)/sono-devlab faults

# Installation: sonod and sonoctl (release builds), their data, the systemd units and the system
# integration files; README.md, "Install as a service". DESTDIR (a staging root) and PREFIX are
# honoured. The configuration always goes to /etc/sono/sono.toml (sonod's --config default), from
# systemd/sono.toml.example and only when there is none yet. sonod's built-in data paths are
# /usr/share/sono/...: with a PREFIX other than /usr, set sono.toml's [files] to match.
PREFIX     ?= /usr
DESTDIR    ?=
SYSCONFDIR ?= /etc
BINDIR      = $(PREFIX)/bin
DATADIR     = $(PREFIX)/share/sono
UNITDIR     = $(PREFIX)/lib/systemd/system
# The binaries install-files copies; test-systemd points it at the debug build.
INSTALL_BIN    ?= $(RELEASE_BIN)
CONFIG_EXAMPLE ?= systemd/sono.toml.example

install: deps
	$(SWIFT) build -c release --product sonod
	$(SWIFT) build -c release --product sonoctl
	$(MAKE) --no-print-directory install-files

install-files:
	install -D -m 0755 $(INSTALL_BIN)/sonod $(DESTDIR)$(BINDIR)/sonod
	install -D -m 0755 $(INSTALL_BIN)/sonoctl $(DESTDIR)$(BINDIR)/sonoctl
	install -d -m 0755 $(DESTDIR)$(DATADIR)/patients $(DESTDIR)$(DATADIR)/models
	install -m 0644 hardware/arm.toml hardware/safety.toml hardware/safety-simulation.toml hardware/scan-prior.toml $(DESTDIR)$(DATADIR)/
	install -m 0644 hardware/patients/*.toml $(DESTDIR)$(DATADIR)/patients/
	install -m 0644 models/view-classifier.onnx $(DESTDIR)$(DATADIR)/models/
	install -m 0644 $(CONFIG_EXAMPLE) $(DESTDIR)$(DATADIR)/sono.toml.example
	install -d -m 0755 $(DESTDIR)$(DATADIR)/console
	install -m 0644 console/index.html console/console.css console/console.js $(DESTDIR)$(DATADIR)/console/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/sono/sono.toml ]; then \
		echo "install: keeping $(DESTDIR)$(SYSCONFDIR)/sono/sono.toml (new example: $(DATADIR)/sono.toml.example)"; \
	else \
		echo "install -D -m 0644 $(CONFIG_EXAMPLE) $(DESTDIR)$(SYSCONFDIR)/sono/sono.toml"; \
		install -D -m 0644 $(CONFIG_EXAMPLE) $(DESTDIR)$(SYSCONFDIR)/sono/sono.toml; \
	fi
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|^ExecStart=/usr/bin/sonod |ExecStart=$(BINDIR)/sonod |' systemd/sono.service > $(DESTDIR)$(UNITDIR)/sono.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sono.service
	install -m 0644 systemd/sono.socket $(DESTDIR)$(UNITDIR)/sono.socket
	install -D -m 0644 systemd/sono.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/sono.conf
	install -D -m 0644 systemd/sono.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/sono.conf
	install -D -m 0644 systemd/sono.modules-load $(DESTDIR)$(PREFIX)/lib/modules-load.d/sono.conf
	install -D -m 0644 hardware/udev/99-sono.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/99-sono.rules
	@echo "install: done; to start the service see README.md, \"Install as a service\""

# The installed service, checked without booting it (systemd is not PID 1 here). The tree checked
# is what `make install` lays out, staged into $(SYSTEMD_ROOT) by install-files, with the debug
# build's sonod and sonoctl in place of the release ones (the same sources; a release build is
# too slow for every test run). Everything runs against that root: systemd-analyze verify
# --root= loads the units from it and checks there that ExecStart's /usr/bin/sonod exists and is
# executable, so the real binary sits at the real path and nothing on this machine is touched.
# The host's own unit files are copied in first, since the units' default dependencies
# (sysinit.target, sockets.target, ...) must resolve inside the root. scripts/test-systemd.sh
# says what else it checks: sysusers, tmpfiles, verify, the exposure score, and the udev rules.
SYSTEMD_ROOT = .build/systemd-root
test-systemd: build
	rm -rf $(SYSTEMD_ROOT)
	mkdir -p $(SYSTEMD_ROOT)/usr/lib/systemd/system
	cp -a /usr/lib/systemd/system/. $(SYSTEMD_ROOT)/usr/lib/systemd/system/
	$(MAKE) --no-print-directory install-files DESTDIR=$(SYSTEMD_ROOT) PREFIX=/usr INSTALL_BIN=$(DEBUG_BIN) >/dev/null
	scripts/test-systemd.sh $(SYSTEMD_ROOT)

# The module graph of Package.swift against docs/ARCHITECTURE.md: every target has a layer, no
# dependency points against the data flow, the service binary links no simulation module.
test-modules: deps
	$(PYTHON) scripts/check-modules.py

# The control API's OpenAPI document: valid OpenAPI 3.1, and its routes are the server's
# (docs/control-api-routes.txt, which SonoDaemonTests checks against the router). Then the API
# attacked from that document (issue 18): schemathesis (PyPI, pinned in tools/api/requirements.txt)
# against a running sonod-sim, every route but the event stream, positive and negative data,
# stateful links, all its checks, one worker and a fixed seed (API_FUZZ_SEED), bounded to
# API_FUZZ_TIMEOUT s; fails on any failed check, any 5xx, an event that disagrees with the
# document, a refused request after which the arm is not where it was, or a daemon that died
# (tools/api/fuzz_api.py). Last, slow, stalled and half-open clients must cost bounded memory
# (tools/api/stream_limits.py, about 50 s). One simulated daemon at a time, like test-daemon.
API_FUZZ_SEED     ?= 18
API_FUZZ_EXAMPLES ?= 100
API_FUZZ_TIMEOUT  ?= 240
test-api: deps
	$(PYTHON) tools/api/check_openapi.py
	$(SWIFT) build --product sonod-sim $(BUILD_FLAGS)
	$(PYTHON) tools/api/fuzz_api.py --sim $(DEBUG_BIN)/sonod-sim --seed $(API_FUZZ_SEED) \
		--max-examples $(API_FUZZ_EXAMPLES) --timeout $(API_FUZZ_TIMEOUT)
	$(PYTHON) tools/api/stream_limits.py --sim $(DEBUG_BIN)/sonod-sim

# The shipped view classifier, and the fixture with the optional quality output (random weights,
# tools/vision/make_quality_fixture.py), against onnxruntime (PyPI) on the same frames: every
# output (logits, and quality where the model has it) within 1e-4.
VISION_MODEL = models/view-classifier.onnx
VISION_QUALITY_FIXTURE = Tests/SonoVisionTests/Fixtures/view-classifier-quality.onnx
test-vision: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(PYTHON) tools/vision/parity_reference.py --model $(VISION_MODEL) --out .build/ort-reference.json \
		Tests/SonoVisionTests/Fixtures/*.png
	$(PYTHON) tools/vision/parity_reference.py --model $(VISION_QUALITY_FIXTURE) --out .build/ort-reference-quality.json \
		Tests/SonoVisionTests/Fixtures/*.png
	SONO_ORT_REFERENCE=.build/ort-reference.json SONO_PARITY_MODEL=$(VISION_MODEL) \
		SONO_ORT_QUALITY_REFERENCE=.build/ort-reference-quality.json $(SWIFT) test --skip-build --filter '$(VISION_TESTS)'

# The operator web console in a real browser (issue 19): Debian's chromium through chromium-driver,
# driven by Selenium (PyPI, pinned in tools/console/requirements.txt), against a running sonod-sim:
# the page, the live image (>= 10 changes in 1 s), the force chart, STOP (Esc) -> protective stop
# within 200 ms on the Unix socket, a viewer's disabled controls and 403, no cookie -> 401, no
# CSRF token or a foreign Origin -> 403, expired and used login URLs refused
# (tools/console/test_console.py). Then beyond loopback: a non-loopback listen without TLS
# refused at start, bad certificate/key pairs keep the console shut, and with a fresh
# self-signed pair the page over https, its live stream over wss, Secure cookies, TLS >= 1.2 and
# the scheme in the Origin check (tools/console/test_console_tls.py). One simulated daemon at a
# time, like test-daemon.
test-console: deps
	$(SWIFT) build --product sonod-sim $(BUILD_FLAGS)
	$(PYTHON) tools/console/test_console.py --sim $(DEBUG_BIN)/sonod-sim
	$(PYTHON) tools/console/test_console_tls.py --sim $(DEBUG_BIN)/sonod-sim

# The console's cost (issue 19): a simulated scan with no console, with 3 raw stream readers, the
# same over HTTPS, then with 3 headless browsers streaming: sonod's CPU (and its event-loop
# threads', which do the streaming), the control loop's overruns, frames/s and image latency in
# each browser.
bench-console: deps
	$(SWIFT) build -c release --product sonod-sim
	$(PYTHON) tools/console/bench_console.py --sim $(RELEASE_BIN)/sonod-sim --seconds 30 --browsers 3

# The MCAP recorder (SonoRecordTests) with the reference Python reader: every record kind, both
# compressions, recovered files and a Python-written file through tools/record/check_mcap.py.
test-record: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	SONO_REQUIRE_PYTHON_MCAP=1 $(SWIFT) test --skip-build --filter '$(RECORD_TESTS)'

# Frame accuracy on the five shipped patients (held out from training), frames the model never saw.
eval-vision: deps
	$(SWIFT) build -c release --product sonoctl
	rm -rf .build/eval-vision
	$(RELEASE_BIN)/sonoctl sim dataset --patients hardware/patients --count 400 --seed 20261127 --out .build/eval-vision >/dev/null
	$(RELEASE_BIN)/sonoctl classify --model $(VISION_MODEL) --eval .build/eval-vision

bench-vision: deps
	$(SWIFT) build -c release --product sonoctl
	$(RELEASE_BIN)/sonoctl classify --model $(VISION_MODEL) --bench --iterations 2000 --python $(PYTHON)
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target ViewClassification

# Every suite of `swift test list` in exactly one pass: each --run below is one `swift test
# --filter` of a target here, --rest is test-swift's `--skip`.
TEST_LIST = .build/test-list.txt
test-passes: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(SWIFT) test list --skip-build > $(TEST_LIST)
	$(PYTHON) scripts/test-passes.py check $(TEST_LIST) --rest 'test-swift=$(SEPARATE_TESTS)' \
		$(foreach suite,$(EMULATED_SUITES),--run 'test-emulated=$(suite)') --run 'test-vision=$(VISION_TESTS)' \
		--run 'test-record=$(RECORD_TESTS)' --run 'test-report=$(REPORT_TESTS)' --run 'test-usb-replay=$(USB_REPLAY_TESTS)' \
		$(foreach suite,$(DAEMON_SUITES),--run 'test-daemon=$(suite)')

test-swift: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	SONO_REQUIRE_PYTHON_MCAP=1 $(SWIFT) test --skip-build --skip '$(SEPARATE_TESTS)'

# The daemon as a process (DAEMON_SUITES above), one suite after the other.
test-daemon: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	for suite in $(DAEMON_SUITES); do \
		SONO_REQUIRE_PYTHON_MCAP=1 $(SWIFT) test --skip-build --filter "$$suite" || exit 1; \
	done

# The session report (SonoReport): its unit tests, and the fixture session's page rendered by
# headless Chromium (plots and key frames in the DOM, a screenshot that is not blank). Chromium
# must be there: SONO_REQUIRE_CHROMIUM=1 turns the browser test's skip into a failure.
test-report: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	SONO_REQUIRE_CHROMIUM=1 $(SWIFT) test --skip-build --filter '$(REPORT_TESTS)'

test-emulated: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	@# One suite at a time: each runs simulated boards in real time, and two at once on a
	@# 2-core machine starve umockdev's relay thread.
	@test -n "$(strip $(EMULATED_SUITES))" || { echo "test-emulated: no suite found (scripts/test-passes.py emulated)"; exit 1; }
	for suite in $(EMULATED_SUITES); do \
		SONO_REQUIRE_UMOCKDEV=1 umockdev-wrapper $(SWIFT) test --skip-build --filter "$$suite" || exit 1; \
	done

test-c: deps
	$(MAKE) -C firmware-protocol/c test

# libusb driving an emulated USB probe under umockdev (firmware-protocol/USB-EMULATION.md).
test-usb-emulation: deps
	$(MAKE) -C Tests/usb-emulation-probe test

# The USB probe driver on a usbmon capture: sono-devlab writes one from the virtual patient's frames
# (GET_INFO, SET_IMAGING, START_STREAMING, 300 frames as the driver's transfers receive them), and
# umockdev-run replays it to `sonoctl probe stream`, the real driver, which must get all 300 intact.
# At the end umockdev prints "Replay may be stuck: Reaping discard URB …" for the transfers the
# driver cancels on closing (the capture holds no more frames for them): expected, not a failure.
# First ProbeCaptureTests (the capture format against plain libusb). Not in test-swift's parallel
# run: libusb busy-polls an emulated node, and that load beside the simulated scans there trips
# the simulation's stale-data interlock on a 2-core machine.
USB_CAPTURE_DIR = .build/usb-capture
test-usb-replay: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(SWIFT) test --skip-build --filter '$(USB_REPLAY_TESTS)'
	rm -rf $(USB_CAPTURE_DIR)
	$(DEBUG_BIN)/sono-devlab usb-capture --out $(USB_CAPTURE_DIR) --frames 300
	umockdev-run -d $(USB_CAPTURE_DIR)/probe.umockdev -p $$(cat $(USB_CAPTURE_DIR)/syspath)=$(USB_CAPTURE_DIR)/probe.pcap -- \
		$(DEBUG_BIN)/sonoctl probe stream --frames 300 --seconds 60 --buffered-frames 300 --expect-intact \
		--png $(USB_CAPTURE_DIR)/last-frame.png

test-vectors: deps
	$(PYTHON) tools/protocol/vectors.py check

# libFuzzer, one target per untrusted input (README: Fuzzing). The targets are their own package
# (Fuzz/Package.swift) built with the sanitizers into .build-fuzz, so the product build never sees
# those flags; seeds come from the repository's real data (tools/fuzz/seed_corpus.py, which rewrites
# a recording with sonoctl), crashes found and fixed stay in Fuzz/regressions/ and are replayed.
FUZZ_BUILD  = $(SWIFT) build --package-path Fuzz --scratch-path .build-fuzz \
              -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
FUZZ_BIN    = .build-fuzz/debug
FUZZ_TARGETS ?=

fuzz-build: deps
	$(FUZZ_BUILD) 2>&1 | grep -Ev "warning|^ *[0-9]* \||^ *\||^$$" ; test $${PIPESTATUS[0]} -eq 0

Fuzz/corpus: tools/fuzz/seed_corpus.py firmware-protocol/vectors/frames.json models/view-classifier.onnx | build
	rm -rf $@ && $(PYTHON) tools/fuzz/seed_corpus.py $@ --sonoctl $(DEBUG_BIN)/sonoctl

# FUZZ_SECONDS per target; one summary line each (execs, execs/s, coverage, crashes).
fuzz: fuzz-build Fuzz/corpus
	$(PYTHON) tools/fuzz/run_fuzz.py $(FUZZ_BIN) --seconds $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# In make test: the regression inputs replayed, then every target briefly.
fuzz-smoke: fuzz-build Fuzz/corpus
	$(PYTHON) tools/fuzz/run_fuzz.py $(FUZZ_BIN) --seconds $(FUZZ_SMOKE_SECONDS) --work Fuzz/build/smoke $(FUZZ_TARGETS)

bench: bench-codec bench-safety bench-link bench-sim bench-eval bench-loop bench-stop bench-vision bench-record bench-replay bench-api bench-console

# The control socket under load during a simulated scan (issue 18): the same scan quiet, then
# with 60 s of GET /v1/status pollers (500 requests/s over 32 connections), event-stream
# readers (keeping up, slow, stalled) and half-open connections: requests/s, latency p50/p99,
# and both scans' control-loop overruns, oldest inputs, stale-data stops and peak RSS.
bench-api: deps
	$(SWIFT) build -c release --product sonod-sim
	$(PYTHON) tools/api/bench_api.py --sim $(RELEASE_BIN)/sonod-sim --seconds 60 --rate 500

bench-codec: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target ProtocolCodec

bench-safety: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target SafetyCycle

# MCAP writer throughput and allocations, RecordingBench's real-time run, and the Python writer
# on the same data for the throughput ratio.
bench-record: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target Recording
	$(PYTHON) tools/record/bench_python_writer.py --seconds 10

# The USB probe driver's throughput through the emulated probe (frames/s, MB/s per geometry), and
# a real-time run at 60 frames/s where nothing may be lost.
bench-usb: deps bench-usb-path
	$(SWIFT) build -c release --product sono-devlab
	umockdev-wrapper $(RELEASE_BIN)/sono-devlab bench-usb --frames 2000 --sides 128,256,512 --realtime-seconds 10

# The driver's per-frame path alone (validate, CRC, hand over, take): time and allocations (must be 0).
bench-usb-path: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target USBProbeFramePath

bench-loop: deps
	$(SWIFT) build -c release --product sono-devlab
	umockdev-wrapper $(RELEASE_BIN)/sono-devlab bench-loop --seconds 60

bench-stop: deps
	$(SWIFT) build -c release --product sono-devlab
	umockdev-wrapper $(RELEASE_BIN)/sono-devlab bench-stop --count 200

bench-link: deps
	$(SWIFT) build -c release --product sono-devlab
	umockdev-wrapper $(RELEASE_BIN)/sono-devlab bench-link --samples 20000

bench-sim: deps
	$(SWIFT) build -c release --product sonoctl
	$(RELEASE_BIN)/sonoctl sim bench --seconds 3

# The stepped simulation's speed: one whole scan (4 views) of one random patient on one core, in
# simulated seconds per wall second, and where the wall time goes (render, classify, boards and core).
bench-eval: deps
	$(SWIFT) build -c release --product sonoctl
	$(RELEASE_BIN)/sonoctl sim eval --bench

# Replay speed: a 5-minute session of the virtual patient (a scan of the standard views, repeated,
# then idle until the 300 s are up; every frame, force sample and joint state recorded) replayed
# as fast as possible by the release sonoctl, classification included: the report's first line
# gives the multiple of real time, and every stream must come out identical.
REPLAY_BENCH_DIR = .build/bench-replay
bench-replay: build
	$(SWIFT) build -c release --product sonoctl
	rm -rf $(REPLAY_BENCH_DIR)
	timeout -s TERM 300 $(DEBUG_BIN)/sonod-sim --scan PLAX,PSAX,A4C,A2C,PLAX,PSAX,A4C,A2C \
		--socket /tmp/sono-bench-replay.sock --recordings $(REPLAY_BENCH_DIR) || true
	$(RELEASE_BIN)/sonoctl session info $(REPLAY_BENCH_DIR)/*.mcap | head -1
	/usr/bin/time -f "replay: %e s wall, %U s user, %M KB max RSS" $(RELEASE_BIN)/sonoctl replay $(REPLAY_BENCH_DIR)/*.mcap

# Contact sheets of the shipped patients, committed under docs/sheets for reviewers.
sheets: deps
	$(SWIFT) build -c release --product sonoctl
	@mkdir -p docs/sheets
	for patient in hardware/patients/*.toml; do \
		$(RELEASE_BIN)/sonoctl sim render --patient $$patient --sheet --size 192 \
			--out docs/sheets/$$(basename $$patient .toml).png || exit 1; \
	done

clean:
	rm -rf .build .build-fuzz Fuzz/build Fuzz/corpus
	$(MAKE) -C firmware-protocol/c clean
