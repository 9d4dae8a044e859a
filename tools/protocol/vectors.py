#!/usr/bin/env python3
"""Golden vectors of the Sono board protocol (firmware-protocol/PROTOCOL.md).

    python3 tools/protocol/vectors.py generate   # (re)write firmware-protocol/vectors/*
    python3 tools/protocol/vectors.py check      # verify the committed vectors

The encoder uses `struct` for the layout, the PyPI package `cobs` for COBS and the
PyPI package `crc` for CRC-32C (see tools/requirements.txt). `check` verifies the
committed files independently of the C and Swift codecs: it re-derives every frame's
fields by COBS-decoding, CRC-checking and unpacking it, and replays every stream of
invalid.json through a small streaming decoder written here, following PROTOCOL.md §1.

Generated files (never edit them by hand):
  frames.json   valid canonical messages with their exact wire bytes
  invalid.json  byte streams and the ordered outcomes a streaming receiver reports
  frames.inc    frames.json as C99 initialisers (see firmware-protocol/c/test_sono_proto.c)
  invalid.inc   invalid.json as C99 initialisers
"""

import json
import struct
import sys
from pathlib import Path

try:
    from cobs import cobs
    import crc
except ImportError as exc:  # pragma: no cover
    sys.exit(f"vectors: missing package ({exc}); run: pip install -r tools/requirements.txt")

ROOT = Path(__file__).resolve().parents[2]
VECTOR_DIR = ROOT / "firmware-protocol" / "vectors"

# --------------------------------------------------------------------------------------
# Protocol constants (PROTOCOL.md §1, §3)

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<BBHQH")  # version, type, seq, timestamp_us, length
assert HEADER.size == 14
CRC_SIZE = 4
MAX_PAYLOAD = 240
MAX_ENCODED = 260  # largest legal COBS-encoded frame, delimiter excluded
RX_LIMIT = MAX_ENCODED + 1  # the 261st byte without a delimiter is oversized (§1)
MAX_JOINTS = 8

TYPES = {
    "HELLO": 0x01,
    "HEARTBEAT": 0x02,
    "GET_INFO": 0x03,
    "FT_SAMPLE": 0x10,
    "JOINT_STATE": 0x11,
    "ESTOP_STATE": 0x12,
    "FAULT_REPORT": 0x13,
    "ACK": 0x20,
    "NACK": 0x21,
    "JOINT_COMMAND": 0x30,
    "SET_DRIVES": 0x31,
    "STOP": 0x32,
    "CLEAR_FAULTS": 0x33,
    "TARE": 0x34,
}
TYPE_NAMES = {code: name for name, code in TYPES.items()}

ERRORS = [
    "oversized",
    "malformed_cobs",
    "truncated",
    "crc_mismatch",
    "unsupported_version",
    "length_mismatch",
    "unknown_type",
    "invalid_payload",
]

CRC_JSON = {
    "name": "CRC-32C",
    "width": 32,
    "poly": "0x1EDC6F41",
    "init": "0xFFFFFFFF",
    "refin": True,
    "refout": True,
    "xorout": "0xFFFFFFFF",
    "check": "0xE3069283",
}
CRC32C = crc.Calculator(
    crc.Configuration(
        width=32,
        polynomial=0x1EDC6F41,
        init_value=0xFFFFFFFF,
        final_xor_value=0xFFFFFFFF,
        reverse_input=True,
        reverse_output=True,
    ),
    optimized=True,
)
assert CRC32C.checksum(b"123456789") == 0xE3069283, "crc package does not compute CRC-32C"


def crc32c(data: bytes) -> int:
    return CRC32C.checksum(bytes(data))


# --------------------------------------------------------------------------------------
# Encoder (fields -> payload -> frame)

HELLO = struct.Struct("<BBBBB16sIBHH")
HEARTBEAT = struct.Struct("<BBHH")
FT_SAMPLE = struct.Struct("<ffffffH")
JOINT_STATE_HEAD = struct.Struct("<BH")
JOINT_STATE_JOINT = struct.Struct("<fffB")
ESTOP_STATE = struct.Struct("<BB")
FAULT_REPORT = struct.Struct("<HBBff")
ACK = struct.Struct("<HB")
NACK = struct.Struct("<HBH")
JOINT_COMMAND_HEAD = struct.Struct("<B")
JOINT_COMMAND_JOINT = struct.Struct("<fff")
U8 = struct.Struct("<B")
assert (HELLO.size, HEARTBEAT.size, FT_SAMPLE.size, ESTOP_STATE.size, FAULT_REPORT.size) == (30, 6, 26, 2, 12)
assert (JOINT_STATE_HEAD.size, JOINT_STATE_JOINT.size, ACK.size, NACK.size) == (3, 13, 3, 5)
assert JOINT_COMMAND_JOINT.size == 12


def encode_payload(type_name: str, f: dict) -> bytes:
    if type_name == "HELLO":
        serial = f["serial"].encode("ascii")
        assert len(serial) <= 16
        return HELLO.pack(f["kind"], f["protocol_version"], f["fw_major"], f["fw_minor"], f["fw_patch"],
                          serial, f["capabilities"], f["joint_count"], f["sample_rate_hz"],
                          f["heartbeat_period_ms"])
    if type_name == "HEARTBEAT":
        return HEARTBEAT.pack(f["state"], f["reserved"], f["rx_crc_errors"], f["rx_seq_gaps"])
    if type_name in ("GET_INFO", "CLEAR_FAULTS", "TARE"):
        assert f == {}
        return b""
    if type_name == "FT_SAMPLE":
        return FT_SAMPLE.pack(f["fx"], f["fy"], f["fz"], f["tx"], f["ty"], f["tz"], f["status"])
    if type_name == "JOINT_STATE":
        out = JOINT_STATE_HEAD.pack(len(f["joints"]), f["status"])
        for j in f["joints"]:
            out += JOINT_STATE_JOINT.pack(j["position"], j["velocity"], j["current"], j["flags"])
        return out
    if type_name == "ESTOP_STATE":
        return ESTOP_STATE.pack(f["engaged"], f["source"])
    if type_name == "FAULT_REPORT":
        return FAULT_REPORT.pack(f["code"], f["axis"], f["severity"], f["value"], f["limit"])
    if type_name == "ACK":
        return ACK.pack(f["acked_seq"], f["acked_type"])
    if type_name == "NACK":
        return NACK.pack(f["acked_seq"], f["acked_type"], f["error"])
    if type_name == "JOINT_COMMAND":
        out = JOINT_COMMAND_HEAD.pack(len(f["joints"]))
        for j in f["joints"]:
            out += JOINT_COMMAND_JOINT.pack(j["position"], j["max_velocity"], j["max_current"])
        return out
    if type_name == "SET_DRIVES":
        return U8.pack(f["enable"])
    if type_name == "STOP":
        return U8.pack(f["category"])
    raise KeyError(type_name)


def raw_frame(type_code: int, seq: int, timestamp_us: int, payload: bytes, *, version: int = PROTOCOL_VERSION,
              length: int = None, crc_xor: int = 0) -> bytes:
    """Decoded frame: header || payload || crc. The keyword arguments build invalid frames."""
    if length is None:
        length = len(payload)
    body = HEADER.pack(version, type_code, seq, timestamp_us, length) + payload
    return body + struct.pack("<I", crc32c(body) ^ crc_xor)


def wire(raw: bytes) -> bytes:
    """COBS(raw) || 0x00."""
    return cobs.encode(raw) + b"\x00"


def encode_frame(type_name: str, seq: int, timestamp_us: int, fields: dict) -> bytes:
    return wire(raw_frame(TYPES[type_name], seq, timestamp_us, encode_payload(type_name, fields)))


# --------------------------------------------------------------------------------------
# Independent decoder (frame -> fields), used by `check` and to validate `generate`


class InvalidPayload(Exception):
    pass


def _unpack(s: struct.Struct, payload: bytes):
    if len(payload) != s.size:
        raise InvalidPayload(f"{len(payload)} bytes, expected {s.size}")
    return s.unpack(payload)


def decode_payload(type_name: str, p: bytes) -> dict:
    if type_name == "HELLO":
        v = _unpack(HELLO, p)
        if v[0] not in (1, 2):
            raise InvalidPayload("HELLO.kind")
        keys = ("kind", "protocol_version", "fw_major", "fw_minor", "fw_patch", "serial", "capabilities",
                "joint_count", "sample_rate_hz", "heartbeat_period_ms")
        d = dict(zip(keys, v))
        d["serial"] = d["serial"].split(b"\x00", 1)[0].decode("ascii", errors="replace")
        return d
    if type_name == "HEARTBEAT":
        return dict(zip(("state", "reserved", "rx_crc_errors", "rx_seq_gaps"), _unpack(HEARTBEAT, p)))
    if type_name in ("GET_INFO", "CLEAR_FAULTS", "TARE"):
        if p:
            raise InvalidPayload("payload must be empty")
        return {}
    if type_name == "FT_SAMPLE":
        return dict(zip(("fx", "fy", "fz", "tx", "ty", "tz", "status"), _unpack(FT_SAMPLE, p)))
    if type_name in ("JOINT_STATE", "JOINT_COMMAND"):
        head, joint = ((JOINT_STATE_HEAD, JOINT_STATE_JOINT) if type_name == "JOINT_STATE"
                       else (JOINT_COMMAND_HEAD, JOINT_COMMAND_JOINT))
        if len(p) < head.size:
            raise InvalidPayload("short")
        n = p[0]
        if not 1 <= n <= MAX_JOINTS:
            raise InvalidPayload(f"joint_count {n}")
        if len(p) != head.size + n * joint.size:
            raise InvalidPayload("length does not match joint_count")
        keys = (("position", "velocity", "current", "flags") if type_name == "JOINT_STATE"
                else ("position", "max_velocity", "max_current"))
        joints = [dict(zip(keys, joint.unpack_from(p, head.size + i * joint.size))) for i in range(n)]
        if type_name == "JOINT_STATE":
            return {"status": JOINT_STATE_HEAD.unpack_from(p)[1], "joints": joints}
        return {"joints": joints}
    if type_name == "ESTOP_STATE":
        v = _unpack(ESTOP_STATE, p)
        if v[0] not in (0, 1):
            raise InvalidPayload("ESTOP_STATE.engaged")
        return {"engaged": v[0], "source": v[1]}
    if type_name == "FAULT_REPORT":
        return dict(zip(("code", "axis", "severity", "value", "limit"), _unpack(FAULT_REPORT, p)))
    if type_name == "ACK":
        return dict(zip(("acked_seq", "acked_type"), _unpack(ACK, p)))
    if type_name == "NACK":
        return dict(zip(("acked_seq", "acked_type", "error"), _unpack(NACK, p)))
    if type_name == "SET_DRIVES":
        (v,) = _unpack(U8, p)
        if v not in (0, 1):
            raise InvalidPayload("SET_DRIVES.enable")
        return {"enable": v}
    if type_name == "STOP":
        # Any category decodes; the board NACKs 3..255 out_of_range and stops anyway (§3.12).
        return {"category": _unpack(U8, p)[0]}
    raise KeyError(type_name)


def decode_frame(encoded: bytes):
    """Checks of PROTOCOL.md §1.3 on the bytes between two delimiters.

    Returns ("frame", type_name, seq, timestamp_us, fields) or ("error", name)."""
    if len(encoded) >= RX_LIMIT:
        return ("error", "oversized")
    try:
        raw = cobs.decode(bytes(encoded))
    except cobs.DecodeError:
        return ("error", "malformed_cobs")
    if len(raw) < HEADER.size + CRC_SIZE:
        return ("error", "truncated")
    (stored,) = struct.unpack("<I", raw[-CRC_SIZE:])
    if crc32c(raw[:-CRC_SIZE]) != stored:
        return ("error", "crc_mismatch")
    version, type_code, seq, timestamp_us, length = HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        return ("error", "unsupported_version")
    if length > MAX_PAYLOAD or length != len(raw) - HEADER.size - CRC_SIZE:
        return ("error", "length_mismatch")
    if type_code not in TYPE_NAMES:
        return ("error", "unknown_type")
    try:
        fields = decode_payload(TYPE_NAMES[type_code], raw[HEADER.size:-CRC_SIZE])
    except InvalidPayload:
        return ("error", "invalid_payload")
    return ("frame", TYPE_NAMES[type_code], seq, timestamp_us, fields)


def stream_outcomes(stream: bytes):
    """Streaming receiver of PROTOCOL.md §1: the ordered list of reported outcomes."""
    out = []
    buf = bytearray()
    discarding = False
    for b in stream:
        if b == 0:
            if not discarding and buf:
                r = decode_frame(buf)
                out.append({"frame": r[1], "seq": r[2]} if r[0] == "frame" else {"error": r[1]})
            buf.clear()
            discarding = False
        elif not discarding:
            buf.append(b)
            if len(buf) >= RX_LIMIT:  # reported once, at the 261st byte; the rest of the run is dropped
                out.append({"error": "oversized"})
                buf.clear()
                discarding = True
    return out


# --------------------------------------------------------------------------------------
# Vector data

def f32_exact(v) -> bool:
    return isinstance(v, float) and struct.unpack("<f", struct.pack("<f", v))[0] == v and \
        not (v == 0.0 and str(v).startswith("-"))


BIG_TS = 0x001FEDCBA9876543  # > 2^40, < 2^53 so every JSON parser reads it exactly

SENSOR_HELLO = {"kind": 1, "protocol_version": 1, "fw_major": 1, "fw_minor": 2, "fw_patch": 3,
                "serial": "SONO-FT-000123", "capabilities": 0x03, "joint_count": 0,
                "sample_rate_hz": 1000, "heartbeat_period_ms": 50}
ARM_HELLO = {"kind": 2, "protocol_version": 1, "fw_major": 0, "fw_minor": 9, "fw_patch": 17,
             "serial": "SONO-ARM-0000042", "capabilities": 0x7C, "joint_count": 6,
             "sample_rate_hz": 2000, "heartbeat_period_ms": 500}


def js_joint(i: int) -> dict:
    return {"position": -1.5 + 0.625 * i, "velocity": 0.25 * i - 0.5, "current": 1.75 + 0.5 * i,
            "flags": [0, 1, 2, 4, 8, 16, 0x11, 0x1F][i]}


def jc_joint(i: int) -> dict:
    return {"position": 0.75 - 0.375 * i, "max_velocity": 0.5 + 0.25 * i, "max_current": 2.0 + 0.125 * i}


def frame_specs():
    """(name, type, seq, timestamp_us, fields) of frames.json, in file order."""
    return [
        ("hello_force_torque", "HELLO", 0, 0, SENSOR_HELLO),
        ("hello_arm_serial_16_chars", "HELLO", 1, 1_250_000, ARM_HELLO),
        ("heartbeat_host_ready", "HEARTBEAT", 2, 50_000, {"state": 1, "reserved": 0, "rx_crc_errors": 0,
                                                         "rx_seq_gaps": 0}),
        ("heartbeat_board_counters", "HEARTBEAT", 40000, 3_600_000_000,
         {"state": 2, "reserved": 0, "rx_crc_errors": 65535, "rx_seq_gaps": 513}),
        ("get_info", "GET_INFO", 3, 100, {}),
        ("ft_sample_basic", "FT_SAMPLE", 17, 123456789,
         {"fx": 1.5, "fy": -0.25, "fz": 9.8125, "tx": 0.0, "ty": 0.125, "tz": -2.0, "status": 0}),
        ("ft_sample_saturated_seq_max", "FT_SAMPLE", 65535, BIG_TS,
         {"fx": 1000.0, "fy": -65504.0, "fz": 3.0517578125e-05, "tx": -0.0078125, "ty": 12.375,
          "tz": 1048576.0, "status": 0x0009}),
        ("joint_state_6", "JOINT_STATE", 4242, 987_654_321,
         {"status": 0x21, "joints": [js_joint(i) for i in range(6)]}),
        ("joint_state_1", "JOINT_STATE", 0, 0, {"status": 0, "joints": [js_joint(0)]}),
        ("joint_state_8_big_timestamp", "JOINT_STATE", 65534, BIG_TS,
         {"status": 0x3F, "joints": [js_joint(i) for i in range(8)]}),
        ("estop_engaged_pendant", "ESTOP_STATE", 300, 5_000_000, {"engaged": 1, "source": 1}),
        ("estop_released", "ESTOP_STATE", 301, 5_000_001, {"engaged": 0, "source": 0}),
        ("fault_over_current_axis_2", "FAULT_REPORT", 302, 5_000_002,
         {"code": 1, "axis": 2, "severity": 2, "value": 12.5, "limit": 10.0}),
        ("fault_host_timeout_no_axis", "FAULT_REPORT", 303, 5_000_003,
         {"code": 5, "axis": 255, "severity": 1, "value": 0.15625, "limit": 0.125}),
        ("ack_set_drives", "ACK", 65535, 77, {"acked_seq": 65535, "acked_type": 0x31}),
        ("nack_joint_command_out_of_range", "NACK", 12, 78, {"acked_seq": 7, "acked_type": 0x30, "error": 3}),
        ("joint_command_6", "JOINT_COMMAND", 1000, 2_000_000, {"joints": [jc_joint(i) for i in range(6)]}),
        ("joint_command_1", "JOINT_COMMAND", 1, 1, {"joints": [jc_joint(0)]}),
        ("joint_command_8", "JOINT_COMMAND", 256, BIG_TS, {"joints": [jc_joint(i) for i in range(8)]}),
        ("set_drives_enable", "SET_DRIVES", 5, 10, {"enable": 1}),
        ("set_drives_disable", "SET_DRIVES", 6, 11, {"enable": 0}),
        ("stop_category_0", "STOP", 7, 12, {"category": 0}),
        ("stop_category_1", "STOP", 8, 13, {"category": 1}),
        ("stop_category_2", "STOP", 9, 14, {"category": 2}),
        ("clear_faults", "CLEAR_FAULTS", 10, 15, {}),
        ("tare", "TARE", 11, 16, {}),
        # An arm board with the command watchdog (capability bit 7) and its fault (code 10).
        ("hello_arm_command_watchdog", "HELLO", 12, 17, dict(ARM_HELLO, capabilities=0xFC, heartbeat_period_ms=50)),
        ("fault_command_timeout", "FAULT_REPORT", 13, 18,
         {"code": 10, "axis": 255, "severity": 2, "value": 21.0, "limit": 20.0}),
    ]


def _ok(type_name, seq):
    return {"frame": type_name, "seq": seq}


def _err(name):
    return {"error": name}


def invalid_specs():
    """(name, stream bytes, expected outcomes) of invalid.json, in file order.

    Expectations are written out by hand; `generate` refuses to write them unless the
    streaming decoder above reproduces them."""
    ft = {"fx": 1.5, "fy": -0.25, "fz": 9.8125, "tx": 0.0, "ty": 0.125, "tz": -2.0, "status": 0}
    ft_payload = encode_payload("FT_SAMPLE", ft)
    a = encode_frame("FT_SAMPLE", 3, 1000, ft)
    b = encode_frame("FT_SAMPLE", 4, 2000, ft)
    c = encode_frame("FT_SAMPLE", 5, 3000, ft)
    hb = encode_frame("HEARTBEAT", 9, 50_000, {"state": 1, "reserved": 0, "rx_crc_errors": 0, "rx_seq_gaps": 0})
    t = TYPES

    def bad(type_code, payload, seq=21, **kw):
        return wire(raw_frame(type_code, seq, 4242, payload, **kw))

    js_head = lambda n: JOINT_STATE_HEAD.pack(n, 0)  # noqa: E731
    js_joints = lambda n: b"".join(JOINT_STATE_JOINT.pack(0.5, -0.5, 1.0, 0) for _ in range(n))  # noqa: E731

    flipped = bytearray(raw_frame(t["FT_SAMPLE"], 3, 1000, ft_payload))
    flipped[HEADER.size + 5] ^= 0x10  # one bit of fy

    long_payload = bytes((i * 7) & 0xFF for i in range(241))  # contains 0x00 bytes
    long_frame = bad(t["FT_SAMPLE"], long_payload, length=241)
    assert len(long_frame) - 1 == MAX_ENCODED, len(long_frame)  # 260 bytes + 0x00: just not oversized

    return [
        ("empty_frames_are_ignored", b"\x00\x00\x00", []),
        ("empty_frames_around_valid", b"\x00\x00" + a + b"\x00", [_ok("FT_SAMPLE", 3)]),
        ("valid_frames_back_to_back", a + b + c,
         [_ok("FT_SAMPLE", 3), _ok("FT_SAMPLE", 4), _ok("FT_SAMPLE", 5)]),
        # 300 non-zero bytes: oversized is reported once, when the 261st byte arrives; the
        # receiver then drops everything up to and including the next 0x00.
        ("oversized_then_valid", b"\x55" * 300 + b"\x00" + a, [_err("oversized"), _ok("FT_SAMPLE", 3)]),
        ("oversized_at_261_bytes", b"\xff" * 261 + b"\x00" + a, [_err("oversized"), _ok("FT_SAMPLE", 3)]),
        # 260 bytes are not oversized: they are COBS-decoded (0xFF codes: the second block overruns).
        ("run_of_260_is_not_oversized", b"\xff" * 260 + b"\x00" + a, [_err("malformed_cobs"), _ok("FT_SAMPLE", 3)]),
        # No delimiter after the run: the following frame is discarded with it.
        ("oversized_swallows_next_frame", b"\x55" * 300 + a + b, [_err("oversized"), _ok("FT_SAMPLE", 4)]),
        ("oversized_reported_once_per_run", b"\x55" * 1000 + b"\x00" + a,
         [_err("oversized"), _ok("FT_SAMPLE", 3)]),
        # A receiver joining mid-stream: the tail of a frame, then a frame.
        ("garbage_then_valid_resync", a[-9:] + b, [_err("truncated"), _ok("FT_SAMPLE", 4)]),
        ("garbage_with_code_overrun_then_valid", bytes([0x30, 0x11, 0x22, 0x00]) + b,
         [_err("malformed_cobs"), _ok("FT_SAMPLE", 4)]),
        # First half of frame A, then frame B, then C: A's half and B up to B's 0x00 are one
        # (bad) frame, so B is lost; C is received.
        ("half_frame_then_frames", a[: len(a) // 2] + b + c, [_err("crc_mismatch"), _ok("FT_SAMPLE", 5)]),
        # The sender flushes with a 0x00 before B (§1): only the half frame is lost.
        ("half_frame_then_flush_and_frame", a[: len(a) // 2] + b"\x00" + b,
         [_err("crc_mismatch"), _ok("FT_SAMPLE", 4)]),
        ("malformed_cobs_code_past_end", bytes([0x05, 0x11, 0x22, 0x00]), [_err("malformed_cobs")]),
        ("truncated_single_code_byte", b"\x01\x00", [_err("truncated")]),
        ("truncated_17_bytes", wire(raw_frame(t["GET_INFO"], 1, 2, b"")[:17]), [_err("truncated")]),
        ("crc_mismatch_payload_bit_flip", wire(bytes(flipped)), [_err("crc_mismatch")]),
        ("crc_mismatch_stored_crc_bit_flip", bad(t["HEARTBEAT"], HEARTBEAT.pack(1, 0, 0, 0), crc_xor=0x80000000),
         [_err("crc_mismatch")]),
        ("crc_checked_before_version", bad(t["FT_SAMPLE"], ft_payload, version=2, crc_xor=1), [_err("crc_mismatch")]),
        ("unsupported_version_2", bad(t["FT_SAMPLE"], ft_payload, version=2), [_err("unsupported_version")]),
        ("unsupported_version_0", bad(t["GET_INFO"], b"", version=0), [_err("unsupported_version")]),
        ("version_checked_before_length", bad(t["FT_SAMPLE"], ft_payload, version=2, length=3),
         [_err("unsupported_version")]),
        ("length_mismatch_too_long", bad(t["HEARTBEAT"], HEARTBEAT.pack(1, 0, 0, 0), length=7),
         [_err("length_mismatch")]),
        ("length_mismatch_too_short", bad(t["FT_SAMPLE"], ft_payload, length=25), [_err("length_mismatch")]),
        ("length_over_240", long_frame, [_err("length_mismatch")]),
        ("length_checked_before_type", bad(0x7F, b"\x01\x02", length=1), [_err("length_mismatch")]),
        ("unknown_type_0x7f", bad(0x7F, b"\x01\x02\x03"), [_err("unknown_type")]),
        ("unknown_type_0x00", bad(0x00, b""), [_err("unknown_type")]),
        ("ft_sample_payload_25", bad(t["FT_SAMPLE"], ft_payload[:25]), [_err("invalid_payload")]),
        ("ft_sample_payload_27", bad(t["FT_SAMPLE"], ft_payload + b"\x00"), [_err("invalid_payload")]),
        ("get_info_with_payload", bad(t["GET_INFO"], b"\x00"), [_err("invalid_payload")]),
        ("joint_state_empty_payload", bad(t["JOINT_STATE"], b""), [_err("invalid_payload")]),
        ("joint_state_count_0", bad(t["JOINT_STATE"], js_head(0)), [_err("invalid_payload")]),
        ("joint_state_count_9", bad(t["JOINT_STATE"], js_head(9) + js_joints(9)), [_err("invalid_payload")]),
        ("joint_state_count_6_payload_for_5", bad(t["JOINT_STATE"], js_head(6) + js_joints(5)),
         [_err("invalid_payload")]),
        ("joint_command_count_0", bad(t["JOINT_COMMAND"], b"\x00"), [_err("invalid_payload")]),
        ("joint_command_count_2_payload_for_3",
         bad(t["JOINT_COMMAND"], b"\x02" + JOINT_COMMAND_JOINT.pack(0.5, 1.0, 2.0) * 3), [_err("invalid_payload")]),
        ("hello_kind_0", bad(t["HELLO"], encode_payload("HELLO", dict(SENSOR_HELLO, kind=0))),
         [_err("invalid_payload")]),
        ("hello_kind_3", bad(t["HELLO"], encode_payload("HELLO", dict(SENSOR_HELLO, kind=3))),
         [_err("invalid_payload")]),
        ("estop_engaged_2", bad(t["ESTOP_STATE"], b"\x02\x01"), [_err("invalid_payload")]),
        ("set_drives_enable_2", bad(t["SET_DRIVES"], b"\x02"), [_err("invalid_payload")]),
        ("ack_payload_4", bad(t["ACK"], b"\x01\x00\x31\x00"), [_err("invalid_payload")]),
        # STOP with an out-of-range category decodes (the board NACKs it and stops anyway, §3.12).
        ("stop_category_3_decodes", bad(t["STOP"], b"\x03", seq=77), [_ok("STOP", 77)]),
        ("stop_category_255_decodes", bad(t["STOP"], b"\xff", seq=78), [_ok("STOP", 78)]),
        # Reserved fields and unlisted enum values other than the ones in §1.3 decode.
        ("heartbeat_reserved_and_state_not_checked",
         bad(t["HEARTBEAT"], HEARTBEAT.pack(9, 0xAA, 1, 2), seq=79), [_ok("HEARTBEAT", 79)]),
        ("mixed_stream",
         b"\x00" + a + b"\x04\x01\x02\x03\x00" + hb + bad(0x7F, b"") + b"\x00\x00" + c,
         [_ok("FT_SAMPLE", 3), _err("truncated"), _ok("HEARTBEAT", 9), _err("unknown_type"), _ok("FT_SAMPLE", 5)]),
    ]


# --------------------------------------------------------------------------------------
# Rendering

def dump_json(obj) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=True) + "\n"


def c_float(v: float) -> str:
    s = repr(float(v))
    assert "inf" not in s and "nan" not in s
    if "." not in s and "e" not in s:
        s += ".0"
    return s + "f"


C_MEMBER = {
    "HELLO": "hello", "HEARTBEAT": "heartbeat", "FT_SAMPLE": "ft_sample", "JOINT_STATE": "joint_state",
    "ESTOP_STATE": "estop_state", "FAULT_REPORT": "fault_report", "ACK": "ack", "NACK": "nack",
    "JOINT_COMMAND": "joint_command", "SET_DRIVES": "set_drives", "STOP": "stop",
}


def c_value(v) -> str:
    if isinstance(v, bool):
        raise TypeError(v)
    if isinstance(v, float):
        return c_float(v)
    if isinstance(v, str):
        assert all(32 <= ord(ch) < 127 and ch not in '"\\' for ch in v)
        return f'"{v}"'
    return f"{v}u"


def c_struct(fields: dict) -> str:
    return "{ " + ", ".join(f".{k} = {c_value(v)}" for k, v in fields.items()) + " }"


def c_message(type_name, seq, ts, fields) -> str:
    head = f".type = SP_MSG_{type_name}, .seq = {seq}u, .timestamp_us = {ts}ull"
    if type_name not in C_MEMBER:
        return "{ " + head + " }"
    member = C_MEMBER[type_name]
    if "joints" in fields:
        parts = [f".joint_count = {len(fields['joints'])}u"]
        parts += [f".{k} = {c_value(v)}" for k, v in fields.items() if k != "joints"]
        parts.append(".joints = {\n        " + ",\n        ".join(c_struct(j) for j in fields["joints"]) + " }")
        body = "{ " + ", ".join(parts) + " }"
    else:
        body = c_struct(fields)
    return "{ " + head + ",\n      .u." + member + " = " + body + " }"


INC_HEADER = ("/* Generated by tools/protocol/vectors.py from {src}; do not edit.\n"
              " * Regenerate with: python3 tools/protocol/vectors.py generate */\n")
MAX_C_EXPECT = 8
MAX_C_STRING = 4095


def render(frames, cases):
    files = {}
    files["frames.json"] = dump_json({"protocol_version": PROTOCOL_VERSION, "crc": CRC_JSON, "frames": frames})
    files["invalid.json"] = dump_json({"cases": cases})

    out = [INC_HEADER.format(src="frames.json"),
           "/* { name, sp_message, hex of the wire frame incl. the 0x00 delimiter } */\n"]
    for fr in frames:
        out.append(f'{{ "{fr["name"]}",\n    {c_message(fr["type"], fr["seq"], fr["timestamp_us"], fr["fields"])},\n'
                   f'    "{fr["frame"]}" }},\n')
    files["frames.inc"] = "".join(out)

    out = [INC_HEADER.format(src="invalid.json"),
           "/* { name, hex of the byte stream, outcome count, { { status, type, seq }, ... } } */\n"]
    for case in cases:
        assert len(case["stream"]) <= MAX_C_STRING and len(case["expect"]) <= MAX_C_EXPECT
        outs = []
        for e in case["expect"]:
            if "frame" in e:
                outs.append(f"{{ SP_OK, SP_MSG_{e['frame']}, {e['seq']}u }}")
            else:
                outs.append(f"{{ SP_ERR_{e['error'].upper()}, 0u, 0u }}")
        if not outs:  # C99 has no empty initialiser; the count (0) says the entry is unused
            outs = ["{ SP_OK, 0u, 0u }"]
        out.append(f'{{ "{case["name"]}",\n    "{case["stream"]}",\n    {len(case["expect"])}u, '
                   f'{{ {", ".join(outs)} }} }},\n')
    files["invalid.inc"] = "".join(out)
    return files


def build():
    """All generated files, as {file name: text}. Raises AssertionError on inconsistent data."""
    frames = []
    names = set()
    for name, type_name, seq, ts, fields in frame_specs():
        assert name not in names, name
        names.add(name)
        assert 0 <= seq <= 0xFFFF and 0 <= ts < 2 ** 64
        for v in list(fields.values()) + [x for j in fields.get("joints", []) for x in j.values()]:
            assert not isinstance(v, float) or f32_exact(v), f"{name}: {v!r} is not exact in binary32"
        frame = encode_frame(type_name, seq, ts, fields)
        assert decode_frame(frame[:-1]) == ("frame", type_name, seq, ts, fields), name
        frames.append({"name": name, "type": type_name, "seq": seq, "timestamp_us": ts, "fields": fields,
                       "frame": frame.hex()})
    covered = {f["type"] for f in frames}
    assert covered == set(TYPES), f"types without a vector: {set(TYPES) - covered}"

    cases = []
    names = set()
    for name, stream, expect in invalid_specs():
        assert name not in names, name
        names.add(name)
        got = stream_outcomes(stream)
        assert got == expect, f"invalid case {name}: decoder reports {got}, spec says {expect}"
        cases.append({"name": name, "stream": stream.hex(), "expect": expect})
    seen = {e["error"] for c in cases for e in c["expect"] if "error" in e}
    assert seen == set(ERRORS), f"error kinds without a case: {set(ERRORS) - seen}"
    return render(frames, cases)


# --------------------------------------------------------------------------------------
# Commands

def cmd_generate() -> int:
    files = build()
    VECTOR_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (VECTOR_DIR / name).write_text(text, encoding="ascii", newline="\n")
        print(f"wrote {(VECTOR_DIR / name).relative_to(ROOT)}")
    return 0


def _fields_equal(expected, got) -> bool:
    if isinstance(expected, dict):
        return isinstance(got, dict) and expected.keys() == got.keys() and \
            all(_fields_equal(expected[k], got[k]) for k in expected)
    if isinstance(expected, list):
        return isinstance(got, list) and len(expected) == len(got) and \
            all(_fields_equal(e, g) for e, g in zip(expected, got))
    if isinstance(expected, float) or isinstance(got, float):
        return struct.pack("<f", expected) == struct.pack("<f", got) and type(expected) is type(got)
    return type(expected) is type(got) and expected == got


def check_frame(fr) -> list:
    """Independent verification of one committed frame: returns failure messages."""
    name = fr.get("name", "?")
    fails = []
    data = bytes.fromhex(fr["frame"])
    if not data.endswith(b"\x00") or b"\x00" in data[:-1]:
        return [f"{name}: frame must contain exactly one 0x00, at its end"]
    try:
        raw = cobs.decode(data[:-1])
    except cobs.DecodeError as exc:
        return [f"{name}: COBS decode failed: {exc}"]
    if cobs.encode(raw) != data[:-1]:
        fails.append(f"{name}: COBS encoding is not canonical")
    if len(raw) < HEADER.size + CRC_SIZE:
        return fails + [f"{name}: decoded frame has {len(raw)} bytes"]
    (stored,) = struct.unpack("<I", raw[-CRC_SIZE:])
    if CRC32C.checksum(raw[:-CRC_SIZE]) != stored:
        fails.append(f"{name}: CRC mismatch")
    version, type_code, seq, ts, length = HEADER.unpack_from(raw)
    if version != PROTOCOL_VERSION:
        fails.append(f"{name}: version {version}")
    if length != len(raw) - HEADER.size - CRC_SIZE or length > MAX_PAYLOAD:
        fails.append(f"{name}: length field {length} for {len(raw) - HEADER.size - CRC_SIZE} payload bytes")
    if TYPE_NAMES.get(type_code) != fr["type"]:
        fails.append(f"{name}: type 0x{type_code:02x} on the wire, {fr['type']} in JSON")
    if seq != fr["seq"] or ts != fr["timestamp_us"]:
        fails.append(f"{name}: header seq/timestamp {seq}/{ts} != JSON {fr['seq']}/{fr['timestamp_us']}")
    if fails:
        return fails
    try:
        fields = decode_payload(fr["type"], raw[HEADER.size:-CRC_SIZE])
    except InvalidPayload as exc:
        return [f"{name}: payload does not decode: {exc}"]
    if not _fields_equal(fr["fields"], fields):
        fails.append(f"{name}: fields differ: JSON {fr['fields']} wire {fields}")
    return fails


def cmd_check() -> int:
    passed = 0
    failures = []

    def result(fails):
        nonlocal passed
        if fails:
            failures.extend(fails)
        else:
            passed += 1

    result([] if CRC32C.checksum(b"123456789") == 0xE3069283 else ["crc: check value of '123456789' is wrong"])

    # (a) committed files == regenerated files
    try:
        files = build()
    except AssertionError as exc:
        files = {}
        result([f"generator: {exc}"])
    for name, text in files.items():
        path = VECTOR_DIR / name
        if not path.exists():
            result([f"{path.relative_to(ROOT)}: missing; run: python3 tools/protocol/vectors.py generate"])
        elif path.read_bytes() != text.encode("ascii"):
            result([f"{path.relative_to(ROOT)}: differs from the generator's output; "
                    "run: python3 tools/protocol/vectors.py generate"])
        else:
            result([])

    # (b) every committed frame, independently
    try:
        committed = json.loads((VECTOR_DIR / "frames.json").read_text())
        if committed.get("protocol_version") != PROTOCOL_VERSION or committed.get("crc") != CRC_JSON:
            result(["frames.json: protocol_version or crc header is wrong"])
        for fr in committed["frames"]:
            result(check_frame(fr))
    except (OSError, ValueError, KeyError) as exc:
        result([f"frames.json: unreadable: {exc!r}"])

    # (c) every committed invalid case through the streaming decoder
    try:
        cases = json.loads((VECTOR_DIR / "invalid.json").read_text())["cases"]
        for case in cases:
            got = stream_outcomes(bytes.fromhex(case["stream"]))
            result([] if got == case["expect"] else
                   [f"{case['name']}: streaming decoder reports {got}, file expects {case['expect']}"])
    except (OSError, ValueError, KeyError) as exc:
        result([f"invalid.json: unreadable: {exc!r}"])

    for line in failures:
        print(f"FAIL {line}")
    print(f"vectors: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


def main(argv) -> int:
    if len(argv) != 2 or argv[1] not in ("generate", "check"):
        print("usage: python3 tools/protocol/vectors.py generate|check", file=sys.stderr)
        return 2
    return cmd_generate() if argv[1] == "generate" else cmd_check()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
