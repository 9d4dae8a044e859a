#!/usr/bin/env python3
"""What the operator console costs (issue 19): the same simulated scan with no console open,
then with N headless Chromium consoles streaming.

    python3 tools/console/bench_console.py --sim .build/release/sonod-sim [--seconds 30] [--browsers 3]

For each run: sonod's CPU (user + system, its whole process tree, over the window, as % of one
core), the control loop's overruns and cycles over the window (GET /v1/status), and, with
consoles, each browser's frames/s and image latency (acquisition on the daemon to drawn in the
page, same clock). The browsers' own CPU is not sonod's and is not counted.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from consoleapi import chromium, login_url  # noqa: E402
from sonoapi import SimulatedDaemon, request  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid):
    total, pids, seen = 0, [pid], set()
    while pids:
        p = pids.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pids.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return total / TICKS


def loop(socket_path):
    status, data = request(socket_path, "GET", "/v1/status")
    return data["loop"]["overruns"], data["loop"]["cycles"], data["state"]


def run(sim, browsers, seconds):
    work = tempfile.mkdtemp(prefix="sono-console-bench-")
    socket_path = os.path.join(work, "control.sock")
    daemon = SimulatedDaemon(sim, socket_path, os.path.join(work, "sessions"), os.path.join(work, "sonod.log"))
    drivers = []
    try:
        if not daemon.wait_ready():
            sys.exit("sonod-sim did not start")
        for _ in range(browsers):
            driver = chromium()
            driver.get(login_url(socket_path, role="viewer"))
            drivers.append(driver)
        for driver in drivers:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not driver.execute_script("return window.sonoConsole && window.sonoConsole.frames > 10"):
                time.sleep(0.2)
        # A scan, so that the loop does real work (contact, force control) during the window.
        for path, body in (("/v1/enable", None), ("/v1/motion/enable", None), ("/v1/scan", {"views": ["PLAX", "PSAX", "A4C", "A2C"]})):
            request(socket_path, "POST", path, body=body)
        time.sleep(3)
        overruns0, cycles0, _ = loop(socket_path)
        cpu0, t0 = tree_cpu_seconds(daemon.process.pid), time.monotonic()
        for driver in drivers:
            driver.execute_script("window.sonoConsole.latencies = []; window.sonoConsole.frames0 = window.sonoConsole.frames")
        time.sleep(seconds)
        cpu1, t1 = tree_cpu_seconds(daemon.process.pid), time.monotonic()
        overruns1, cycles1, state = loop(socket_path)
        result = {"cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0), "overruns": overruns1 - overruns0,
                  "cycles": cycles1 - cycles0, "state": state, "browsers": []}
        for driver in drivers:
            frames, latencies = driver.execute_script(
                "const m = window.sonoConsole; return [m.frames - m.frames0, m.latencies.slice()]")
            latencies.sort()
            result["browsers"].append({"fps": frames / (t1 - t0),
                                       "latency_median_ms": statistics.median(latencies) if latencies else float("nan"),
                                       "latency_p95_ms": latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")})
        return result
    finally:
        for driver in drivers:
            driver.quit()
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", default=str(ROOT / ".build/release/sonod-sim"))
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--browsers", type=int, default=3)
    args = parser.parse_args()
    for browsers in (0, args.browsers):
        r = run(args.sim, browsers, args.seconds)
        print(f"{browsers} consoles: sonod CPU {r['cpu_percent']:.1f}% of a core, loop overruns {r['overruns']} "
              f"in {r['cycles']} cycles over {args.seconds:.0f} s (state at end: {r['state']})")
        for i, b in enumerate(r["browsers"]):
            print(f"  browser {i + 1}: {b['fps']:.1f} frames/s, image latency median {b['latency_median_ms']:.1f} ms, "
                  f"p95 {b['latency_p95_ms']:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
