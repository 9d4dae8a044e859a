"""Shared pieces of the control-API tools (fuzz_api.py, bench_api.py, st_hooks.py).

- `UnixHTTPConnection`: http.client over sonod's Unix socket.
- `LoopbackBridge`: a TCP listener on 127.0.0.1 that forwards each connection byte for byte to
  the Unix socket, for clients that only speak TCP (schemathesis, wrk). sonod sees the bridge's
  process as the peer (SO_PEERCRED), i.e. the same user as the tool that started it.
- `SimulatedDaemon`: sonod-sim on a fresh socket and sessions directory, stopped with SIGTERM.
"""

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10.0):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def request(path, method, target, body=None, timeout=10.0):
    """One request on a new connection: (status, parsed JSON body or raw text)."""
    connection = UnixHTTPConnection(path, timeout=timeout)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        data = json.dumps(body).encode() if body is not None and not isinstance(body, bytes) else body
        connection.request(method, target, body=data, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        try:
            return response.status, json.loads(raw)
        except ValueError:
            return response.status, raw.decode("utf-8", "replace")
    finally:
        connection.close()


class LoopbackBridge:
    """127.0.0.1:<port> → the Unix socket, one thread pair per connection; half-closes are
    passed on (a client's shutdown(SHUT_WR) reaches sonod as end of input)."""

    def __init__(self, unix_path, port=0):
        self.unix_path = unix_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.connect(self.unix_path)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    @staticmethod
    def _pump(source, destination):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                destination.sendall(data)
        except OSError:
            pass
        try:
            destination.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.closed = True
        self.listener.close()


def process_tree(pid):
    """`pid` and its living descendants (the children of each of their threads), each once."""
    pids, seen = [pid], []
    while pids:
        p = pids.pop()
        if p in seen:
            continue
        seen.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    pids.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return seen


class SimulatedDaemon:
    """sonod-sim on `socket_path`, its sessions in `sessions`, its log in `log_path`."""

    def __init__(self, sim, socket_path, sessions, log_path, extra=(), patient=None):
        self.socket_path = socket_path
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        command = [sim] + ([patient] if patient else []) + ["--socket", socket_path, "--sessions", sessions,
                                                            "--no-recording", *extra]
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, seconds=60):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                status, _ = request(self.socket_path, "GET", "/v1/status", timeout=2)
                if status == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def alive(self):
        """Running and answering GET /v1/status with 200."""
        if self.process.poll() is not None:
            return False
        try:
            status, _ = request(self.socket_path, "GET", "/v1/status", timeout=10)
            return status == 200
        except OSError:
            return False

    def peak_rss_kb(self):
        """VmHWM of the daemon: sonod-sim re-executes itself under umockdev-wrapper, so this is
        the largest VmHWM among the process and its descendants."""
        return self._largest_status_field("VmHWM:")

    def rss_kb(self):
        """Current VmRSS, the largest among the process and its descendants (see peak_rss_kb)."""
        return self._largest_status_field("VmRSS:")

    def _largest_status_field(self, field):
        best = 0
        for pid in process_tree(self.process.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith(field):
                            best = max(best, int(line.split()[1]))
            except OSError:
                pass
        return best

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def report(tool, failures):
    """Prints each failure and the verdict; the exit status (1 when anything failed)."""
    for failure in failures:
        print(f"{tool}: FAIL: {failure}", file=sys.stderr)
    print(f"{tool}: {'passed' if not failures else 'failed'}")
    return 1 if failures else 0
