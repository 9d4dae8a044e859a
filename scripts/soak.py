#!/usr/bin/env python3
"""One sonod-sim run for many minutes: whole scans back to back through the control API, the API
polled throughout. Does the daemon keep its resources flat, its loop on time, and its recording
whole? (issue 18, soak)

The daemon runs on a random patient (tools/vision/make_patients.py's population; patient seeds
700000 + seed, used by no other set) and scans it over and over as an operator would:
enable, allow motion, scan PLAX, PSAX, A4C, A2C, and drives off again when the scan is done. The
simulator holds one patient per process, so a soak's scans are all on that one patient; another
`--seed` is another patient. Every second the script reads /v1/status and /v1/scan and the
process's resident memory, open descriptors and threads (/proc); every minute it prints a row.

Passes when, after the warm-up, the least-squares slope of each of RSS, descriptors and threads
is below its bound (printed with the slope and its standard error), no scan had a stop, board
fault or lease expiry, the daemon exits 0 on SIGTERM, and its recording is complete and replays
identical (`sonoctl session info`, `sonoctl replay`). Exits 1 otherwise.

  scripts/soak.py --minutes 30
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import time

from soaklib import ROOT, SimDaemon, process_resources, random_patients, summary_problems, trend

# Growth bounds after the warm-up, per hour of running. A leak of one descriptor or thread per
# scan (about 30 scans an hour) is well above them; RSS: 8 MiB/h is 192 MiB a day, the most a
# daemon that runs for weeks between restarts could afford, and what a 30-minute soak resolves
# above the noise of the frame and recorder buffers (the slope's standard error is printed).
BOUNDS = {"rss_kib": 8 * 1024, "fds": 2, "threads": 2}
UNITS = {"rss_kib": ("RSS", 1 / 1024, "MiB"), "fds": ("descriptors", 1, ""), "threads": ("threads", 1, "")}


def directory_bytes(path):
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(folder, name))
            except OSError:
                pass
    return total


class Soak:
    def __init__(self, daemon, minutes):
        self.daemon = daemon
        self.api = daemon.api
        self.minutes = minutes
        self.start = time.monotonic()
        self.samples = []          # (seconds, resources)
        self.scans = []            # (summary or None, problems)
        self.api_errors = []
        self.status = {}
        self.scan_status = {}
        self.next_row = 0

    def elapsed(self):
        return time.monotonic() - self.start

    def poll(self):
        """One round of the API and /proc; a row when a minute has passed."""
        try:
            code, body = self.api.get("/v1/status")
            if code == 200:
                self.status = body
            else:
                self.api_errors.append(f"GET /v1/status: {code}")
            code, body = self.api.get("/v1/scan")
            if code == 200:
                self.scan_status = body
            else:
                self.api_errors.append(f"GET /v1/scan: {code}")
        except OSError as error:
            self.api_errors.append(str(error))
        try:
            self.samples.append((self.elapsed(), process_resources(self.daemon.pid)))
        except OSError:
            pass  # the daemon is gone: the scan loop sees it
        if self.elapsed() >= self.next_row * 60:
            self.row()
            self.next_row += 1

    def row(self):
        resources = self.samples[-1][1] if self.samples else {}
        loop = self.status.get("loop", {})
        stops = sum(1 for s in self.scans if s[0] for _ in s[0].get("stops", []))
        faults = sum(1 for s in self.scans if s[0] for _ in s[0].get("faults", []))
        print(f"  {self.elapsed() / 60:5.1f}  {len(self.scans):5d}  {(resources.get('rss_kib') or 0) / 1024:8.1f}  "
              f"{resources.get('fds', 0):5d}  {resources.get('threads', 0):7d}  "
              f"{directory_bytes(self.daemon.recordings) / 2**20:9.1f}  {loop.get('overruns', 0):8d}  "
              f"{stops:5d}  {faults:6d}  {self.api.requests:8d}  {len(self.api_errors):6d}", flush=True)

    def wait(self, condition, seconds):
        deadline = time.monotonic() + seconds
        while self.daemon.alive() and time.monotonic() < deadline:
            self.poll()
            if condition():
                return True
            time.sleep(1)
        return False

    def scan(self):
        """One whole scan from drives off to drives off; False when the soak cannot go on."""
        refused = self.api.start_scan()
        if refused:
            self.scans.append((None, [f"scan refused: {refused}"]))
            return False
        self.scan_status = {}
        finished = self.wait(lambda: self.scan_status.get("running") is False, 900)
        if not finished:
            self.scans.append((None, ["the daemon exited" if not self.daemon.alive() else "scan still running after 15 min"]))
            return False
        code, sessions = self.api.get("/v1/sessions")
        summary = None
        if code == 200 and sessions["sessions"]:
            newest = max(sessions["sessions"], key=lambda s: s["started_at"])
            try:
                with open(os.path.join(newest["path"], "summary.json")) as f:
                    summary = json.load(f)
            except (OSError, ValueError):
                pass
        self.scans.append((summary, summary_problems(summary) if summary else ["no summary.json in the newest session"]))
        refused = self.api.drives_off()
        if refused:
            self.scans[-1][1].append(f"drives off refused: {refused}")
            return False
        return True

    def run(self):
        print(f"   min  scans  RSS MiB    fds  threads  rec. MiB  overruns  stops  faults  API req.  errors")
        while self.elapsed() < self.minutes * 60 and self.daemon.alive():
            if not self.scan():
                break
        self.poll()
        self.row()


def growth(samples, warmup_seconds):
    """Per resource: (slope per hour, its standard error, samples, bound, passed)."""
    warm = [(t, r) for t, r in samples if t >= warmup_seconds]
    result = {}
    for key, bound in BOUNDS.items():
        fit = trend([(t / 3600, r[key]) for t, r in warm if r[key] is not None])
        if fit is None:
            result[key] = (float("nan"), float("nan"), len(warm), bound, False)
        else:
            slope, error, n = fit
            result[key] = (slope, error, n, bound, slope <= bound)
    return result


def check_recording(sonoctl, daemon):
    """Every recording of the run: complete, and a replay identical to it. Lines, and whether all passed."""
    lines, ok = [], True
    recordings = daemon.recordings_written()
    if not recordings:
        return ["  no recording was written"], False
    for path in recordings:
        info = subprocess.run([sonoctl, "session", "info", path], capture_output=True, text=True)
        complete = info.returncode == 0 and "complete (summary and index)" in info.stdout
        started = time.monotonic()
        replay = subprocess.run([sonoctl, "replay", path, "--json"], capture_output=True, text=True)
        seconds = time.monotonic() - started
        identical = replay.returncode == 0
        try:
            report = json.loads(replay.stdout)
        except ValueError:
            report = {}
        ok = ok and complete and identical
        lines.append(f"  {os.path.relpath(path, ROOT)}: {os.path.getsize(path) / 2**20:.1f} MiB, "
                     + ("complete" if complete else f"NOT complete ({(info.stdout + info.stderr).strip().splitlines()[:2]})")
                     + f"; replay ({seconds:.0f} s): " + ("identical" if identical else
                                                         f"DIVERGED (exit {replay.returncode}) {replay.stderr.strip()[:300]}"))
        if report:
            lines.append("    replay report: " + json.dumps({k: v for k, v in report.items() if not isinstance(v, (list, dict))})[:400])
    return lines, ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--warmup-minutes", type=float, default=None,
                        help="left out of the growth fits (default: a fifth of the run, at least 2 minutes)")
    parser.add_argument("--seed", type=int, default=0, help="which random patient (patient seed 700000 + seed; crash-soak uses 710000 and up)")
    parser.add_argument("--sim", default=".build/debug/sonod-sim")
    parser.add_argument("--sonoctl", default=".build/debug/sonoctl")
    parser.add_argument("--out", default=".build/soak")
    args = parser.parse_args()
    for binary in (args.sim, args.sonoctl):
        if not os.access(binary, os.X_OK):
            sys.exit(f"soak: {binary} is not built (make build)")
    shutil.rmtree(args.out, ignore_errors=True)
    patient, = random_patients(1, 700 + args.seed, 700000 + args.seed, f"soak{args.seed}", args.out)
    warmup = args.warmup_minutes if args.warmup_minutes is not None else max(2.0, args.minutes / 5)

    daemon = SimDaemon(args.sim, patient, os.path.join(args.out, "daemon"))
    print(f"soak: {args.minutes:g} min of whole scans on {os.path.relpath(patient, ROOT)} through sonod-sim (pid {daemon.pid}) "
          f"and its control API; warm-up {warmup:g} min; rows every minute, files in {args.out}")
    failures = []
    if daemon.wait_ready() is None:
        daemon.terminate()
        sys.exit(f"soak: sonod-sim did not come up; see {daemon.folder}/daemon.log")
    soak = Soak(daemon, args.minutes)
    try:
        soak.run()
    finally:
        alive = daemon.alive()
        exit_status = daemon.terminate()
    if not alive:
        failures.append(f"sonod-sim exited during the soak (status {exit_status})")
    elif exit_status != 0:
        failures.append(f"sonod-sim exited {exit_status} on SIGTERM")

    print(f"scans: {len(soak.scans)}")
    for index, (summary, problems) in enumerate(soak.scans):
        if problems:
            failures.append(f"scan {index}: {', '.join(problems)}")
    acquired = [s["acquired"] for s, _ in soak.scans if s]
    overruns = [s.get("timing", {}).get("loop_overruns", 0) for s, _ in soak.scans if s]
    print(f"  views acquired per scan: {acquired} (the planner's business, not the soak's); loop overruns per scan: {overruns}")
    if soak.api_errors:
        failures.append(f"{len(soak.api_errors)} API errors, first: {soak.api_errors[0]}")
    print(f"  API: {soak.api.requests} requests answered, {len(soak.api_errors)} errors")

    print(f"growth after the warm-up ({warmup:g} min), least-squares slope per hour ± standard error, against its bound:")
    for key, (slope, error, n, bound, passed) in growth(soak.samples, warmup * 60).items():
        name, scale, unit = UNITS[key]
        print(f"  {name:<12} {slope * scale:+9.3f} ± {error * scale:7.3f} {unit}/h over {n} samples "
              f"(bound {bound * scale:g} {unit}/h): {'ok' if passed else 'GROWS'}")
        if not passed:
            failures.append(f"{name} grows {slope * scale:+.3f} {unit}/h (bound {bound * scale:g})")
    first = next((r for t, r in soak.samples if t >= warmup * 60), None)
    last = soak.samples[-1][1] if soak.samples else None
    if first and last:
        print(f"  after the warm-up: RSS {first['rss_kib'] / 1024:.1f} → {last['rss_kib'] / 1024:.1f} MiB, "
              f"descriptors {first['fds']} → {last['fds']}, threads {first['threads']} → {last['threads']}")

    with open(os.path.join(args.out, "samples.csv"), "w") as f:
        f.write("seconds,rss_kib,fds,threads\n")
        for t, r in soak.samples:
            f.write(f"{t:.1f},{r['rss_kib']},{r['fds']},{r['threads']}\n")
    print(f"recording (the samples: {args.out}/samples.csv):")
    lines, recorded = check_recording(args.sonoctl, daemon)
    print("\n".join(lines))
    if not recorded:
        failures.append("the recording is not complete or does not replay identical")
    for failure in failures:
        print(f"  FAILED: {failure}")
    print(f"soak: {'passed' if not failures else 'FAILED'}")
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
