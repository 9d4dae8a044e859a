#!/usr/bin/env python3
"""Runs Sono's libFuzzer targets (Fuzz/Sources/*, built into BIN_DIR) one after another and prints
one summary line per target: executions, executions/s, coverage (edges) and features, corpus size,
crashes. Each target fuzzes its growing corpus (WORK/corpus/TARGET, kept between runs) seeded with
Fuzz/corpus/TARGET and its regression inputs (Fuzz/regressions/TARGET, replayed first), with its
dictionary when the format has one. Crashes land in WORK/artifacts/TARGET; the exit status is 1 if
any target crashed.

Usage: run_fuzz.py BIN_DIR --seconds N [--work Fuzz/build] [--rss-limit-mb 2048]
                   [--malloc-limit-mb 1024] [--replay-only] [TARGET …]
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]

# target (corpus directory) → (executable, dictionary or None)
TARGETS = {
    "frame-decoder": ("FrameDecoderFuzz", None),
    "stream-chunks": ("StreamChunksFuzz", None),
    "probe-frame": ("ProbeFrameFuzz", None),
    "probe-control": ("ProbeControlFuzz", None),
    "mcap-reader": ("MCAPReaderFuzz", "mcap.dict"),
    "mcap-recovery": ("MCAPRecoveryFuzz", "mcap.dict"),
    "onnx-model": ("ONNXModelFuzz", "onnx.dict"),
    "patient-toml": ("PatientTOMLFuzz", "toml.dict"),
    "daemon-config": ("DaemonConfigFuzz", "toml.dict"),
    "png": ("PNGFuzz", "png.dict"),
    "control-api": ("ControlAPIFuzz", "http-json.dict"),
    "motion-tape": ("MotionTapeFuzz", None),
}

# Targets over the same parser replay each other's regression inputs too: patient files and
# sono.toml both go through TOMLKit's toml++ (behind SonoTOML's check).
ALSO_REPLAY = {"patient-toml": ["daemon-config"], "daemon-config": ["patient-toml"]}

# libFuzzer's leak check after each input, off for the targets over TOMLKit: TOMLKit leaks on
# every parse (Fuzz/lsan.supp), so every input ends with more mallocs than frees, and libFuzzer
# then runs the input again and LeakSanitizer's whole-heap scan after it; the suppressions hide
# the report, not the cost. Measured side by side, 1,500 runs of patient-toml from its seeds:
# 18 executions/s with the check, 1,500 without. LeakSanitizer still checks the whole run at exit.
NO_LEAK_CHECK_PER_INPUT = {"patient-toml", "daemon-config"}
# The same leak grows those targets' RSS by about 9 KB an execution (536 MB after 59,676), which
# would reach -rss_limit_mb in a few minutes at full speed and be reported as an out-of-memory
# crash of whatever input was running: they fuzz in sessions of at most this many seconds, each a
# fresh process over the corpus the previous one grew.
SESSION_SECONDS = {"patient-toml": 60, "daemon-config": 60}


# Leaks in third-party code every input triggers (Fuzz/lsan.supp says which and why).
ENV = dict(os.environ, LSAN_OPTIONS=f"suppressions={ROOT / 'Fuzz/lsan.supp'}:print_suppressions=0",
           SWIFT_BACKTRACE="enable=no")  # the Swift backtracer would read memory ASan then reports


def run(target, args, bin_dir, work):
    executable, dictionary = TARGETS[target]
    binary = bin_dir / executable
    seeds = ROOT / "Fuzz/corpus" / target
    regressions = ROOT / "Fuzz/regressions" / target
    corpus = work / "corpus" / target
    artifacts = work / "artifacts" / target
    corpus.mkdir(parents=True, exist_ok=True)
    artifacts.mkdir(parents=True, exist_ok=True)
    limits = [f"-rss_limit_mb={args.rss_limit_mb}", f"-malloc_limit_mb={args.malloc_limit_mb}", "-timeout=10"]
    if target in NO_LEAK_CHECK_PER_INPUT:
        limits.append("-detect_leaks=0")
    # The crashes found so far, each replayed once: they must pass now (the bug is fixed at its cause).
    replays = sorted(p for name in [target, *ALSO_REPLAY.get(target, [])]
                     for p in (ROOT / "Fuzz/regressions" / name).glob("*") if p.is_file())
    if replays:
        result = subprocess.run([str(binary), *limits, *map(str, replays)], capture_output=True, text=True, env=ENV)
        if result.returncode != 0:
            print(result.stderr[-4000:], file=sys.stderr)
            print(f"{target:14s} REGRESSION: a committed crash input fails again ({len(replays)} replayed)")
            return False
    if args.replay_only:
        print(f"{target:14s} {len(replays)} regression inputs replayed")
        return True
    inputs = [str(corpus), str(seeds)] + ([str(regressions)] if regressions.is_dir() else [])
    if dictionary:
        limits.append(f"-dict={ROOT / 'Fuzz/dict' / dictionary}")
    started = time.time()
    session = SESSION_SECONDS.get(target, args.seconds)
    execs, peak_rss, logs, remaining = 0, 0, [], args.seconds
    while True:
        seconds = min(session, remaining)
        command = [str(binary), *limits, f"-max_total_time={seconds}", "-print_final_stats=1",
                   f"-artifact_prefix={artifacts}/", *inputs]
        result = subprocess.run(command, capture_output=True, text=True, env=ENV)
        logs.append(result.stderr)
        stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", result.stderr, re.M))
        execs += int(stats.get("number_of_executed_units", 0))
        peak_rss = max(peak_rss, int(stats.get("peak_rss_mb", 0)))
        remaining -= seconds
        if result.returncode != 0 or remaining <= 0:
            break
    log = "\n".join(logs)
    (work / f"{target}.log").write_text(log)
    progress = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", log)
    cov, ft, corp = progress[-1] if progress else ("?", "?", "?")
    crashes = sorted(p.name for p in artifacts.iterdir() if p.stat().st_mtime >= started)  # this run's
    status = "ok" if result.returncode == 0 else f"CRASH (exit {result.returncode})"
    sessions = f"  ({len(logs)} sessions)" if len(logs) > 1 else ""
    print(f"{target:14s} execs {execs:>10,}  execs/s {int(execs / max(time.time() - started, 1e-9)):>6,}  "
          f"cov {cov:>5}  ft {ft:>6}  corpus {corp:>5}  rss {peak_rss:>4} MB  crashes {len(crashes)}  {status}{sessions}",
          flush=True)
    if result.returncode != 0:
        summary = [line for line in log.splitlines() if "ERROR" in line or "SUMMARY" in line or "invariant" in line
                   or "Fatal error" in line or "Test unit written" in line]
        print("\n".join("    " + line for line in summary[-8:]), file=sys.stderr)
    return result.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("bin_dir")
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--work", default=str(ROOT / "Fuzz/build"))
    parser.add_argument("--rss-limit-mb", type=int, default=2048)
    parser.add_argument("--malloc-limit-mb", type=int, default=1024)
    parser.add_argument("--replay-only", action="store_true")
    parser.add_argument("targets", nargs="*")
    args = parser.parse_intermixed_args()
    unknown = [t for t in args.targets if t not in TARGETS]
    if unknown:
        parser.error(f"unknown targets {unknown}; known: {', '.join(TARGETS)}")
    targets = args.targets or list(TARGETS)
    missing = [str(ROOT / "Fuzz/corpus" / t) for t in targets if not (ROOT / "Fuzz/corpus" / t).is_dir()]
    missing += [str(pathlib.Path(args.bin_dir) / TARGETS[t][0]) for t in targets
                if not (pathlib.Path(args.bin_dir) / TARGETS[t][0]).is_file()]
    if missing:
        parser.error("missing " + ", ".join(missing) + " (make Fuzz/corpus fuzz-build makes the seeds and the targets)")
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    failed = [t for t in targets if not run(t, args, pathlib.Path(args.bin_dir), work)]
    if failed:
        print(f"fuzz: {len(failed)} targets failed: {', '.join(failed)} (inputs in {work}/artifacts/)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
