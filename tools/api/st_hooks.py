"""schemathesis hooks for fuzz_api.py (loaded with SCHEMATHESIS_HOOKS=st_hooks).

- Logs every response (operation, status) to $SONO_API_FUZZ_LOG, one JSON object a line, so the
  gate counts 5xx responses itself rather than trusting one check's configuration.
- `refused_request_does_not_move_the_arm`: before each call the daemon's status is read
  directly on the Unix socket; when the request is refused (4xx) and the arm was at rest
  before it (not moving, retracting, lifting off or releasing, no scan running), it must still
  be at rest afterwards, in the same safety state, with the probe within 0.5 mm and 0.5° of
  where it was. Runs with one worker (fuzz_api.py passes --workers 1), so nothing else moves
  the arm between the two reads.
"""

import json
import math
import os
import sys

import schemathesis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from sonoapi import request  # noqa: E402

SOCKET = os.environ["SONO_API_SOCKET"]
LOG = os.environ["SONO_API_FUZZ_LOG"]
POSITION_TOLERANCE_MM = 0.5
ROTATION_TOLERANCE_DEG = 0.5

_before = {}


def snapshot():
    status, body = request(SOCKET, "GET", "/v1/status", timeout=10)
    if status != 200 or not isinstance(body, dict):
        return None
    return {
        "state": body["state"],
        "at_rest": not (body["moving"] or body["retracting"] or body["lifting_off"] or body["releasing"]
                        or body["scan"]["running"]),
        "position": body["probe"]["position_mm"],
        "rotation": body["probe"]["rotation_vector_deg"],
    }


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


@schemathesis.hook
def before_call(context, case, kwargs):
    _before["snapshot"] = snapshot()


@schemathesis.hook
def after_call(context, case, response):
    log({"kind": "response", "operation": f"{case.method} {case.path}", "status": response.status_code})


@schemathesis.check
def refused_request_does_not_move_the_arm(ctx, response, case):
    before = _before.get("snapshot")
    if not (400 <= response.status_code < 500) or before is None or not before["at_rest"]:
        return None
    after = snapshot()
    if after is None:
        raise AssertionError("the daemon did not answer GET /v1/status after a refused request")
    moved = math.dist(before["position"], after["position"])
    turned = max(abs(a - b) for a, b in zip(before["rotation"], after["rotation"]))
    log({"kind": "refusal", "operation": f"{case.method} {case.path}", "status": response.status_code,
         "state": before["state"], "moved_mm": round(moved, 3), "turned_deg": round(turned, 3)})
    problems = []
    if not after["at_rest"]:
        problems.append("the arm started moving")
    if after["state"] != before["state"]:
        problems.append(f"the safety state changed from {before['state']} to {after['state']}")
    if moved > POSITION_TOLERANCE_MM or turned > ROTATION_TOLERANCE_DEG:
        problems.append(f"the probe moved {moved:.2f} mm / {turned:.2f} deg")
    if problems:
        raise AssertionError(f"a refused request ({response.status_code}) changed the arm: " + "; ".join(problems))
    return None
