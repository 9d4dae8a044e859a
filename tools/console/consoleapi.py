"""Shared pieces of the console tools (test_console.py, bench_console.py): login URLs from
sonod's Unix socket, HTTP against the console's listener, and headless Chromium via Selenium."""

import http.client as httpclient
import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from sonoapi import request  # noqa: E402,F401

ROOT = Path(__file__).resolve().parents[2]


def login_url(socket_path, role=None, expires=None):
    body = {}
    if role:
        body["role"] = role
    if expires:
        body["expires_in_s"] = expires
    status, data = request(socket_path, "POST", "/v1/console/login", body=body)
    if status != 201:
        raise RuntimeError(f"POST /v1/console/login: {status} {data}")
    return data["url"]


def open_live_stream(base, origin, cookie, tls=None):
    """The console's WebSocket upgrade (`/console/live`) sent raw, with this Origin and Cookie:
    (status of the answer, 0 if none; the connection, left open for the caller to read or close).
    An https `base` needs `tls`, the ssl.SSLContext that trusts the console's certificate."""
    import base64
    import socket
    parts = urllib.parse.urlsplit(base)
    conn = socket.create_connection((parts.hostname, parts.port), timeout=5)
    if parts.scheme == "https":
        if tls is None:
            conn.close()
            raise ValueError(f"{base}: an https console needs an ssl context that trusts its certificate")
        conn = tls.wrap_socket(conn, server_hostname=parts.hostname)
    key = base64.b64encode(os.urandom(16)).decode()
    conn.sendall((f"GET /console/live HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {origin}\r\nCookie: {cookie}\r\n\r\n").encode())
    try:
        line = conn.recv(4096).split(b"\r\n", 1)[0].decode(errors="replace").split()
    except OSError:
        line = []
    return (int(line[1]) if len(line) > 1 and line[1].isdigit() else 0), conn


def websocket_status(base, origin, cookie, tls=None):
    """The status the console answers a live-stream upgrade with (101 when accepted)."""
    status, conn = open_live_stream(base, origin, cookie, tls)
    conn.close()
    return status


class Checks:
    """A test tool's checks: each printed as PASS/FAIL as it is made, then the verdict."""

    def __init__(self):
        self.results = []

    def __call__(self, name, ok, detail=""):
        self.results.append((name, bool(ok)))
        print(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)

    @property
    def failed(self):
        return [name for name, ok in self.results if not ok]

    def verdict(self):
        """Prints the counts; the exit status (1 when any check failed)."""
        print(f"{len(self.results) - len(self.failed)} passed, {len(self.failed)} failed")
        return 1 if self.failed else 0


def make_certificate(work, address):
    """A self-signed P-256 certificate for `address` (and 127.0.0.1), valid one day, made by the
    openssl command, and its key (mode 600): (certificate path, key path)."""
    certificate, key = os.path.join(work, "console.crt"), os.path.join(work, "console.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", key, "-out", certificate, "-days", "1", "-subj", "/CN=sono-console",
                    "-addext", f"subjectAltName=IP:{address},IP:127.0.0.1"],
                   check=True, capture_output=True)
    os.chmod(key, 0o600)
    return certificate, key


def console_configuration(path, console):
    """Writes a sono.toml for `sonod-sim --config` to `path`: the repository's hardware files and
    this [console] section (TOML lines after `assets`)."""
    hardware = ROOT / "hardware"
    with open(path, "w") as out:
        out.write(f'[files]\nrobot = "{hardware}/arm.toml"\nsafety = "{hardware}/safety.toml"\n'
                  f'scan_prior = "{hardware}/scan-prior.toml"\nmodel = "{ROOT}/models/view-classifier.onnx"\n'
                  f'[console]\nassets = "{ROOT}/console"\n{console}')
    return path


def http(url, method="GET", path=None, headers=None, body=None, tls=None):
    """One request to the console: (status, headers dict (lower-case), body bytes). An https
    URL needs `tls`, the ssl.SSLContext that trusts the console's certificate."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        if tls is None:
            raise ValueError(f"{url}: an https console needs an ssl context that trusts its certificate")
        connection = httpclient.HTTPSConnection(parts.hostname, parts.port, timeout=10, context=tls)
    else:
        connection = httpclient.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        target = path if path is not None else (parts.path + ("?" + parts.query if parts.query else ""))
        data = json.dumps(body).encode() if body is not None else None
        all_headers = dict(headers or {})
        if data is not None:
            all_headers.setdefault("Content-Type", "application/json")
        connection.request(method, target, body=data, headers=all_headers)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


class Session:
    """A console session opened from a login URL without a browser: its cookie and CSRF token."""

    def __init__(self, url, tls=None):
        parts = urllib.parse.urlsplit(url)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.tls = tls
        status, headers, _ = http(url, tls=tls)
        if status != 303 or "set-cookie" not in headers:
            raise RuntimeError(f"login: {status} {headers}")
        self.cookie = headers["set-cookie"].split(";")[0]
        self.set_cookie = headers["set-cookie"]
        status, _, body = http(self.base, path="/console/session", headers={"Cookie": self.cookie}, tls=tls)
        if status != 200:
            raise RuntimeError(f"/console/session: {status} {body}")
        info = json.loads(body)
        self.csrf = info["csrf_token"]
        self.role = info["role"]

    def call(self, method, path, body=None, csrf=True, origin="own", extra=None):
        headers = {"Cookie": self.cookie}
        if csrf:
            headers["X-CSRF-Token"] = self.csrf
        if origin == "own":
            headers["Origin"] = self.base
        elif origin:
            headers["Origin"] = origin
        headers.update(extra or {})
        status, _, raw = http(self.base, method, path, headers=headers, body=body, tls=self.tls)
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw


_NICE_CHROMIUM = None


def _niced_chromium():
    """A wrapper that runs chromium at nice 10. The simulated daemon's boards (umockdev relays,
    the virtual patient's firmware threads) run at normal priority on this same machine, and a
    browser competing with them on 2 cores can delay the simulated force sensor's samples past
    the stale-data deadline; next to real hardware the boards are not on the host's CPU."""
    global _NICE_CHROMIUM
    if _NICE_CHROMIUM is None:
        import tempfile
        fd, path = tempfile.mkstemp(prefix="sono-chromium-", suffix=".sh")
        os.write(fd, b'#!/bin/sh\nexec nice -n 10 /usr/bin/chromium "$@"\n')
        os.close(fd)
        os.chmod(path, 0o755)
        _NICE_CHROMIUM = path
    return _NICE_CHROMIUM


def chromium(width=1280, height=800, accept_insecure_certs=False):
    """Headless Debian chromium through chromium-driver (/usr/bin/chromedriver). The TLS test
    accepts its own self-signed certificate (the page's checks then verify it in Python)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _niced_chromium()
    options.accept_insecure_certs = accept_insecure_certs
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={width},{height}", "--disable-background-timer-throttling",
                     "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    # The page's viewport exactly (--window-size counts the window, not the page).
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver
