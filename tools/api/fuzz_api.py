#!/usr/bin/env python3
"""The control API attacked from its own document: schemathesis (PyPI) against
docs/control-api.yaml with a running sonod-sim.

    python3 tools/api/fuzz_api.py [--sim .build/debug/sonod-sim] [--seed 18] [--max-examples 100]

sonod-sim listens on a fresh Unix socket with a fresh sessions directory; schemathesis speaks
TCP, so it reaches the socket through a loopback bridge (sonoapi.LoopbackBridge: bytes passed
through unchanged; the peer sonod sees is this process, so the same user). schemathesis runs
every operation of the document but the event stream (which never ends) through its phases
(examples, coverage, fuzzing, stateful links), positive and negative data, all its checks,
with one worker and a fixed seed, plus st_hooks.py's own check that a refused request leaves
the arm where it was. Meanwhile one client follows GET /v1/events on the socket and checks
every event's data against the document's `x-sono-events` schema of its name.

Passes when: schemathesis reports no failure; no response had a 5xx status (counted from every
response, st_hooks.py); every streamed event matched its schema; the daemon is still running
and answers GET /v1/status; the event stream was not closed. Prints the figures and exits 1
otherwise. The run is bounded by --timeout (default 240 s) on top of the case counts.
"""

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

try:
    import yaml
    from openapi_schema_validator import OAS31Validator, oas31_format_checker
except ImportError as exc:  # pragma: no cover
    sys.exit(f"fuzz_api: missing package ({exc}); run: pip install -r tools/api/requirements.txt")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sonoapi import LoopbackBridge, SimulatedDaemon, report  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs/control-api.yaml"


class EventWatcher:
    """Follows GET /v1/events on the Unix socket and validates each event's data."""

    def __init__(self, socket_path, doc):
        media = doc["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]["text/event-stream"]
        components = doc["components"]
        self.validators = {name: OAS31Validator({**ref, "components": components}, format_checker=oas31_format_checker)
                           for name, ref in media["x-sono-events"].items()}
        self.counts = collections.Counter()
        self.problems = []
        self.closed_by_server = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(socket_path)
        self.sock.sendall(b"GET /v1/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.stopping = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buffer = b""
        head_done = False
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    self.closed_by_server = not self.stopping
                    return
                buffer += chunk
                if not head_done:
                    if b"\r\n\r\n" not in buffer:
                        continue
                    head, buffer = buffer.split(b"\r\n\r\n", 1)
                    if not head.startswith(b"HTTP/1.1 200"):
                        self.problems.append(f"GET /v1/events answered {head.splitlines()[0]!r}")
                        return
                    head_done = True
                # The body is chunked (no Content-Length): strip the chunk framing lazily by
                # looking only for complete SSE blocks inside the decoded text.
                while True:
                    decoded, rest = self._dechunk(buffer)
                    if decoded is None:
                        break
                    self._pending = getattr(self, "_pending", "") + decoded
                    buffer = rest
                    while "\n\n" in self._pending:
                        block, self._pending = self._pending.split("\n\n", 1)
                        self._event(block)
        except OSError:
            if not self.stopping:
                self.closed_by_server = True

    @staticmethod
    def _dechunk(buffer):
        """One HTTP chunk: (its text, the rest) or (None, buffer) when incomplete."""
        if b"\r\n" not in buffer:
            return None, buffer
        size_line, rest = buffer.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0], 16)
        if len(rest) < size + 2:
            return None, buffer
        return rest[:size].decode("utf-8"), rest[size + 2:]

    def _event(self, block):
        name, data = None, None
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "event":
                name = value
            elif field == "data":
                data = value
        if name is None:
            return
        self.counts[name] += 1
        validator = self.validators.get(name)
        if validator is None:
            self.problems.append(f"event '{name}' is not in the document's x-sono-events")
            return
        try:
            value = json.loads(data or "")
        except ValueError:
            self.problems.append(f"event '{name}': data is not JSON: {data!r}")
            return
        for error in validator.iter_errors(value):
            self.problems.append(f"event '{name}': {error.message} (data {data})")

    def close(self):
        self.stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sim", default=str(ROOT / ".build/debug/sonod-sim"))
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--max-examples", type=int, default=100, help="per operation and phase (schemathesis -n)")
    parser.add_argument("--timeout", type=float, default=240, help="the whole schemathesis run, seconds")
    parser.add_argument("--out", default=str(ROOT / ".build/api-fuzz"))
    args = parser.parse_args()
    if not os.access(args.sim, os.X_OK):
        sys.exit(f"fuzz_api: {args.sim} is not built (swift build --product sonod-sim)")
    st = shutil.which("st")
    if st is None:
        sys.exit("fuzz_api: schemathesis is missing; run: pip install -r tools/api/requirements.txt")

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    doc = yaml.safe_load(args.spec.read_text(encoding="utf-8"))
    scratch = tempfile.mkdtemp(prefix="sono-api-fuzz-")
    socket_path = os.path.join(scratch, "control.sock")
    log_path = os.path.join(args.out, "responses.jsonl")
    daemon = SimulatedDaemon(args.sim, socket_path, os.path.join(scratch, "sessions"), os.path.join(args.out, "sonod-sim.log"))
    failures = []
    try:
        if not daemon.wait_ready():
            sys.exit(f"fuzz_api: sonod-sim did not come up; see {args.out}/sonod-sim.log")
        watcher = EventWatcher(socket_path, doc)
        bridge = LoopbackBridge(socket_path)
        command = [st, "run", str(args.spec.resolve()), "--url", bridge.url, "--checks", "all", "--workers", "1",
                   "--seed", str(args.seed), "--max-examples", str(args.max_examples),
                   "--exclude-path", "/v1/events", "--request-timeout", "30", "--no-color",
                   "--generation-database", "none", "--report", "junit",
                   "--report-junit-path", os.path.join(args.out, "junit.xml")]
        environment = {**os.environ, "SCHEMATHESIS_HOOKS": "st_hooks", "SONO_API_SOCKET": socket_path,
                       "SONO_API_FUZZ_LOG": log_path,
                       "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
        print("fuzz_api: " + " ".join(command), flush=True)
        started = time.monotonic()
        try:
            # In the output directory: schemathesis keeps a cache of crashes (.schemathesis/) where it runs.
            result = subprocess.run(command, env=environment, timeout=args.timeout, cwd=args.out,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            output, code = result.stdout, result.returncode
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            code = None
            failures.append(f"schemathesis did not finish within {args.timeout:.0f} s")
        seconds = time.monotonic() - started
        with open(os.path.join(args.out, "schemathesis.txt"), "w") as f:
            f.write(output)
        if code != 0:
            print(output)
            if code is not None:
                failures.append(f"schemathesis exited {code} (its report above; also {args.out}/schemathesis.txt)")
        else:
            # The summary: its last lines (operations, test cases, checks).
            tail = output.strip().splitlines()
            print("\n".join(tail[-12:]))

        time.sleep(0.5)
        alive = daemon.alive()
        if not alive:
            failures.append(f"the daemon is no longer running or answering (exit status {daemon.process.poll()}); "
                            f"see {args.out}/sonod-sim.log")
        watcher.close()
        if watcher.closed_by_server:
            failures.append("the daemon closed the event stream of a client that kept up")
        failures.extend(watcher.problems)
        bridge.close()

        responses = []
        refusals = []
        if os.path.exists(log_path):
            for line in open(log_path):
                entry = json.loads(line)
                (responses if entry["kind"] == "response" else refusals).append(entry)
        by_class = collections.Counter(f"{entry['status'] // 100}xx" for entry in responses)
        server_errors = [entry for entry in responses if entry["status"] >= 500]
        for entry in server_errors[:10]:
            failures.append(f"{entry['operation']} answered {entry['status']}")
        if not responses:
            failures.append("no response was logged: st_hooks.py was not loaded")
        print(f"fuzz_api: {len(responses)} responses in {seconds:.0f} s ("
              + ", ".join(f"{count} {name}" for name, count in sorted(by_class.items()))
              + f"); 5xx: {len(server_errors)}")
        moved = max((max(r["moved_mm"], r["turned_deg"]) for r in refusals), default=0.0)
        print(f"fuzz_api: {len(refusals)} refused requests with the arm at rest before them; "
              f"largest probe change after one: {moved:.3f} (mm or deg; limit 0.5)")
        if not refusals:
            failures.append("no refused request was checked against the arm's pose (the custom check did not run)")
        print(f"fuzz_api: {sum(watcher.counts.values())} events streamed and checked against x-sono-events ("
              + ", ".join(f"{count} {name}" for name, count in sorted(watcher.counts.items())) + ")")
        print(f"fuzz_api: daemon {'alive' if alive else 'DOWN'}; peak RSS {daemon.peak_rss_kb() / 1024:.0f} MB")
    finally:
        daemon.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return report("fuzz_api", failures)


if __name__ == "__main__":
    sys.exit(main())
