#!/usr/bin/env python3
"""The reference Python MCAP writer (PyPI `mcap`, zstd chunks) on a Sono session's data volume,
as fast as it goes, for comparison with Sono's Swift writer (`sonoctl bench record --fast`,
`RecordingBench.run` with `realTime: false`).

    bench_python_writer.py [--seconds 10] [--chunk-size 4194304] [--out FILE]
    bench_python_writer.py --frame-crcs 0,7,15     (CRC-32 of the synthetic frames, to check
                                                     that both sides write the same bytes)

The data: 60 fps 512x512 mono8 foxglove.RawImage frames (protobuf) built by the same integer
recipe as SonoRecord's SyntheticSession.frame (16 distinct frames), 1 kHz force and 1 kHz
joint-state JSON messages (about 120 and 300 bytes). Everything is made before the clock
starts; the time covers writing every message, closing the chunks and the summary. Prints
payload MB/s (10^6 bytes of message data per second) like the Swift bench.
"""
import argparse
import math
import os
import struct
import sys
import tempfile
import time
import zlib

import numpy as np
from google.protobuf import descriptor_pb2
from mcap.writer import CompressionType, Writer


def frame(index, width=512, height=512):
    """SyntheticSession.frame: sector, depth bands, moving dark ellipse, lowbias32 speckle."""
    k = index % 16
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    centre = width // 2
    chamber_y = height * 9 // 20 + (k % 8) * 6
    dx = x - centre
    inside = (y >= 8) & (100 * np.abs(dx) <= 77 * y)
    ey = y - chamber_y
    brightness = np.where(4 * dx * dx + 9 * ey * ey < 120 * 120, 16, 64 + (y * 3 + k * 5) % 128)
    h = ((x + y * width + k * 2654435761) & 0xFFFFFFFF).astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
    speckle = (h & np.uint32(0xFF)).astype(np.int64)
    return np.where(inside, (speckle * brightness) >> 8, 0).astype(np.uint8).tobytes()


def fixed(value, digits):
    return f"{value:.{digits}f}" if round(abs(value) * 10 ** digits) else f"{0:.{digits}f}"


def force_json(ms):
    t = ms / 1000
    return (f'{{"t":{fixed(t, 3)},"seq":{ms},"fx":{fixed(0.12 * math.sin(t), 4)},"fy":{fixed(-0.08 * math.cos(t), 4)},'
            f'"fz":{fixed(8 + 0.5 * math.sin(t * 6.28), 4)},"tx":0.01100,"ty":-0.00400,"tz":0.00070,"frame":"probe"}}').encode()


def joints_json(ms):
    t = ms / 1000

    def values(value, digits):
        return ",".join(fixed(value(j), digits) for j in range(6))

    q = values(lambda j: 0.3 * j + 0.01 * math.sin(t + j), 6)
    dq = values(lambda j: 0.01 * math.cos(t + j), 6)
    current = values(lambda j: 1.2 + 0.1 * j, 3)
    torque = values(lambda j: 0.5 + 0.05 * j, 4)
    return (f'{{"t":{fixed(t, 3)},"q":[{q}],"dq":[{dq}],"current":[{current}],"torque":[{torque}],'
            f'"status":"drives_enabled,homed","mode":"position","seq":{ms}}}').encode()


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def raw_image(nanos, width, height, pixels, frame_id=b"probe"):
    """foxglove.RawImage in protobuf wire format (fields in number order, like RawImageEncoder)."""
    seconds, rest = divmod(nanos, 1_000_000_000)
    stamp = (b"\x08" + varint(seconds) if seconds else b"") + (b"\x10" + varint(rest) if rest else b"")
    return b"".join([
        b"\x0a", varint(len(stamp)), stamp,
        b"\x15", struct.pack("<I", width), b"\x1d", struct.pack("<I", height),
        b"\x22\x05mono8", b"\x2d", struct.pack("<I", width),
        b"\x32", varint(len(pixels)), pixels,
        b"\x3a", varint(len(frame_id)), frame_id,
    ])


def raw_image_schema():
    """The FileDescriptorSet of foxglove/RawImage.proto and google/protobuf/timestamp.proto."""
    F = descriptor_pb2.FieldDescriptorProto
    fds = descriptor_pb2.FileDescriptorSet()
    ts = fds.file.add(name="google/protobuf/timestamp.proto", package="google.protobuf", syntax="proto3")
    m = ts.message_type.add(name="Timestamp")
    m.field.add(name="seconds", number=1, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    m.field.add(name="nanos", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    ri = fds.file.add(name="foxglove/RawImage.proto", package="foxglove", syntax="proto3",
                      dependency=["google/protobuf/timestamp.proto"])
    m = ri.message_type.add(name="RawImage")
    for name, number, kind, type_name in [("timestamp", 1, F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
                                          ("frame_id", 7, F.TYPE_STRING, None), ("width", 2, F.TYPE_FIXED32, None),
                                          ("height", 3, F.TYPE_FIXED32, None), ("encoding", 4, F.TYPE_STRING, None),
                                          ("step", 5, F.TYPE_FIXED32, None), ("data", 6, F.TYPE_BYTES, None)]:
        field = m.field.add(name=name, number=number, type=kind, label=F.LABEL_OPTIONAL)
        if type_name:
            field.type_name = type_name
    return fds.SerializeToString()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--chunk-size", type=int, default=4 << 20)
    parser.add_argument("--out", help="keep the recording here (default: a temporary file, deleted)")
    parser.add_argument("--frame-crcs", help="print the CRC-32 of these synthetic frames (e.g. 0,7,15) and exit")
    args = parser.parse_args()
    if args.frame_crcs:
        for index in (int(i) for i in args.frame_crcs.split(",")):
            print(f"{index} {zlib.crc32(frame(index)):08x}")
        return 0

    frames = [frame(i) for i in range(16)]
    force = [force_json(ms) for ms in range(1000)]
    joints = [joints_json(ms) for ms in range(1000)]
    out = args.out or tempfile.mktemp(suffix=".mcap", prefix="sono-python-bench-")
    samples = int(args.seconds * 1000)
    payload = 0
    messages = 0

    start = time.perf_counter()
    with open(out, "wb") as stream:
        writer = Writer(stream, chunk_size=args.chunk_size, compression=CompressionType.ZSTD, enable_data_crcs=True)
        writer.start(profile="sono", library="python bench")
        image = writer.register_channel("/probe/image", "protobuf",
                                        writer.register_schema("foxglove.RawImage", "protobuf", raw_image_schema()))
        force_channel = writer.register_channel("/force", "json",
                                                writer.register_schema("sono.ForceTorque", "jsonschema", b'{"type":"object"}'))
        joints_channel = writer.register_channel("/joints", "json",
                                                 writer.register_schema("sono.JointState", "jsonschema", b'{"type":"object"}'))
        frame_index = 0
        for sample in range(samples):
            t = sample * 1_000_000
            data = force[sample % 1000]
            writer.add_message(force_channel, log_time=t, data=data, publish_time=t, sequence=sample)
            payload += len(data)
            data = joints[sample % 1000]
            writer.add_message(joints_channel, log_time=t, data=data, publish_time=t, sequence=sample)
            payload += len(data)
            messages += 2
            if frame_index * 1000 <= sample * 60:
                data = raw_image(t, 512, 512, frames[frame_index % 16])
                writer.add_message(image, log_time=t, data=data, publish_time=t, sequence=frame_index)
                payload += len(data)
                messages += 1
                frame_index += 1
        writer.finish()
    elapsed = time.perf_counter() - start
    size = os.path.getsize(out)
    if not args.out:
        os.unlink(out)
    print(f"python mcap writer: {messages} messages ({frame_index} frames), {payload / 1e6:.1f} MB payload in "
          f"{elapsed:.2f} s: {payload / elapsed / 1e6:.1f} MB/s; file {size / 1e6:.1f} MB "
          f"(payload/file {payload / size:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
