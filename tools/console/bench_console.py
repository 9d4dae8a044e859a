#!/usr/bin/env python3
"""What the operator console costs (issue 19): the same simulated scan with no console open,
then with N headless Chromium consoles streaming.

    python3 tools/console/bench_console.py --sim .build/release/sonod-sim [--seconds 30] [--browsers 3]

Four runs: no console; N raw stream readers (the WebSocket read and dropped: the daemon's cost
alone, with no browser competing for the CPU); the same N readers over HTTPS (the console
configured with a fresh self-signed certificate, on loopback: what TLS adds); N headless
browsers. For each: sonod's CPU (user + system, its whole process tree, over the window, as % of one
core), the control loop's overruns and cycles over the window (GET /v1/status), and, with
consoles, each browser's frames/s and image latency (acquisition on the daemon to drawn in the
page, same clock). sonod's whole CPU depends on what the scan is doing (rendering and classifying
30 frames/s dominate), so the console's own cost is also given as the CPU of sonod's SwiftNIO
event-loop threads, where all of the streaming runs. The browsers' CPU is given apart.
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
from consoleapi import chromium, console_configuration, login_url, make_certificate  # noqa: E402
from sonoapi import SimulatedDaemon, process_tree, request  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
TICKS = os.sysconf("SC_CLK_TCK")


def task_cpu_seconds(stat_path):
    """utime + stime of a /proc/…/stat file, in seconds (0 once the task is gone)."""
    try:
        with open(stat_path) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return (int(fields[11]) + int(fields[12])) / TICKS


def tree_cpu_seconds(pid):
    return sum(task_cpu_seconds(f"/proc/{p}/stat") for p in process_tree(pid))


def event_loop_cpu_seconds(pid):
    """CPU of sonod's SwiftNIO event-loop threads (NIO-ELT-*): the console's, which does all of
    the streaming, and the control socket's, idle here but for this tool's two status reads."""
    total = 0
    for p in process_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/comm") as f:
                    name = f.read().strip()
            except OSError:
                continue
            if name.startswith("NIO-ELT"):
                total += task_cpu_seconds(f"/proc/{p}/task/{task}/stat")
    return total


def loop(socket_path):
    status, data = request(socket_path, "GET", "/v1/status")
    state = data["state"] + (f" ({data['latched']['cause']})" if data.get("latched") else "")
    return data["loop"]["overruns"], data["loop"]["cycles"], state


class StreamReader:
    """A console's live stream without a browser: the WebSocket handshake with a session's
    cookie and the console's Origin, then every byte read and dropped (the daemon does the same
    work as for a page; nothing else competes for the CPU)."""

    def __init__(self, url, tls=None):
        import threading
        from consoleapi import Session, open_live_stream
        session = Session(url, tls=tls)
        status, self.sock = open_live_stream(session.base, session.base, session.cookie, tls)
        if status != 101:
            self.sock.close()
            raise RuntimeError(f"the live stream answered {status}, not 101")
        self.sock.settimeout(None)
        self.bytes = 0
        self.closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            self.bytes += len(data)

    def close(self):
        self.closed = True
        self.sock.close()


def run(sim, browsers, seconds, readers=0, tls=False):
    work = tempfile.mkdtemp(prefix="sono-console-bench-")
    socket_path = os.path.join(work, "control.sock")
    extra, context = [], None
    if tls:
        import ssl
        certificate, key = make_certificate(work, "127.0.0.1")
        config = console_configuration(os.path.join(work, "sono.toml"),
                                       f'listen = "127.0.0.1:0"\ntls_certificate = "{certificate}"\ntls_key = "{key}"\n')
        extra, context = ["--config", config], ssl.create_default_context(cafile=certificate)
    daemon = SimulatedDaemon(sim, socket_path, os.path.join(work, "sessions"), os.path.join(work, "sonod.log"), extra=extra)
    drivers = []
    try:
        if not daemon.wait_ready():
            sys.exit("sonod-sim did not start")
        streams = [StreamReader(login_url(socket_path, role="viewer"), tls=context) for _ in range(readers)]
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
        nio0 = event_loop_cpu_seconds(daemon.process.pid)
        bytes0 = sum(r.bytes for r in streams)
        browser_cpu0 = sum(tree_cpu_seconds(d.service.process.pid) for d in drivers)
        for driver in drivers:
            driver.execute_script("window.sonoConsole.latencies = []; window.sonoConsole.frames0 = window.sonoConsole.frames")
        time.sleep(seconds)
        cpu1, t1 = tree_cpu_seconds(daemon.process.pid), time.monotonic()
        nio1 = event_loop_cpu_seconds(daemon.process.pid)
        stream_rate = (sum(r.bytes for r in streams) - bytes0) / (t1 - t0) / max(1, len(streams))
        for r in streams:
            r.close()
        browser_cpu1 = sum(tree_cpu_seconds(d.service.process.pid) for d in drivers)
        overruns1, cycles1, state = loop(socket_path)
        result = {"cpu_percent": 100 * (cpu1 - cpu0) / (t1 - t0), "nio_percent": 100 * (nio1 - nio0) / (t1 - t0), "overruns": overruns1 - overruns0,
                  "cycles": cycles1 - cycles0, "state": state, "browsers": [],
                  "browser_cpu_percent": 100 * (browser_cpu1 - browser_cpu0) / (t1 - t0),
                  "stream_kb_s": stream_rate / 1024}
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
    for label, browsers, readers, tls in (("no console", 0, 0, False),
                                          (f"{args.browsers} stream readers (no browser)", 0, args.browsers, False),
                                          (f"{args.browsers} stream readers over HTTPS (no browser)", 0, args.browsers, True),
                                          (f"{args.browsers} browsers", args.browsers, 0, False)):
        r = run(args.sim, browsers, args.seconds, readers, tls)
        print(f"{label}: sonod CPU {r['cpu_percent']:.1f}% of a core (its event-loop threads, which do the "
              f"streaming: {r['nio_percent']:.2f}%), loop overruns {r['overruns']} "
              f"in {r['cycles']} cycles over {args.seconds:.0f} s (state at end: {r['state']})"
              + (f"; {r['stream_kb_s']:.0f} KiB/s to each reader" if readers else "")
              + (f"; the browsers themselves: {r['browser_cpu_percent']:.1f}% of a core" if browsers else ""), flush=True)
        for i, b in enumerate(r["browsers"]):
            print(f"  browser {i + 1}: {b['fps']:.1f} frames/s, image latency median {b['latency_median_ms']:.1f} ms, "
                  f"p95 {b['latency_p95_ms']:.1f} ms", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
