#!/usr/bin/env python3
"""Whole simulated scans back to back, quiet or beside a parallel build: does the real-time
path hold its stale-data deadlines? (issue 16, finding 15)

Each scan is `sonod-sim PATIENT --scan PLAX,PSAX,A4C,A2C --exit-when-done`: the simulated boards
on umockdev, libserialport, the link layer, the 1 kHz loop, the classifier and the planner in
real time. A scan passes when it ends with no stop, no fault and no interruption (a lease expiry, a
latched stop): the inputs stayed fresh and perception kept up. Views acquired are reported too, but how many are
found is the planner's business (issue 17), not this one's.

  scripts/scan-soak.py --scans 20                 # quiet
  scripts/scan-soak.py --scans 20 --load build    # a debug build of this package, from clean,
                                                  # restarted whenever it finishes
  scripts/scan-soak.py ... --kworker-nice -20     # diagnosis only: renice the kernel's unbound
                                                  # kworkers (the tty flip-buffer work) for the run

Prints one row per scan and closes with 'scan-soak: N passed, M failed'; exits 1 on any failure.
"""
import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from soaklib import summary_problems


def kworkers():
    """The kernel's unbound workqueue threads (kworker/uN:M), which run the tty flip-buffer work."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        if name.startswith("kworker/u"):
            found.append(int(pid))
    return found


class Load:
    """A parallel `swift build` of this package from clean, restarted until stopped."""

    def __init__(self, scratch):
        self.scratch = scratch
        self.process = None
        self.builds = 0

    def poll(self):
        if self.process is None or self.process.poll() is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.process = subprocess.Popen(["swift", "build", "--scratch-path", self.scratch],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                            start_new_session=True)
            self.builds += 1

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)


def scan(sim, patient, out, index, poll):
    summary = os.path.join(out, f"scan-{index:03d}.json")
    recordings = os.path.join(out, f"rec-{index:03d}")
    command = [sim, patient, "--scan", "PLAX,PSAX,A4C,A2C", "--exit-when-done", "--summary", summary,
               "--socket", os.path.join(out, "soak.sock"), "--recordings", recordings]
    with open(os.path.join(out, f"scan-{index:03d}.log"), "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        while process.poll() is None:
            poll()
            time.sleep(1)
    if not os.path.exists(summary):
        return None, f"no summary (sonod-sim exited {process.returncode}; see scan-{index:03d}.log)"
    with open(summary) as f:
        data = json.load(f)
    # The recording is checked by make test's own suites; here it only costs disk.
    shutil.rmtree(recordings, ignore_errors=True)
    return data, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=20)
    parser.add_argument("--load", choices=["none", "build"], default="none")
    parser.add_argument("--patients", nargs="*", default=sorted(glob.glob("hardware/patients/*.toml")))
    parser.add_argument("--sim", default=".build/debug/sonod-sim")
    parser.add_argument("--out", default=".build/scan-soak")
    parser.add_argument("--kworker-nice", type=int, default=None,
                        help="diagnosis only: renice the kernel's unbound kworkers for the run (needs root)")
    args = parser.parse_args()
    if not args.patients:
        sys.exit("scan-soak: no patient files")
    if not os.access(args.sim, os.X_OK):
        sys.exit(f"scan-soak: {args.sim} is not built (make build)")
    out = os.path.join(args.out, args.load + ("-kworker%+d" % args.kworker_nice if args.kworker_nice is not None else ""))
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    load = Load(os.path.abspath(".build-soak-load")) if args.load == "build" else None
    reniced = {}

    def poll():
        if load:
            load.poll()
        if args.kworker_nice is not None:
            # New kworkers appear as the pool grows: renice each one seen.
            for pid in kworkers():
                if pid not in reniced:
                    try:
                        reniced[pid] = os.getpriority(os.PRIO_PROCESS, pid)
                        os.setpriority(os.PRIO_PROCESS, pid, args.kworker_nice)
                    except OSError:
                        pass

    print(f"scan-soak: {args.scans} whole scans, load: {args.load}"
          + (f", kworkers reniced to {args.kworker_nice}" if args.kworker_nice is not None else "")
          + f"; rows and summaries in {out}")
    print("  #   patient                       views  force ms  joint ms  overruns  outcome")
    passed = failed = 0
    worst = {"force": 0.0, "joint": 0.0}
    overruns = cycles = 0
    try:
        for index in range(args.scans):
            poll()
            patient = args.patients[index % len(args.patients)]
            data, error = scan(args.sim, patient, out, index, poll)
            name = os.path.basename(patient)
            if data is None:
                failed += 1
                print(f"  {index:<3} {name:<29} {error}")
                continue
            timing = data.get("timing") or {}
            problems = summary_problems(data)
            ok = not problems
            passed += ok
            failed += not ok
            worst["force"] = max(worst["force"], timing.get("force_age_max_ms", 0))
            worst["joint"] = max(worst["joint"], timing.get("joint_age_max_ms", 0))
            overruns += timing.get("loop_overruns", 0)
            cycles += timing.get("loop_cycles", 0)
            print(f"  {index:<3} {name:<29} {data['acquired']}/{len(data['views'])}   "
                  f"{timing.get('force_age_max_ms', float('nan')):7.1f}   {timing.get('joint_age_max_ms', float('nan')):7.1f}"
                  f"   {timing.get('loop_overruns', 0):7d}  {'ok' if ok else ', '.join(problems)}", flush=True)
    finally:
        if load:
            load.stop()
        for pid, nice in reniced.items():
            try:
                os.setpriority(os.PRIO_PROCESS, pid, nice)
            except OSError:
                pass
    print(f"  oldest inputs: force {worst['force']:.1f} ms, joints {worst['joint']:.1f} ms (simulation deadlines 40 ms); "
          f"loop overruns {overruns} in {cycles} cycles" + (f"; parallel builds started: {load.builds}" if load else ""))
    print(f"scan-soak: {passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
