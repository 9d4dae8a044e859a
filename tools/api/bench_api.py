#!/usr/bin/env python3
"""The control socket under load during a simulated scan (make bench-api, issue 18).

    python3 tools/api/bench_api.py [--sim .build/release/sonod-sim] [--seconds 60] [--rate 500]

Runs the same scan twice in one invocation, on the same patient: first quiet, then with a
client hammering the control socket for --seconds from the scan's start:
  - --connections keep-alive connections polling GET /v1/status, paced to --rate requests/s
    in all (0: as fast as sonod answers);
  - --readers event-stream subscribers that keep up, --slow-readers that read 256 bytes a
    second, --stalled-readers that never read;
  - --half-open connections that send half a request line and then nothing.
Prints requests/s served, latency p50/p99/max, errors, what happened to the event-stream
clients, and for both scans the control loop's overruns, the oldest force and joint data the
interlocks judged (against their stale-data deadlines), the stale-data stops and the peak RSS
of sonod-sim. Each scan is `sonod-sim PATIENT --scan VIEWS --exit-when-done --summary`.
"""

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sonoapi import SimulatedDaemon  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
STALE = {"stale_force", "stale_joint_state"}


class Load:
    def __init__(self, path, args):
        self.path = path
        self.args = args
        self.latencies = []
        self.errors = 0
        self.requests = 0
        self.event_bytes = {"reader": 0, "slow": 0, "stalled": 0}
        self.dropped = {"reader": 0, "slow": 0, "stalled": 0}
        self.half_open_closed = 0
        self.stop_at = 0.0

    async def poller(self, interval):
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            self.errors += 1
            return
        next_at = time.monotonic()
        while time.monotonic() < self.stop_at:
            if interval:
                next_at += interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            sent = time.perf_counter()
            try:
                writer.write(b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                self.errors += 1
                # Dropped: reconnect while the daemon is there (it exits when the scan ends).
                try:
                    reader, writer = await asyncio.open_unix_connection(self.path)
                except OSError:
                    return
                continue
            self.latencies.append(time.perf_counter() - sent)
            self.requests += 1
            if not head.startswith(b"HTTP/1.1 200"):
                self.errors += 1
        writer.close()

    async def subscriber(self, kind):
        try:
            reader, writer = await asyncio.open_unix_connection(self.path, limit=1 << 20)
        except OSError:
            return
        sock = writer.get_extra_info("socket")
        writer.write(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        try:
            while time.monotonic() < self.stop_at:
                if kind == "stalled":
                    # Never read; see whether sonod hangs up (the transport sees end of file).
                    await asyncio.sleep(0.5)
                    if reader.at_eof() or sock is None or sock.fileno() < 0:
                        break
                    continue
                size = 256 if kind == "slow" else 65536
                data = await asyncio.wait_for(reader.read(size), timeout=max(0.1, self.stop_at - time.monotonic()))
                if not data:
                    break
                self.event_bytes[kind] += len(data)
                if kind == "slow":
                    await asyncio.sleep(1)
            else:
                writer.close()
                return
            self.dropped[kind] += 1
        except asyncio.TimeoutError:
            pass
        except OSError:
            self.dropped[kind] += 1
        writer.close()

    async def half_open(self):
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
        except OSError:
            return
        writer.write(b"GET /v1/sta")
        try:
            data = await asyncio.wait_for(reader.read(1), timeout=max(0.1, self.stop_at - time.monotonic()))
            if not data:
                self.half_open_closed += 1
        except asyncio.TimeoutError:
            pass
        except OSError:
            self.half_open_closed += 1
        writer.close()

    async def run(self, seconds):
        self.stop_at = time.monotonic() + seconds
        a = self.args
        interval = a.connections / a.rate if a.rate > 0 else 0.0
        tasks = [self.poller(interval) for _ in range(a.connections)]
        tasks += [self.subscriber("reader") for _ in range(a.readers)]
        tasks += [self.subscriber("slow") for _ in range(a.slow_readers)]
        tasks += [self.subscriber("stalled") for _ in range(a.stalled_readers)]
        tasks += [self.half_open() for _ in range(a.half_open)]
        started = time.monotonic()
        await asyncio.gather(*tasks)
        return time.monotonic() - started


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def scan(args, label, load):
    scratch = tempfile.mkdtemp(prefix="sono-bench-api-")
    path = os.path.join(scratch, "control.sock")
    summary = os.path.join(args.out, f"{label}.json")
    daemon = SimulatedDaemon(args.sim, path, os.path.join(scratch, "sessions"), os.path.join(args.out, f"{label}.log"),
                             extra=["--scan", args.views, "--exit-when-done", "--summary", summary], patient=args.patient)
    peak = 0
    sampling = True

    def sample():
        nonlocal peak
        while sampling:
            peak = max(peak, daemon.peak_rss_kb())
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    result = {"label": label}
    try:
        if not daemon.wait_ready(120):
            sys.exit(f"bench_api: sonod-sim did not come up; see {args.out}/{label}.log")
        if load is not None:
            load.path = path
            result["load_seconds"] = asyncio.run(load.run(args.seconds))
        daemon.process.wait(timeout=args.scan_timeout)
    finally:
        sampling = False
        sampler.join()
        daemon.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    result["wall_seconds"] = time.monotonic() - started
    result["peak_rss_kb"] = peak
    if not os.path.exists(summary):
        sys.exit(f"bench_api: the {label} scan wrote no summary; see {args.out}/{label}.log")
    with open(summary) as f:
        data = json.load(f)
    result["summary"] = data
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", default=str(ROOT / ".build/release/sonod-sim"))
    parser.add_argument("--patient", default=str(ROOT / "hardware/patients/default.toml"))
    parser.add_argument("--views", default="PLAX,PSAX,A4C,A2C")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=500, help="GET /v1/status per second in all; 0: unpaced")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--readers", type=int, default=8)
    parser.add_argument("--slow-readers", type=int, default=4)
    parser.add_argument("--stalled-readers", type=int, default=4)
    parser.add_argument("--half-open", type=int, default=16)
    parser.add_argument("--scan-timeout", type=float, default=600)
    parser.add_argument("--out", default=str(ROOT / ".build/bench-api"))
    args = parser.parse_args()
    if not os.access(args.sim, os.X_OK):
        sys.exit(f"bench_api: {args.sim} is not built (swift build -c release --product sonod-sim)")
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)

    print(f"bench_api: {args.views} on {os.path.basename(args.patient)}, quiet then loaded ({args.seconds:.0f} s of "
          f"{args.connections} status pollers at {'max' if args.rate <= 0 else f'{args.rate:.0f}/s'}, "
          f"{args.readers}+{args.slow_readers} slow+{args.stalled_readers} stalled event readers, "
          f"{args.half_open} half-open connections)", flush=True)
    quiet = scan(args, "quiet", None)
    load = Load(None, args)
    loaded = scan(args, "loaded", load)

    seconds = loaded["load_seconds"]
    lat = load.latencies
    print(f"load: {load.requests} GET /v1/status answered in {seconds:.1f} s = {load.requests / seconds:.0f} requests/s; "
          f"latency p50 {percentile(lat, 0.5) * 1e3:.2f} ms, p99 {percentile(lat, 0.99) * 1e3:.2f} ms, "
          f"max {max(lat, default=float('nan')) * 1e3:.1f} ms; errors {load.errors}")
    print(f"load: event streams: readers got {load.event_bytes['reader'] / max(args.readers, 1) / 1024:.1f} KiB each, "
          f"dropped {load.dropped['reader']}/{args.readers}; slow readers dropped {load.dropped['slow']}/{args.slow_readers}; "
          f"stalled readers dropped {load.dropped['stalled']}/{args.stalled_readers}; "
          f"half-open connections closed by sonod {load.half_open_closed}/{args.half_open}")
    print("scan     wall s  acquired  overruns/cycles       force age max  joint age max  stale stops  other stops  peak RSS")
    for run in (quiet, loaded):
        s = run["summary"]
        t = s.get("timing") or {}
        stops = [stop["cause"] for stop in s.get("stops", [])]
        stale = sum(cause in STALE for cause in stops)
        print(f"{run['label']:<8} {run['wall_seconds']:6.1f}  {s['acquired']}/{len(s['views'])}       "
              f"{t.get('loop_overruns', 0):>4}/{t.get('loop_cycles', 0):<10}  "
              f"{t.get('force_age_max_ms', float('nan')):6.1f} ms      {t.get('joint_age_max_ms', float('nan')):6.1f} ms"
              f"      {stale:>3}          {len(stops) - stale:>3}       {run['peak_rss_kb'] / 1024:.0f} MB")
    print(f"bench_api: stale-data deadlines force {quiet['summary'].get('timing', {}).get('force_deadline_ms')} ms, "
          f"joints {quiet['summary'].get('timing', {}).get('joint_deadline_ms')} ms; summaries and logs in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
