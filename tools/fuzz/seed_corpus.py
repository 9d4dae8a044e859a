#!/usr/bin/env python3
"""Writes the seed corpus of every fuzz target (Fuzz/Sources/*) from the repository's real data,
one directory per target under OUT_DIR, so fuzzing starts from valid inputs of every kind:

  frame-decoder    each golden frame of firmware-protocol/vectors/frames.json
  stream-chunks    golden and invalid frames back to back, with chunk sizes that cut them
  probe-frame      USB probe frames (USB-PROBE.md §4) as the harness's transfer sequences
  probe-control    ProbeInfo / ProbeStatus replies and SET_IMAGING data (USB-PROBE.md §3)
  mcap-reader,     small recordings with Sono's channels written by the mcap package (zstd and
  mcap-recovery    uncompressed chunks, attachment, metadata), the same rewritten by Sono's own
                   writer (`sonoctl session recover`, when --sonoctl is given) and cut-off copies
  onnx-model       the shipped model and a small model with the same contract and operators
  patient-toml     the shipped patients (hardware/patients/*.toml)
  daemon-config    systemd/sono.toml.example
  png              frames rendered by the simulator (the classifier's test fixtures)
  control-api      every route of docs/control-api-routes.txt, with JSON bodies
  motion-tape      one tape entry of every kind (docs/RECORDING.md, /motion/tape)

Usage: seed_corpus.py OUT_DIR [--sonoctl PATH]
"""
import argparse
import io
import json
import pathlib
import struct
import subprocess
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def write(out: pathlib.Path, target: str, name: str, data: bytes) -> None:
    directory = out / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def board_frames(out):
    vectors = ROOT / "firmware-protocol/vectors"
    frames = json.loads((vectors / "frames.json").read_text())["frames"]
    invalid = json.loads((vectors / "invalid.json").read_text())["cases"]
    for frame in frames:
        write(out, "frame-decoder", frame["name"], bytes.fromhex(frame["frame"]))
    wires = [bytes.fromhex(f["frame"]) for f in frames]
    bad = [bytes.fromhex(case["stream"]) for case in invalid]
    for case in invalid:
        write(out, "stream-chunks", case["name"], bytes([2]) + struct.pack("<HH", 5, 1) + bytes.fromhex(case["stream"]))
    for index in range(0, len(wires), 3):
        stream = b"".join(wires[index:index + 3] + bad[index % max(len(bad), 1):][:1])
        sizes = [(7 * index + 3) % 40 + 1, 1, 64]
        write(out, "stream-chunks", f"stream-{index:02d}", bytes([len(sizes)]) + b"".join(struct.pack("<H", s) for s in sizes) + stream)


def probe_frame(number, width, height, timestamp, flags=0):
    pixels = bytes((x * 7 + y * 3 + number) & 0xFF for y in range(height) for x in range(width))
    header = bytearray(64)
    struct.pack_into("<IBBHQQHHBBHIHhHHI", header, 0, 0x46504E53, 1, 64, flags, number, timestamp, width, height,
                     8, 1, 0, len(pixels), 160, 0, 6000, 7500, 0)
    frame = bytes(header) + pixels
    crc = crc32c(frame[64:], crc32c(frame[:60]))
    return frame[:60] + struct.pack("<I", crc) + frame[64:]


def probe(out):
    # The harness reads [flags][u16 length if short][bytes]; transfers are 256 bytes.
    def transfers(frame, take):
        data = b""
        offset = 0
        while len(frame) - offset >= 256:
            data += bytes([0]) + frame[offset:offset + 256]
            offset += 256
        rest = frame[offset:]
        return data + bytes([2 | (8 if take else 0)]) + struct.pack("<H", len(rest)) + rest
    write(out, "probe-frame", "one-frame", transfers(probe_frame(0, 32, 16, 1000), True))
    write(out, "probe-frame", "three-frames", b"".join(transfers(probe_frame(n, 32, 16, 1000 + 16667 * n), n == 2) for n in range(3)))
    write(out, "probe-frame", "gap-and-small", transfers(probe_frame(5, 8, 4, 50), False) + transfers(probe_frame(9, 32, 16, 90), True))

    info = bytearray(80)
    info[0], info[1], info[2] = 1, 80, 1
    info[4:7] = bytes([1, 2, 3])
    info[8:24] = b"SONO-0001".ljust(16, b"\0")
    struct.pack_into("<IIHHhhHHHBB", info, 24, 1, 64 + 128 * 128, 40, 240, -1200, 1200, 1000, 6000, 7500, 8, 2)
    struct.pack_into("<HHHH", info, 48, 128, 128, 64, 64)
    write(out, "probe-control", "info", b"\x00" + bytes(info))
    status = bytearray(32)
    status[0], status[2], status[3] = 1, 1, 0
    struct.pack_into("<HhQQI", status, 4, 7, 3650, 1200, 1190, 10)
    write(out, "probe-control", "status", b"\x01" + bytes(status))
    write(out, "probe-control", "set-imaging", b"\x02" + struct.pack("<HhHHHH", 160, 0, 6000, 128, 128, 1))


def mcap_seeds(out, sonoctl):
    from mcap.writer import Writer, CompressionType
    schema = json.dumps({"type": "object", "properties": {"fz": {"type": "number"}}}).encode()
    recordings = {}
    for compression, name in [(CompressionType.ZSTD, "zstd"), (CompressionType.NONE, "none")]:
        stream = io.BytesIO()
        writer = Writer(stream, chunk_size=2048, compression=compression)
        writer.start(profile="sono", library="sono-fuzz-seed")
        force = writer.register_schema("sono.ForceSample", "jsonschema", schema)
        force_channel = writer.register_channel("/force", "json", force)
        frames_channel = writer.register_channel("/probe/frames", "x-sono-frame", 0, {"width": "8", "height": "4"})
        for n in range(40):
            writer.add_message(force_channel, 1_000_000 + n * 1000, json.dumps({"fz": n * 0.25}).encode(), 1_000_000 + n * 1000, n)
            if n % 10 == 0:
                writer.add_message(frames_channel, 1_000_000 + n * 1000, probe_frame(n, 8, 4, n)[64:], 1_000_000 + n * 1000, n)
        writer.add_attachment(2_000_000, 2_000_000, "session.toml", "application/toml", b"name = \"seed\"\n")
        writer.add_metadata("session", {"patient": "default", "mode": "simulation"})
        writer.finish()
        recordings[name] = stream.getvalue()
    if sonoctl:
        with tempfile.TemporaryDirectory() as scratch:
            source = pathlib.Path(scratch) / "in.mcap"
            source.write_bytes(recordings["zstd"][: len(recordings["zstd"]) * 2 // 3])  # cut off: recovery's case
            target = pathlib.Path(scratch) / "out.mcap"
            subprocess.run([sonoctl, "session", "recover", str(source), "--out", str(target)], check=True, capture_output=True)
            recordings["sono-recovered"] = target.read_bytes()
    for name, data in recordings.items():
        for target in ("mcap-reader", "mcap-recovery"):
            write(out, target, f"{name}.mcap", data)
            write(out, target, f"{name}-cut.mcap", data[: len(data) // 2])


def onnx_seeds(out):
    import onnx
    from onnx import TensorProto, helper
    shipped = ROOT / "models/view-classifier.onnx"
    write(out, "onnx-model", "view-classifier.onnx", shipped.read_bytes())
    metadata = {p.key: p.value for p in onnx.load(str(shipped)).metadata_props}
    metadata["sono.input.size"] = "16"
    metadata.pop("sono.training", None)
    labels = metadata["sono.labels"].split(",")
    quality = metadata.get("sono.quality.labels", "").split(",")

    def tensor(name, dims, seed):
        count = 1
        for d in dims:
            count *= d
        return helper.make_tensor(name, TensorProto.FLOAT, dims, [((seed + i * 7) % 11 - 5) / 10 for i in range(count)])
    nodes = [
        helper.make_node("Conv", ["frame", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["p1"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
        helper.make_node("Gemm", ["f", "qc", "qcb"], ["q"], transB=1),
        helper.make_node("Sigmoid", ["q"], ["quality"]),
    ]
    graph = helper.make_graph(
        nodes, "fuzz-seed",
        [helper.make_tensor_value_info("frame", TensorProto.FLOAT, ["N", 1, 16, 16])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(labels)]),
         helper.make_tensor_value_info("quality", TensorProto.FLOAT, ["N", len(quality)])],
        [tensor("w1", [4, 1, 3, 3], 1), tensor("b1", [4], 2), tensor("fc", [len(labels), 4], 3),
         tensor("fcb", [len(labels)], 4), tensor("qc", [len(quality), 4], 5), tensor("qcb", [len(quality)], 6)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="sono-fuzz-seed")
    helper.set_model_props(model, metadata)
    write(out, "onnx-model", "small.onnx", model.SerializeToString())
    no_quality = helper.make_model(helper.make_graph(nodes[:6], "fuzz-seed-logits", graph.input, graph.output[:1],
                                                     list(graph.initializer)[:4]),
                                   opset_imports=[helper.make_opsetid("", 17)])
    helper.set_model_props(no_quality, {k: v for k, v in metadata.items() if k != "sono.quality.labels"})
    write(out, "onnx-model", "small-logits-only.onnx", no_quality.SerializeToString())


def text_seeds(out):
    for patient in sorted((ROOT / "hardware/patients").glob("*.toml")):
        write(out, "patient-toml", patient.name, patient.read_bytes())
    write(out, "daemon-config", "sono.toml.example", (ROOT / "systemd/sono.toml.example").read_bytes())
    example = (ROOT / "systemd/sono.toml.example").read_text()
    # The example with its commented-out keys switched on.
    enabled = "\n".join(line[2:] if line.startswith("# ") and "=" in line else line for line in example.splitlines())
    write(out, "daemon-config", "sono.toml.enabled", enabled.encode())
    fixtures = sorted((ROOT / "Tests/SonoVisionTests/Fixtures").glob("default_*.png"))[:3]
    for png in fixtures:
        write(out, "png", png.name, b"\x00" + png.read_bytes())
    routes = (ROOT / "docs/control-api-routes.txt").read_text().split("\n")
    bodies = {"/v1/scan": b'{"views": ["PLAX", "A4C"]}', "/v1/recording/start": b'{"name": "seed-session"}'}
    for index, route in enumerate(r for r in routes if r.strip()):
        method, path = route.split()
        body = bodies.get(path, b"") if method == "POST" else b""
        request = (f"{method} {path} HTTP/1.1\r\nHost: sono\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        write(out, "control-api", f"route-{index:02d}", request)
    write(out, "control-api", "pipelined", b"GET /v1/status?x=1 HTTP/1.1\r\n\r\nPOST /v1/scan HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
          b"Content-Type: application/json\r\n\r\n5\r\n{\"vie\r\n0\r\n\r\nDELETE /v1/scan HTTP/1.1\r\n\r\n")


def tape_seeds(out):
    entries = {
        "force": struct.pack("<BQQ6fH", 1, 1000, 1200, 0.1, -0.2, 4.5, 0.01, 0.0, -0.02, 0),
        "joints": struct.pack("<BQHB", 2, 1300, 0, 6) + b"".join(struct.pack("<fffB", 0.1 * j, 0.0, 0.5, 0) for j in range(6)),
        "estop": struct.pack("<BB", 3, 1),
        "fault": struct.pack("<BBHBBff", 4, 1, 3, 2, 2, 12.5, 10.0),
        "ack": struct.pack("<BBB", 5, 0, 0x20),
        "nack": struct.pack("<BBBH", 6, 1, 0x21, 2),
        "link": struct.pack("<BBB", 7, 0, 1),
        "tick": struct.pack("<BQQ", 10, 42, 42_000),
        "safety": struct.pack("<BQBB", 20, 7, 1, 0),
        "move": struct.pack("<BQB", 20, 8, 2) + struct.pack("<7d", 0.3, 0.0, 0.2, 1, 0, 0, 0) + b"\x01" + struct.pack("<6d", 20, 100, 1000, 0.5, 2, 20),
        "contact": struct.pack("<BQBBd", 20, 9, 3, 1, 5.0),
        "hold": struct.pack("<BQB", 20, 10, 4),
        "deadman": struct.pack("<BQBB", 20, 11, 5, 1),
    }
    frames = json.loads((ROOT / "firmware-protocol/vectors/frames.json").read_text())["frames"]
    for frame in frames[:6]:
        wire = bytes.fromhex(frame["frame"])
        entries["sent-" + frame["name"]] = struct.pack("<BBH", 30, 1, len(wire)) + wire
    for name, data in entries.items():
        write(out, "motion-tape", name, data)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--sonoctl", help="sonoctl, to rewrite a recording with Sono's own MCAP writer")
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    board_frames(out)
    probe(out)
    mcap_seeds(out, args.sonoctl)
    onnx_seeds(out)
    text_seeds(out)
    tape_seeds(out)
    for directory in sorted(out.iterdir()):
        print(f"seed corpus: {sum(1 for _ in directory.iterdir()):3d} inputs in {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
