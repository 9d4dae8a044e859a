#!/usr/bin/env python3
"""sonod-sim killed with SIGKILL at random moments of recorded scans: does every recording recover
with at most its last chunk lost, and does the restarted daemon come up with the drives off?
(issue 18, crash safety)

Each cycle starts sonod-sim on a fresh random patient (patient seeds 710000 + 1000·seed + i, used
by no other set) with its run recorded (MCAP, the default), enables it and starts a scan of
PLAX, PSAX, A4C, A2C through the control API, and kills it with SIGKILL a random time (seeded)
into the scan. Then:

- `sonoctl session recover` rewrites the cut recording as a complete one (exit 0 and a file);
- the recovered file is read with the reference MCAP reader (tools/record/requirements.txt): its
  summary's message count must match the messages it delivers, and its last message's log time
  (or, cut before the first chunk closed, its attachments', written when the recording opened;
  the daemon's monotonic clock, the clock this script reads at the kill) tells what was lost:
  the recorder closes a chunk `chunkSeconds` (1 s, MCAPWriterOptions) after its first message,
  so the span between the last recovered message and the kill must be at most one chunk plus
  `--drain-allowance` (the closed chunk's compression, write and fdatasync);
- the next cycle's daemon is the restart: the first status its API answers must say `disabled`
  (drives off) and not moving. One more daemon is started after the last kill for its check.

Prints one row per kill and the counts; exits 1 unless every count is whole.

  scripts/crash-soak.py --kills 100
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import time

from soaklib import ROOT, SimDaemon, random_patients, recording_span

CHUNK_SECONDS = 1.0  # MCAPWriterOptions.chunkSeconds, the daemon's recorder's


def drives_off(status):
    return status is not None and status.get("state") == "disabled" and not status.get("moving", True)


def read_all(path):
    """Messages the reference reader delivers from the file, in order."""
    from mcap.reader import make_reader
    with open(path, "rb") as f:
        return sum(1 for _ in make_reader(f).iter_messages(log_time_order=False))


def recover(sonoctl, recording):
    """Runs `sonoctl session recover`; (ok, detail, lost seconds-before-kill or None)."""
    output = recording[:-len(".mcap")] + "-recovered.mcap"
    result = subprocess.run([sonoctl, "session", "recover", recording, "--out", output], capture_output=True, text=True)
    if result.returncode != 0 or not os.path.exists(output):
        return False, f"recover exited {result.returncode}: {(result.stdout + result.stderr).strip()[:200]}", None
    try:
        messages, last = recording_span(output)
        delivered = read_all(output)
    except Exception as error:  # the reference reader's errors are its own types
        return False, f"the recovered file does not read: {error}", None
    if delivered != messages:
        return False, f"the recovered file's summary counts {messages} messages, the reader delivers {delivered}", None
    cut = re.search(r"(\d+) of \d+ bytes lost", result.stdout)
    return True, f"{messages} msgs, {cut.group(1) if cut else '?'} B cut", last


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0, help="seeds the patients and the kill moments")
    parser.add_argument("--window", type=float, default=20,
                        help="kill uniformly within this many seconds after the scan starts (travel, contact and the first search)")
    parser.add_argument("--drain-allowance", type=float, default=0.5,
                        help="seconds beyond one chunk a kill may cost: the closed chunk's compression, write and fdatasync")
    parser.add_argument("--sim", default=".build/debug/sonod-sim")
    parser.add_argument("--sonoctl", default=".build/debug/sonoctl")
    parser.add_argument("--out", default=".build/crash-soak")
    parser.add_argument("--keep", action="store_true", help="keep every cycle's files (default: only failing ones)")
    args = parser.parse_args()
    for name, value in (("--kills", args.kills), ("--window", args.window), ("--drain-allowance", args.drain_allowance)):
        if not value >= 0 or (name != "--drain-allowance" and value == 0):
            parser.error(f"{name} must be {'at least 0' if name == '--drain-allowance' else 'positive'}, got {value}")
    for binary in (args.sim, args.sonoctl):
        if not os.access(binary, os.X_OK):
            sys.exit(f"crash-soak: {binary} is not built (make build)")
    shutil.rmtree(args.out, ignore_errors=True)
    patients = random_patients(args.kills + 1, 710 + args.seed, 710000 + 1000 * args.seed, f"crash{args.seed}",
                               os.path.join(args.out, "patients"))
    rng = random.Random(args.seed)
    bound = CHUNK_SECONDS + args.drain_allowance
    print(f"crash-soak: {args.kills} SIGKILLs of sonod-sim at random moments 0–{args.window:g} s into a recorded scan; "
          f"a loss of at most one chunk: ≤ {bound:g} s ({CHUNK_SECONDS:g} s chunks + {args.drain_allowance:g} s); files in {args.out}")
    print("  #   killed at  step      recovery                         lost s  restart")
    counts = {"recovered": 0, "within": 0, "restart_off": 0, "started": 0, "mid_scan": 0}
    losses, failures = [], []
    started = time.monotonic()

    def start(index):
        daemon = SimDaemon(args.sim, patients[index], os.path.join(args.out, f"cycle-{index:03d}"))
        return daemon, daemon.wait_ready()

    daemon, status = start(0)
    for index in range(args.kills):
        if status is None:
            failures.append(f"cycle {index}: sonod-sim did not come up (see {daemon.folder}/daemon.log)")
            daemon.terminate()
            break
        refused = daemon.api.start_scan()
        if refused:
            # No kill this cycle (it counts against every total); the next one starts afresh.
            failures.append(f"cycle {index}: {refused}")
            print(f"  {index:<3} no scan: {refused}   FAILED", flush=True)
            daemon.terminate()
            daemon, status = start(index + 1)
            continue
        counts["started"] += 1
        delay = rng.uniform(0, args.window)
        deadline = time.monotonic() + delay
        step = "?"
        while time.monotonic() < deadline - 0.1:
            # The API polled until the kill, as a client would: where the scan is.
            try:
                _, scan = daemon.api.get("/v1/scan")
                step = (scan.get("step") or "-") if scan.get("running") else "ended"
            except OSError:
                pass
            time.sleep(min(0.25, max(0, deadline - time.monotonic() - 0.1)))
        time.sleep(max(0, deadline - time.monotonic()))
        killed_at = daemon.kill()
        counts["mid_scan"] += step != "ended"

        recordings = daemon.recordings_written()
        lost = None
        if len(recordings) != 1:
            ok, detail = False, f"{len(recordings)} recordings in {daemon.recordings}"
        else:
            ok, detail, last = recover(args.sonoctl, recordings[0])
            if ok:
                lost = (killed_at - last) / 1e9
        counts["recovered"] += ok
        if lost is not None:
            losses.append(lost)
            counts["within"] += lost <= bound

        # The restart: the next cycle's daemon (or one more after the last kill).
        failed_daemon = daemon
        daemon, status = start(index + 1)
        restart_ok = drives_off(status)
        counts["restart_off"] += restart_ok
        row_ok = ok and lost is not None and lost <= bound and restart_ok
        print(f"  {index:<3} {delay:6.2f} s   {step:<9} {detail[:32]:<32} {lost if lost is not None else float('nan'):6.3f}  "
              + (f"{status['state']}" if status else "no answer") + ("" if row_ok else "   FAILED"), flush=True)
        if not row_ok:
            failures.append(f"cycle {index}: {detail}; lost {lost}; restart {status and status.get('state')}")
        elif not args.keep:
            shutil.rmtree(failed_daemon.folder, ignore_errors=True)
    exit_status = daemon.terminate()
    if not args.keep and not failures:
        shutil.rmtree(daemon.folder, ignore_errors=True)

    losses.sort()
    kills = args.kills
    print(f"recovered: {counts['recovered']}/{kills}; lost at most one chunk (≤ {bound:g} s): {counts['within']}/{kills}; "
          f"drives off on restart: {counts['restart_off']}/{kills}; killed while the scan ran: {counts['mid_scan']}/{kills} "
          "(the others after it had ended on its own: still a recorded run)")
    if losses:
        print(f"  lost before the kill: median {losses[len(losses) // 2]:.3f} s, max {losses[-1]:.3f} s; "
              f"{time.monotonic() - started:.0f} s for {counts['started']} cycles; the last daemon exited {exit_status} on SIGTERM")
    for failure in failures:
        print(f"  FAILED: {failure}")
    whole = counts["recovered"] == counts["within"] == counts["restart_off"] == kills and not failures
    print(f"crash-soak: {'passed' if whole else 'FAILED'}")
    sys.exit(0 if whole else 1)


if __name__ == "__main__":
    main()
