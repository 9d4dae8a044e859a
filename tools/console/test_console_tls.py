#!/usr/bin/env python3
"""The operator console beyond loopback, over HTTPS (issue 19's security rules), end to end:
sonod-sim reads a sono.toml with a [console] section, a certificate and key made here by the
openssl command, and listens on this machine's non-loopback address.

    python3 tools/console/test_console_tls.py --sim .build/debug/sonod-sim

Checks (each printed as PASS/FAIL; exits 1 if any fails):
  - a non-loopback listen without TLS stops sonod at start (exit 78, naming console.listen);
  - a certificate without its key stops it too (naming console.tls_key);
  - a world-readable key, or a key that is not the certificate's own, keeps the console shut
    (sonod runs; the socket's login answers 503 with the reason);
  - with both: the login URL is https on that address; Python's ssl module, trusting only this
    certificate, verifies the chain and the address; the session cookie is Secure, HttpOnly,
    SameSite=Strict; the negotiated protocol is TLS 1.2 or later, and a client offering at most
    TLS 1.1 is refused; plain HTTP on the port gets no HTTP answer;
  - the Origin check knows the scheme: http://ADDRESS:PORT is a foreign origin of
    https://ADDRESS:PORT for state changes and WebSocket upgrades;
  - headless Chromium loads the page over https, its live stream connects over wss, the image
    changes at least 10 times in 1 s, and the page's own Enable reaches the daemon.
"""

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.parse
import warnings
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from consoleapi import Checks, Session, chromium, console_configuration, http, login_url, make_certificate, websocket_status  # noqa: E402
from sonoapi import SimulatedDaemon, request  # noqa: E402
from test_console import COUNT_IMAGE_CHANGES, wait_for  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION_EXIT = 78
check = Checks()


def non_loopback_address():
    """An IPv4 address of this machine's own interfaces that is not loopback, or None."""
    import fcntl
    import struct
    SIOCGIFADDR = 0x8915
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _, name in socket.if_nameindex():
            try:
                answer = fcntl.ioctl(probe.fileno(), SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
            except OSError:
                continue  # no IPv4 address on this interface
            address = socket.inet_ntoa(answer[20:24])
            if not address.startswith("127."):
                return address
    finally:
        probe.close()
    return None


def daemon(args, work, name, config):
    return SimulatedDaemon(args.sim, os.path.join(work, f"{name}.sock"), os.path.join(work, "sessions"),
                           os.path.join(work, f"{name}.log"), extra=["--config", config])


def configuration(work, name, console):
    return console_configuration(os.path.join(work, f"{name}.toml"), console)


def refused_at_start(args, work, name, console, key):
    sim = daemon(args, work, name, configuration(work, name, console))
    try:
        status = sim.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        status = None
    finally:
        sim.stop()
    log = open(os.path.join(work, f"{name}.log")).read()
    line = next((line for line in log.splitlines() if key in line), "")
    check(f"{name}: sonod refuses to start (exit {CONFIGURATION_EXIT}, naming {key})",
          status == CONFIGURATION_EXIT and line, f"exit {status}; {line.strip()[-200:]}")


def console_shut(args, work, name, console, reason):
    sim = daemon(args, work, name, configuration(work, name, console))
    try:
        if not sim.wait_ready():
            check(f"{name}: sonod starts without its console", False, open(os.path.join(work, f"{name}.log")).read()[-500:])
            return
        status, body = request(sim.socket_path, "POST", "/v1/console/login", body={})
        message = body.get("error", "") if isinstance(body, dict) else str(body)
        check(f"{name}: sonod runs, the console stays shut (login → 503 saying why)",
              status == 503 and reason in message, f"{status}: {message[:220]}")
    finally:
        sim.stop()


def handshake_version(address, port, tls):
    with socket.create_connection((address, port), timeout=5) as raw, tls.wrap_socket(raw, server_hostname=address) as conn:
        return conn.version()


def old_tls_refused(address, port):
    """A client offering TLS 1.0–1.1 only. (refused, detail). If this machine's OpenSSL cannot
    even offer them, the server was never asked: say so rather than pass."""
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deprecated is the point
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError) as error:
        return None, f"this client cannot offer TLS 1.1 ({error})"
    try:
        with socket.create_connection((address, port), timeout=5) as raw, old.wrap_socket(raw) as conn:
            return False, f"negotiated {conn.version()}"
    except ssl.SSLError as error:
        if "NO_PROTOCOLS_AVAILABLE" in str(error).upper() or "no protocols available" in str(error):
            return None, f"this client cannot offer TLS 1.1 ({error.reason})"
        return True, f"refused: {error.reason or error}"
    except OSError as error:
        return True, f"connection closed: {error}"


def plain_http_answer(address, port):
    """The first bytes the TLS port sends back to a plain HTTP request."""
    with socket.create_connection((address, port), timeout=5) as conn:
        conn.sendall(f"GET / HTTP/1.1\r\nHost: {address}:{port}\r\n\r\n".encode())
        try:
            return conn.recv(64)
        except OSError:
            return b""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", default=str(ROOT / ".build/debug/sonod-sim"))
    args = parser.parse_args()

    address = non_loopback_address()
    if address is None:
        # Without a non-loopback interface the refusal and TLS are still tested, on loopback.
        print("note: no non-loopback IPv4 address here; serving HTTPS on 127.0.0.1 instead")
    work = tempfile.mkdtemp(prefix="sono-console-tls-")
    browser = None
    sim = None
    try:
        host = address or "127.0.0.1"
        certificate, key = make_certificate(work, host)
        listen = f'listen = "{host}:0"\n'
        if address:
            refused_at_start(args, work, "plain-beyond-loopback", listen, "console.listen")
        refused_at_start(args, work, "certificate-without-key", listen + f'tls_certificate = "{certificate}"\n', "console.tls_key")

        readable = os.path.join(work, "readable.key")
        shutil.copy(key, readable)
        os.chmod(readable, 0o644)
        console_shut(args, work, "world-readable-key", listen + f'tls_certificate = "{certificate}"\ntls_key = "{readable}"\n',
                     "readable by every user")
        other = os.path.join(work, "other.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-out", other],
                       check=True, capture_output=True)
        os.chmod(other, 0o600)
        console_shut(args, work, "key-of-another-certificate", listen + f'tls_certificate = "{certificate}"\ntls_key = "{other}"\n',
                     "does not fit")

        # ---- served over HTTPS ---------------------------------------------------------------
        sim = daemon(args, work, "https", configuration(work, "https", listen + f'tls_certificate = "{certificate}"\ntls_key = "{key}"\n'))
        if not sim.wait_ready():
            check("https: sonod starts", False, open(os.path.join(work, "https.log")).read()[-800:])
            return 1
        url = login_url(sim.socket_path)
        parts = urllib.parse.urlsplit(url)
        base = f"https://{parts.netloc}"
        check("login URL is https on the configured address", parts.scheme == "https" and parts.hostname == host, url.split("?")[0])
        trusted = ssl.create_default_context(cafile=certificate)  # this certificate only; verifies the address too
        version = handshake_version(host, parts.port, trusted)
        check("TLS 1.2 or later, certificate and address verified", version in ("TLSv1.2", "TLSv1.3"), version)
        refused, detail = old_tls_refused(host, parts.port)
        if refused is None:
            print(f"note: TLS 1.1 refusal not tested: {detail}")
        else:
            check("a client offering at most TLS 1.1 is refused", refused, detail)
        answer = plain_http_answer(host, parts.port)
        check("plain HTTP on the TLS port gets no HTTP answer", not answer.startswith(b"HTTP/"), repr(answer[:16]))

        operator = Session(url, tls=trusted)
        flags = [flag.strip().lower() for flag in operator.set_cookie.split(";")[1:]]
        check("session cookie is Secure, HttpOnly, SameSite=Strict",
              {"secure", "httponly", "samesite=strict"} <= set(flags), "; ".join(flags))
        status, _, _ = http(base, path="/v1/status", tls=trusted)
        check("no cookie → 401 over https", status == 401, f"{status}")
        status, _ = operator.call("POST", "/v1/stop", origin=f"http://{parts.netloc}")
        check("POST from the http:// twin of the console's origin → 403", status == 403, f"{status}")
        status, body = operator.call("POST", "/v1/stop")
        check("POST from the console's https origin with its token → 200", status == 200, f"{status} {body}")
        check("WebSocket from the http:// twin origin refused",
              websocket_status(base, f"http://{parts.netloc}", operator.cookie, trusted) != 101)
        check("WebSocket from the https origin accepted",
              websocket_status(base, base, operator.cookie, trusted) == 101)

        browser = chromium(accept_insecure_certs=True)
        browser.get(login_url(sim.socket_path))
        who = wait_for(lambda: browser.execute_script("return document.getElementById('who') && document.getElementById('who').textContent"), 10)
        check("Chromium loads the page over https", who and "operator" in who and browser.current_url.startswith("https://"),
              f"{browser.current_url.split('?')[0]}, header says {who!r}")
        live = wait_for(lambda: browser.execute_script(
            "return window.sonoConsole.connected && window.sonoConsole.frames > 5 && window.sonoConsole.ws.url"), 15)
        check("live stream over wss", live and live.startswith("wss://"), f"{live}")
        browser.set_script_timeout(10)
        changes = browser.execute_async_script(COUNT_IMAGE_CHANGES, 1000)
        check("image changes at least 10 times in 1 s over wss", changes >= 10, f"{changes} changes")
        before = request(sim.socket_path, "GET", "/v1/status")[1]["state"]
        browser.find_element("xpath", "//button[normalize-space()='Enable']").click()
        after = wait_for(lambda: (lambda s: s if s != before else None)(request(sim.socket_path, "GET", "/v1/status")[1]["state"]), 5)
        check("the page's Enable reaches sonod over https", after is not None, f"{before} → {after}")
    finally:
        if browser:
            browser.quit()
        if sim:
            sim.stop()
        if check.failed:
            for name in sorted(os.listdir(work)):
                if name.endswith(".log"):
                    print(f"{name}, last lines:")
                    for line in open(os.path.join(work, name)).read().splitlines()[-15:]:
                        print("  " + line[:300])
        shutil.rmtree(work, ignore_errors=True)
    return check.verdict()


if __name__ == "__main__":
    sys.exit(main())
