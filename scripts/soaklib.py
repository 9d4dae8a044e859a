"""What the soak scripts share (scripts/scan-soak.py, soak.py, crash-soak.py): sonod-sim as a
child process with its own configuration, the control API on its Unix socket (through the
control-API tools' client, tools/api/sonoapi.py), the process's resources from /proc, random
patients, the problems a scan summary reports, and a least-squares trend. Standard library only,
but for `recording_span` (the reference MCAP reader, tools/record/requirements.txt, installed by
scripts/install-deps.sh).
"""
import http.client
import importlib.util
import math
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools/api"))
import sonoapi  # noqa: E402  (the control-API tools' client: http.client on the Unix socket)

VIEWS = ["PLAX", "PSAX", "A4C", "A2C"]


def summary_problems(summary):
    """What makes a scan fail a soak: its stops, board faults and any interruption (a soak's scans
    are never cancelled). The interruption counts on its own: a stop that ends a scan can miss
    the summary's `stops` (the planner sees the controller's state before the stop event reaches
    ScanControl.note(stop:), which keeps only stops while the scan runs)."""
    stops = [s["cause"] for s in summary.get("stops", [])]
    faults = [f"{f['board']} {f['code']}" for f in summary.get("faults", [])]
    interruption = summary.get("interruption")
    return stops + faults + ([interruption] if interruption else [])


def random_patients(count, seed, seed_base, prefix, out):
    """`count` random patients from tools/vision/make_patients.py's population, written to `out`.
    Their seeds start at `seed_base`: pick one no other set uses (PatientPopulation's table)."""
    spec = importlib.util.spec_from_file_location("make_patients", os.path.join(ROOT, "tools/vision/make_patients.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--count", str(count), "--seed", str(seed), "--seed-base", str(seed_base),
                 "--prefix", prefix, "--out", out])
    return [os.path.join(out, f"{prefix}-{i:03d}.toml") for i in range(count)]


class API:
    """The control API (docs/control-api.yaml) on a Unix socket: one connection per request."""

    def __init__(self, path, timeout=10):
        self.path = path
        self.timeout = timeout
        self.requests = 0

    def call(self, method, route, body=None):
        """(HTTP status, decoded JSON body); raises OSError when the daemon does not answer."""
        try:
            status, answer = sonoapi.request(self.path, method, route, body, timeout=self.timeout)
        except http.client.HTTPException as error:
            raise OSError(f"{method} {route}: {error}") from error
        self.requests += 1
        return status, (answer if isinstance(answer, dict) else {"text": answer})

    def get(self, route):
        return self.call("GET", route)

    def post(self, route, body=None):
        return self.call("POST", route, body)

    def wait_ready(self, seconds, alive=lambda: True):
        """The status once the daemon answers, or None after `seconds` or when `alive()` fails."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and alive():
            try:
                status, body = self.get("/v1/status")
                if status == 200:
                    return body
            except OSError:
                pass
            time.sleep(0.05)
        return None

    def start_scan(self, views=VIEWS, patience=15):
        """As the command-line scan does, from drives off: enable, allow motion, scan, once the arm
        is still. A refusal (409: e.g. a stale input still present just after start on a loaded
        machine) is tried again, as an operator would, for up to `patience` seconds. None, or what
        was refused."""
        # A fault latched just after start (a stale input on a loaded machine) is reset once its
        # cause is gone, as an operator would.
        steps = {"fault": ("/v1/reset", None, 200),
                 "disabled": ("/v1/enable", None, 200), "ready": ("/v1/motion/enable", None, 200),
                 "operator_enabled": ("/v1/scan", {"views": views}, 202)}
        deadline = time.monotonic() + patience
        first = None  # the first refusal: the last may only follow from it
        while True:
            status, body = self.get("/v1/status")
            state = body.get("state") if status == 200 else None
            busy = [flag for flag in ("moving", "lifting_off", "retracting", "releasing") if status == 200 and body.get(flag)]
            if state not in steps:
                refused = f"cannot start a scan in state {state}"
            elif busy:
                # The last scan's lift-off is still under way: a scan started now is refused its moves.
                refused = f"the arm is still {', '.join(busy)}"
            else:
                route, request, expected = steps[state]
                status, body = self.post(route, request)
                if status == expected:
                    if route == "/v1/scan":
                        return None
                    continue
                refused = f"{route}: {status} {body}"
            first = first or refused
            if time.monotonic() >= deadline:
                return refused if refused == first else f"{refused} (first: {first})"
            time.sleep(0.25)

    def drives_off(self):
        """Drives off, and a latched fault or e-stop reset (once its cause is gone), so that the
        next scan can start. None, or what was refused."""
        status, body = self.post("/v1/disable")
        if status != 200:
            return f"/v1/disable: {status} {body}"
        if body.get("state") in ("fault", "emergency_stop"):
            status, body = self.post("/v1/reset")
            if status != 200:
                return f"/v1/reset: {status} {body}"
        return None


class SimDaemon:
    """sonod-sim on one patient, with its own socket, sessions and recordings folders (a written
    configuration: the defaults are shared /tmp paths), its output in `folder`/daemon.log."""

    def __init__(self, sim, patient, folder):
        folder = os.path.abspath(folder)  # the configuration's paths must be absolute
        self.folder = folder
        self.socket = os.path.join(folder, "control.sock")
        self.sessions = os.path.join(folder, "sessions")
        self.recordings = os.path.join(folder, "recordings")
        os.makedirs(folder, exist_ok=True)
        config = os.path.join(folder, "sono.toml")
        with open(config, "w") as f:
            f.write(f'[files]\nrobot = "{ROOT}/hardware/arm.toml"\nsafety = "{ROOT}/hardware/safety.toml"\n'
                    f'scan_prior = "{ROOT}/hardware/scan-prior.toml"\nmodel = "{ROOT}/models/view-classifier.onnx"\n'
                    f'[recording]\ndirectory = "{self.sessions}"\nmcap_directory = "{self.recordings}"\n'
                    f'[control]\nsocket = "{self.socket}"\n')
        self.log = open(os.path.join(folder, "daemon.log"), "w")
        # umockdev-wrapper execs: the child's pid is the daemon's. The emulated devices' testbed
        # goes to TMPDIR: in `folder`, a killed daemon's goes with it (it cannot remove its own).
        environment = dict(os.environ, TMPDIR=folder)
        self.process = subprocess.Popen([os.path.abspath(sim), os.path.abspath(patient), "--config", config], stdout=self.log, stderr=subprocess.STDOUT,
                                        cwd=ROOT, env=environment, start_new_session=True)
        self.pid = self.process.pid
        self.api = API(self.socket)

    def alive(self):
        return self.process.poll() is None

    def wait_ready(self, seconds=60):
        return self.api.wait_ready(seconds, self.alive)

    def terminate(self, seconds=30):
        """SIGTERM (the daemon stops the arm and closes its recording); the exit status."""
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(seconds)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode

    def kill(self):
        """SIGKILL, no warning; the monotonic time of the kill, ns (the recordings' log-time clock)."""
        killed_at = time.monotonic_ns()
        os.kill(self.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()
        return killed_at

    def recordings_written(self):
        return sorted(os.path.join(self.recordings, name) for name in os.listdir(self.recordings)
                      if name.endswith(".mcap") and not name.endswith("-recovered.mcap")) \
            if os.path.isdir(self.recordings) else []


def process_resources(pid):
    """Resident memory (KiB), open descriptors and threads of a live process."""
    rss = threads = None
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": threads}


def recording_span(path):
    """(messages, last log time in ns) of a complete MCAP file, from its summary, by the reference
    reader (a peer of SonoRecord's). The last time is the latest message's or attachment's: the
    daemon attaches its files when the recording opens, so a recording cut before its first chunk
    closed still tells when it began."""
    from mcap.reader import make_reader
    with open(path, "rb") as f:
        summary = make_reader(f).get_summary()
    attached = max((index.log_time for index in summary.attachment_indexes), default=0)
    statistics = summary.statistics
    last = max(attached, statistics.message_end_time if statistics.message_count else 0)
    return statistics.message_count, last


def trend(points):
    """Least-squares line through (t, y): slope per unit of t, its standard error, and n."""
    n = len(points)
    if n < 3:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    stt = sum((t - mean_t) ** 2 for t, _ in points)
    if stt == 0:
        return None
    slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / stt
    residual = sum((y - mean_y - slope * (t - mean_t)) ** 2 for t, y in points)
    return slope, math.sqrt(residual / (n - 2) / stt), n
