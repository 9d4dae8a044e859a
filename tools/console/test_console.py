#!/usr/bin/env python3
"""The operator console in a real browser (issue 19): headless Debian chromium, driven by
Selenium through chromium-driver, against a running sonod-sim.

    python3 tools/console/test_console.py --sim .build/debug/sonod-sim [--screenshot docs/console.png]

Checks (each printed as PASS/FAIL; exits 1 if any fails):
  - the page loads from a `sonoctl console`-style login URL (POST /v1/console/login on the Unix socket);
  - the live image changes at least 10 times in 1 s (canvas pixels, sampled in the page);
  - the force strip chart moves while the probe is on the patient;
  - STOP (the Esc key) during a scan puts sonod in protective stop within 200 ms, as seen on the
    Unix socket's GET /v1/status, not on the page;
  - a viewer session sees the motion controls disabled and gets 403 when it posts anyway;
  - no cookie -> 401; a state-changing request without the CSRF token, or from a foreign Origin -> 403
    (and the same request done right -> 200, so the refusals are not the only answer);
  - a WebSocket upgrade from a foreign Origin is refused;
  - an expired login URL and a used one are refused (401, no cookie);
  - the page says so when sonod goes away.
Also prints the page's frames/s and image latency (acquisition to drawn) as measured in the browser.
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "api"))
from consoleapi import Checks, Session, chromium, http, login_url, websocket_status  # noqa: E402
from sonoapi import SimulatedDaemon, request  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
check = Checks()


def state(socket_path):
    status, data = request(socket_path, "GET", "/v1/status", timeout=5)
    return data["state"] if status == 200 else None


def rescan(socket_path, attempt):
    """On a loaded 2-core machine the simulated boards (normal priority, on this CPU) can miss
    the stale-data deadline and the interlocks stop the scan: the daemon's business, not the
    console's. Say so and scan again, through the socket."""
    latched = request(socket_path, "GET", "/v1/status")[1].get("latched")
    print(f"  the scan is not running (state {state(socket_path)}, latched {latched}); scanning again, attempt {attempt}")
    for path, body in (("/v1/reset", None), ("/v1/enable", None), ("/v1/motion/enable", None),
                       ("/v1/scan", {"views": ["PLAX", "PSAX", "A4C", "A2C"]})):
        request(socket_path, "POST", path, body=body)
        time.sleep(0.3)


def wait_for(predicate, seconds, interval=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


# Counts, in the page, how often the image canvas's pixels change over `ms`.
COUNT_IMAGE_CHANGES = """
const done = arguments[arguments.length - 1];
const duration = arguments[0];
const canvas = document.getElementById('image');
const g = canvas.getContext('2d', {willReadFrequently: true});
let last = null, changes = 0;
const start = performance.now();
function sample() {
  const d = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let h = 0;
  for (let i = 0; i < d.length; i += 16) h = (h * 31 + d[i]) | 0;
  if (last !== null && h !== last) changes++;
  last = h;
  if (performance.now() - start < duration) requestAnimationFrame(sample); else done(changes);
}
requestAnimationFrame(sample);
"""

CANVAS_HASH = """
const d = document.getElementById(arguments[0]).getContext('2d').getImageData(0, 0, 520, 190).data;
let h = 0; for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 2]) | 0; return h;
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sim", default=str(ROOT / ".build/debug/sonod-sim"))
    parser.add_argument("--screenshot", help="save a screenshot of the console mid-scan here (PNG)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sono-console-")
    socket_path = os.path.join(work, "control.sock")
    daemon = SimulatedDaemon(args.sim, socket_path, os.path.join(work, "sessions"), os.path.join(work, "sonod.log"))
    browser = None
    try:
        if not daemon.wait_ready():
            print(open(os.path.join(work, "sonod.log")).read()[-3000:])
            check("sonod-sim starts", False)
            return 1
        url = login_url(socket_path)
        base = url.split("/login")[0]
        check("login URL is on loopback", urllib.parse.urlsplit(url).hostname == "127.0.0.1", url.split("?")[0])

        # ---- the page, as an operator -------------------------------------------------------
        browser = chromium()
        browser.get(url)
        who = wait_for(lambda: browser.execute_script("return document.getElementById('who') && document.getElementById('who').textContent"), 10)
        check("page loads with an operator session", who and "operator" in who, f"header says {who!r}")
        live = wait_for(lambda: browser.execute_script("return window.sonoConsole.connected && window.sonoConsole.frames > 5"), 15)
        check("live stream connected", live)
        browser.set_script_timeout(10)
        changes = browser.execute_async_script(COUNT_IMAGE_CHANGES, 1000)
        check("image changes at least 10 times in 1 s", changes >= 10, f"{changes} changes")

        # Enable, allow motion and start a scan from the page's own buttons.
        for label in ("Enable", "Enable motion"):
            browser.find_element("xpath", f"//button[normalize-space()='{label}']").click()
            time.sleep(0.5)
        browser.find_element("id", "scan-start").click()
        started = wait_for(lambda: request(socket_path, "GET", "/v1/scan")[1].get("started_at"), 10)
        check("scan started from the page", started, f"started at {started}, state {state(socket_path)}")
        contact = None
        for attempt in range(3):
            wait_for(lambda: state(socket_path) == "scanning", 5)
            outcome = wait_for(lambda: "ended" if state(socket_path) != "scanning" else (browser.execute_script(
                "const f = window.sonoConsole.force; return f.length && f[f.length-1].z > 2") and "contact"), 60, 0.2)
            contact = outcome == "contact"
            if contact:
                break
            # On a loaded 2-core machine the simulated boards (normal priority, on this CPU) can
            # miss the stale-data deadline: the daemon's business, not the console's. Say so and
            # scan again, through the socket.
            rescan(socket_path, attempt + 2)
        before = browser.execute_script(CANVAS_HASH, "force")
        forces = browser.execute_script("return window.sonoConsole.force.map(s => s.z)")
        time.sleep(0.6)
        after = browser.execute_script(CANVAS_HASH, "force")
        check("force chart moves", contact and before != after and max(forces) - min(forces) > 0.5,
              f"contact {bool(contact)}, chart redrawn {before != after}, force range {min(forces):.1f}–{max(forces):.1f} N")
        time.sleep(1.0)
        # Frames/s and latency as the page measured them.
        fps, latencies = browser.execute_script(
            "const m = window.sonoConsole; const now = performance.now();"
            "return [m.frameTimes.filter(t => now - t < 2000).length / 2, m.latencies.slice(-200)]")
        if latencies:
            latencies.sort()
            print(f"browser: {fps:.1f} frames/s; image latency (acquired → drawn) median {statistics.median(latencies):.1f} ms, "
                  f"p95 {latencies[int(0.95 * (len(latencies) - 1))]:.1f} ms, max {latencies[-1]:.1f} ms over {len(latencies)} frames")
        check("at least 15 frames/s in the browser", fps >= 15, f"{fps:.1f} frames/s")
        if args.screenshot:
            wait_for(lambda: browser.execute_script("return document.querySelectorAll('#views li').length > 0"), 5)
            browser.save_screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}")

        # STOP by its key, timed on the Unix socket.
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        for attempt in range(3):
            if wait_for(lambda: state(socket_path) == "scanning", 5):
                break
            rescan(socket_path, attempt + 2)
            wait_for(lambda: state(socket_path) == "scanning", 10)
        check("scanning before STOP", state(socket_path) == "scanning", f"state {state(socket_path)}")
        start = time.monotonic()
        ActionChains(browser).send_keys(Keys.ESCAPE).perform()
        stopped = wait_for(lambda: state(socket_path) == "protective_stop", 2, 0.001)
        seen = time.time() * 1000
        harness = (time.monotonic() - start) * 1000
        page = browser.execute_script("return [window.sonoConsole.stopKeyAt, window.sonoConsole.lastCommand]")
        # From the key press reaching the page (its keydown handler, Date.now(): the same clock as
        # this process's time.time()) to the state read on the Unix socket. Selenium's own key
        # dispatch through chromium-driver (tens of ms, more on a loaded machine) comes before it.
        elapsed = seen - page[0] if page[0] else harness
        check("STOP (Esc) → protective stop within 200 ms", stopped and elapsed <= 200,
              f"{elapsed:.0f} ms from the key press in the page to protective_stop on the socket "
              f"(page's POST /v1/stop answered in {page[1]['ms'] if page[1] else float('nan'):.0f} ms; "
              f"{harness:.0f} ms including Selenium's key dispatch)")
        browser.quit()
        browser = None

        # ---- a viewer session ---------------------------------------------------------------
        browser = chromium()
        browser.get(login_url(socket_path, role="viewer"))
        wait_for(lambda: browser.execute_script("return window.sonoConsole && window.sonoConsole.role"), 10)
        disabled = browser.execute_script(
            "return [...document.querySelectorAll('[data-access=motion]')].map(b => b.disabled)")
        stop_enabled = browser.execute_script("return !document.getElementById('stop').disabled")
        check("viewer: motion controls disabled, STOP enabled", disabled and all(disabled) and stop_enabled,
              f"{len(disabled)} motion controls, all disabled {all(disabled)}")
        status = browser.execute_async_script(
            "const done = arguments[0]; fetch('/v1/enable', {method: 'POST', headers: {'X-CSRF-Token': window.sonoConsole.csrf}})"
            ".then(r => done(r.status))")
        check("viewer posting /v1/enable anyway → 403", status == 403, f"{status}")
        browser.quit()
        browser = None

        # ---- the rules, without a browser ---------------------------------------------------
        status, _, _ = http(base, path="/v1/status")
        check("no cookie → 401", status == 401, f"{status}")
        status, _, _ = http(base, "POST", "/v1/stop", headers={"Origin": base})
        check("no cookie, POST → 401", status == 401, f"{status}")
        operator = Session(login_url(socket_path))
        cookie_flags = operator.set_cookie.lower()
        check("session cookie is HttpOnly and SameSite=Strict", "httponly" in cookie_flags and "samesite=strict" in cookie_flags,
              operator.set_cookie.split(";", 1)[1].strip())
        status, _ = operator.call("POST", "/v1/stop", csrf=False)
        check("POST without CSRF token → 403", status == 403, f"{status}")
        status, _ = operator.call("POST", "/v1/stop", origin="http://evil.example")
        check("POST from a foreign Origin → 403", status == 403, f"{status}")
        status, _ = operator.call("POST", "/v1/stop", extra={"X-CSRF-Token": "0" * 64})
        check("POST with a wrong CSRF token → 403", status == 403, f"{status}")
        status, body = operator.call("POST", "/v1/stop")
        check("the same POST with token and own Origin → 200", status == 200, f"{status} {body}")
        status, _, _ = http(base, path="/v1/status", headers={"Cookie": operator.cookie, "Host": "evil.example:80"})
        check("foreign Host (DNS rebinding) → 403", status == 403, f"{status}")
        check("WebSocket from a foreign Origin refused", websocket_status(base, "http://evil.example", operator.cookie) != 101)
        check("WebSocket from the console's Origin accepted", websocket_status(base, base, operator.cookie) == 101)
        check("WebSocket without a cookie refused", websocket_status(base, base, "sono_console=nothing") != 101)
        status, _ = operator.call("POST", "/v1/console/login")
        check("a console session cannot mint login URLs → 403", status == 403, f"{status}")

        used = login_url(socket_path)
        Session(used)
        status, headers, _ = http(used)
        check("a used login URL → 401, no cookie", status == 401 and "set-cookie" not in headers, f"{status}")
        expiring = login_url(socket_path, expires=1)
        time.sleep(1.5)
        status, headers, _ = http(expiring)
        check("an expired login URL → 401, no cookie", status == 401 and "set-cookie" not in headers, f"{status}")
        log = open(os.path.join(work, "sonod.log")).read()
        user = os.environ.get("USER") or "root"
        check("motion requests logged with the Unix user", "console: POST /v1/scan by" in log and " (uid " in log,
              next((line.strip()[:160] for line in log.splitlines() if "console: POST /v1/scan by" in line), "no such line"))

        # Last: the daemon goes away under an open page, which must say so.
        browser = chromium()
        browser.get(login_url(socket_path))
        wait_for(lambda: browser.execute_script("return window.sonoConsole && window.sonoConsole.connected"), 15)
        daemon.stop()
        shown = wait_for(lambda: browser.execute_script("return !document.getElementById('unreachable').hidden"), 5)
        check("the page says when sonod is unreachable", shown)
    finally:
        if browser:
            browser.quit()
        daemon.stop()
        if check.failed:
            lines = open(os.path.join(work, "sonod.log")).read().splitlines()
            print("sonod's log, stops, faults and console lines:")
            for line in lines[-40:]:
                print("  " + line[:300])
        shutil.rmtree(work, ignore_errors=True)
    return check.verdict()


if __name__ == "__main__":
    sys.exit(main())
