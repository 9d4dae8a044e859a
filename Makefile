# Sono — build, test and demo. `make demo` and `make test` do all set-up on a fresh Debian
# machine (as root); see README.md.

SHELL        := /bin/bash
SWIFT        ?= swift
PYTHON       ?= python3
BUILD_FLAGS  ?=
DEBUG_BIN     = .build/debug
RELEASE_BIN   = .build/release
FUZZ_SECONDS ?= 300
FUZZ_SMOKE_SECONDS ?= 20
# Tests that need umockdev's LD_PRELOAD run in a second pass under umockdev-wrapper.
EMULATED_SUITES = EmulatedSerialLinkTests MotionOverSerialTests
EMULATED_TESTS = $(subst $(eval) ,|,$(EMULATED_SUITES))

.PHONY: all deps build demo test test-swift test-emulated test-c test-vectors fuzz fuzz-smoke \
        bench bench-codec bench-safety bench-loop bench-stop bench-link bench-sim bench-vision \
        test-vision eval-vision sheets clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(BUILD_FLAGS)

# The main job. Until the daemon lands: Sono's real serial drivers against simulated firmware
# boards on emulated USB devices (the link demo), then the virtual patient behind those boards,
# visited view by view (frames in /tmp/sono-demo).
demo: build
	umockdev-wrapper $(DEBUG_BIN)/sono-devlab demo
	umockdev-wrapper $(DEBUG_BIN)/sono-devlab patient

test: deps test-c test-vectors test-swift test-vision test-emulated fuzz-smoke
	@echo "make test: all passed"

# The shipped view classifier against onnxruntime (PyPI) on the same frames: logits within 1e-4.
VISION_MODEL = models/view-classifier.onnx
test-vision: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(PYTHON) tools/vision/parity_reference.py --model $(VISION_MODEL) --out .build/ort-reference.json \
		Tests/SonoVisionTests/Fixtures/*.png
	SONO_ORT_REFERENCE=.build/ort-reference.json $(SWIFT) test --skip-build --filter OnnxRuntimeParityTests

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

test-swift: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	$(SWIFT) test --skip-build --skip '$(EMULATED_TESTS)'

test-emulated: deps
	$(SWIFT) build --build-tests $(BUILD_FLAGS)
	@# One suite at a time: each runs simulated boards in real time, and two at once on a
	@# 2-core machine starve umockdev's relay thread.
	for suite in $(EMULATED_SUITES); do \
		SONO_REQUIRE_UMOCKDEV=1 umockdev-wrapper $(SWIFT) test --skip-build --filter "$$suite" || exit 1; \
	done

test-c: deps
	$(MAKE) -C firmware-protocol/c test

test-vectors: deps
	$(PYTHON) tools/protocol/vectors.py check

# libFuzzer on the Swift frame decoder (Fuzz/FrameDecoderFuzz.swift), seeded with the golden frames.
Fuzz/build/frame-decoder-fuzz: Fuzz/FrameDecoderFuzz.swift $(wildcard Sources/SonoProtocol/*.swift)
	@mkdir -p Fuzz/build
	$(SWIFT)c -sanitize=fuzzer,address -parse-as-library -O -module-name FrameDecoderFuzz \
		Sources/SonoProtocol/*.swift Fuzz/FrameDecoderFuzz.swift -o $@ 2>&1 | grep -v "ld.gold: warning" || true
	@test -x $@

Fuzz/corpus: firmware-protocol/vectors/frames.json tools/fuzz/seed_corpus.py
	$(PYTHON) tools/fuzz/seed_corpus.py $< $@

fuzz: deps Fuzz/build/frame-decoder-fuzz Fuzz/corpus
	Fuzz/build/frame-decoder-fuzz -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 Fuzz/corpus

fuzz-smoke: deps Fuzz/build/frame-decoder-fuzz Fuzz/corpus
	@mkdir -p Fuzz/build/smoke-corpus
	Fuzz/build/frame-decoder-fuzz -max_total_time=$(FUZZ_SMOKE_SECONDS) -print_final_stats=1 \
		Fuzz/build/smoke-corpus Fuzz/corpus 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==)|ERROR|SUMMARY" ; \
		test $${PIPESTATUS[0]} -eq 0

bench: bench-codec bench-safety bench-link bench-sim bench-loop bench-stop bench-vision

bench-codec: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target ProtocolCodec

bench-safety: deps
	$(SWIFT) package --allow-writing-to-package-directory benchmark --target SafetyCycle

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

# Contact sheets of the shipped patients, committed under docs/sheets for reviewers.
sheets: deps
	$(SWIFT) build -c release --product sonoctl
	@mkdir -p docs/sheets
	for patient in hardware/patients/*.toml; do \
		$(RELEASE_BIN)/sonoctl sim render --patient $$patient --sheet --size 192 \
			--out docs/sheets/$$(basename $$patient .toml).png || exit 1; \
	done

clean:
	rm -rf .build Fuzz/build Fuzz/corpus
	$(MAKE) -C firmware-protocol/c clean
