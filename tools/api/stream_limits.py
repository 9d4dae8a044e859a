#!/usr/bin/env python3
"""Slow and stuck clients of sonod's control socket cost bounded memory (issue 18).

    python3 tools/api/stream_limits.py [--sim .build/debug/sonod-sim]

Against a running sonod-sim on a fresh socket:
  1. A stalled event-stream reader: it subscribes to GET /v1/events and never reads, while a
     driver makes events (recording start/stop with long names, about 330 bytes of events a
     cycle) and a second subscriber reads them all. sonod must disconnect the stalled one once
     more than ControlServer.maxQueuedBytesPerConnection (64 KiB) waits for it: when it finally
     reads, it gets at most that plus what the kernel's socket buffers held, then end of
     stream. The reading subscriber must get every event and stay connected.
  2. A client that pipelines GET /v1/status requests and never reads the answers: sonod stops
     reading its requests once the answers queued for it pass the bound, so it does not answer
     more than the bound and the kernel buffers hold (each answer is about 3 KB).
  3. Half-open connections (connected, half a request line, then silence): closed by sonod
     after its idle timeout (30 s), while the daemon keeps answering others.
The daemon's resident memory must grow by less than 32 MB over the whole test.
Exits 1 naming each check that fails.
"""

import argparse
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sonoapi import SimulatedDaemon, UnixHTTPConnection, report, request  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BOUND = 64 * 1024           # ControlServer.maxQueuedBytesPerConnection
KERNEL_SLACK = 1024 * 1024  # generous: unix socket buffers on both sides (net.core.wmem_max-ish)
IDLE_TIMEOUT_S = 30         # ControlServer.idleTimeout
RSS_GROWTH_LIMIT_KB = 32 * 1024


def subscribe(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(path)
    sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return sock


def drain(sock, seconds):
    """Reads until end of stream or `seconds` of silence: (bytes read, ended)."""
    sock.settimeout(seconds)
    total = 0
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return total, True
            total += len(data)
    except socket.timeout:
        return total, False
    except ConnectionResetError:
        return total, True


class Reader(threading.Thread):
    """A subscriber that keeps up: counts `event: recording` lines."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = subscribe(path)
        self.events = 0
        self.ended = False
        self.stopping = False

    def run(self):
        tail = b""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    self.ended = not self.stopping
                    return
                tail += data
                self.events += tail.count(b"event: recording\n")
                tail = tail[tail.rfind(b"\n") + 1:] if b"\n" in tail else tail
        except OSError:
            self.ended = not self.stopping


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", default=str(ROOT / ".build/debug/sonod-sim"))
    parser.add_argument("--cycles", type=int, default=1500, help="recording start/stop cycles of the event test")
    args = parser.parse_args()
    if not os.access(args.sim, os.X_OK):
        sys.exit(f"stream_limits: {args.sim} is not built (swift build --product sonod-sim)")
    scratch = tempfile.mkdtemp(prefix="sono-stream-")
    path = os.path.join(scratch, "control.sock")
    out = ROOT / ".build/api-stream"
    out.mkdir(parents=True, exist_ok=True)
    daemon = SimulatedDaemon(args.sim, path, os.path.join(scratch, "sessions"), str(out / "sonod-sim.log"))
    failures = []
    try:
        if not daemon.wait_ready():
            sys.exit(f"stream_limits: sonod-sim did not come up; see {out}/sonod-sim.log")
        time.sleep(1)
        rss_start = daemon.rss_kb()

        # 1. A stalled subscriber beside one that keeps up.
        stalled = subscribe(path)
        reader = Reader(path)
        reader.start()
        time.sleep(0.5)
        connection = UnixHTTPConnection(path)
        started = time.monotonic()
        made = 0
        for cycle in range(args.cycles):
            name = f"{cycle:06d}-" + "x" * 57
            for target, body in (("/v1/recording/start", f'{{"name": "{name}"}}'), ("/v1/recording/stop", None)):
                connection.request("POST", target, body=body,
                                   headers={"Content-Type": "application/json"} if body else {})
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    failures.append(f"POST {target} answered {response.status} in cycle {cycle}")
                    break
                made += 1
            if failures:
                break
        connection.close()
        seconds = time.monotonic() - started
        time.sleep(1)
        received, ended = drain(stalled, 5)
        stalled.close()
        print(f"stream_limits: {made} recording events made in {seconds:.1f} s; the stalled subscriber got "
              f"{received / 1024:.0f} KiB, then {'end of stream (dropped)' if ended else 'nothing more (still connected)'}")
        if not ended:
            failures.append("the stalled event-stream client was not disconnected")
        if received > BOUND + KERNEL_SLACK:
            failures.append(f"the stalled client got {received} bytes, more than the bound plus kernel buffers")
        reader.stopping = True
        time.sleep(0.5)
        print(f"stream_limits: the reading subscriber got {reader.events} of {made} recording events"
              + (", then was disconnected" if reader.ended else ", still connected"))
        if reader.ended:
            failures.append("the subscriber that kept up was disconnected")
        if reader.events != made:
            failures.append(f"the subscriber that kept up got {reader.events} recording events of {made}")
        reader.sock.close()

        # 2. Pipelined requests whose answers are never read.
        greedy = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.connect(path)
        greedy.settimeout(0.2)
        sent = 0
        one = b"GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n"
        deadline = time.monotonic() + 15
        try:
            while time.monotonic() < deadline and sent < 20000:
                greedy.sendall(one)
                sent += 1
        except (socket.timeout, BlockingIOError):
            pass  # sonod stopped reading: the kernel's buffer towards it is full
        time.sleep(1)
        answered, _ = drain(greedy, 3)
        greedy.close()
        status_bytes = len(str(request(path, "GET", "/v1/status")[1]))
        print(f"stream_limits: a client pipelined {sent} status requests without reading; "
              f"{answered / 1024:.0f} KiB of answers were waiting for it (about {answered // max(status_bytes, 1)} answers)")
        if sent >= 20000:
            failures.append("sonod kept reading the requests of a client that reads no answers (20000 sent)")

        # 3. Half-open connections.
        half_open = []
        for _ in range(20):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            sock.sendall(b"GET /v1/sta")
            half_open.append(sock)
        status, _ = request(path, "GET", "/v1/status")
        if status != 200:
            failures.append(f"GET /v1/status answered {status} beside 20 half-open connections")
        time.sleep(IDLE_TIMEOUT_S + 5)
        closed = 0
        for sock in half_open:
            _, ended = drain(sock, 1)
            closed += ended
            sock.close()
        print(f"stream_limits: {closed} of {len(half_open)} half-open connections closed by sonod after its idle timeout")
        if closed != len(half_open):
            failures.append(f"{len(half_open) - closed} half-open connections were still open after {IDLE_TIMEOUT_S + 5} s")

        rss_end = daemon.rss_kb()
        print(f"stream_limits: sonod-sim RSS {rss_start / 1024:.0f} MB → {rss_end / 1024:.0f} MB "
              f"(peak {daemon.peak_rss_kb() / 1024:.0f} MB)")
        if rss_end - rss_start > RSS_GROWTH_LIMIT_KB:
            failures.append(f"the daemon's memory grew by {(rss_end - rss_start) / 1024:.0f} MB")
        if not daemon.alive():
            failures.append("the daemon is no longer answering")
    finally:
        daemon.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return report("stream_limits", failures)


if __name__ == "__main__":
    sys.exit(main())
