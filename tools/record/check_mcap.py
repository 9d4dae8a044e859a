#!/usr/bin/env python3
"""Checks an MCAP recording with the reference Python reader (PyPI `mcap`), independently of
Sono's Swift reader.

    check_mcap.py FILE --expect EXPECT.json      (or --expect '{"channels": ...}')

It reads the file twice: front to back (StreamReader, chunk and data-section CRCs validated)
and through the summary and indexes (make_reader(...).iter_messages / iter_attachments /
iter_metadata, chunk CRCs validated), and checks that both see the same messages, that the
summary's Statistics equal what the data section holds, that every Chunk Index, Message Index,
Attachment Index, Metadata Index and Summary Offset points at what it claims, and the summary
CRC. Then it compares with the expectation:

    {
      "profile": "sono",                                   optional
      "compression": "zstd",                               optional: every chunk's compression
      "min_chunks": 2,                                     optional
      "channels": {                                        topic -> expectations
        "/probe/image": {"message_encoding": "protobuf", "schema": "foxglove.RawImage",
                         "schema_encoding": "protobuf", "messages": 12, "metadata": {...}}
      },
      "attachments": [{"name": "arm.toml", "media_type": "application/toml", "size": 17}],
      "metadata": [{"name": "session", "entries": {"patient": "P-001"}}],
      "schema_valid": ["/motion/events", "/events"],      optional: every message on these json
                                                           channels validated against its channel's
                                                           JSON Schema (PyPI `jsonschema`)
      "decoded": [                                         decoded message contents
        {"topic": "/probe/image", "index": 0,
         "fields": {"width": 512, "height": 512, "encoding": "mono8", "data_length": 262144,
                    "timestamp_ns": 1700000000000000000}},
        {"topic": "/force", "index": 3, "json": {"fz": 7.5}}
      ]
    }

Exits 0 with a one-line summary, or 1 naming the first mismatch.
"""
import argparse
import io
import json
import struct
import sys
import zlib
from collections import Counter

from mcap.data_stream import ReadDataStream
from mcap.decoder import DecoderFactory
from mcap.exceptions import McapError
from mcap.opcode import Opcode
from mcap.reader import make_reader
from mcap.records import (Attachment, Channel, Chunk, DataEnd, Footer, Header, Message,
                          MessageIndex, Metadata, Schema)
from mcap.stream_reader import StreamReader, breakup_chunk, get_chunk_data_stream
from mcap_protobuf.decoder import DecoderFactory as ProtobufDecoderFactory
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

MAGIC = b"\x89MCAP0\r\n"


class Mismatch(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Mismatch(message)


def linear_scan(path):
    """Every record front to back, CRCs validated; returns what the data section holds."""
    found = {"messages": [], "channels": {}, "schemas": {}, "attachments": [], "metadata": [],
             "chunks": 0, "compressions": set(), "header": None, "data_end": False}
    with open(path, "rb") as f:
        for record in StreamReader(f, validate_crcs=True, emit_chunks=True).records:
            if isinstance(record, Header):
                found["header"] = record
            elif isinstance(record, Chunk):
                found["chunks"] += 1
                found["compressions"].add(record.compression)
                for inner in breakup_chunk(record, validate_crc=True):
                    note(found, inner)
            elif isinstance(record, DataEnd):
                found["data_end"] = True
            elif isinstance(record, Footer):
                break
            elif not found["data_end"]:
                note(found, record)
    return found


def note(found, record):
    if isinstance(record, Message):
        found["messages"].append(record)
    elif isinstance(record, Channel):
        found["channels"][record.id] = record
    elif isinstance(record, Schema):
        found["schemas"][record.id] = record
    elif isinstance(record, Attachment):
        found["attachments"].append(record)
    elif isinstance(record, Metadata):
        found["metadata"].append(record)


class JsonDecoderFactory(DecoderFactory):
    """Decodes "json" channels (mcap ships no JSON decoder)."""

    def decoder_for(self, message_encoding, schema):
        if message_encoding != "json":
            return None
        return lambda data: json.loads(bytes(data))


def message_key(m):
    return (m.channel_id, m.sequence, m.log_time, m.publish_time, bytes(m.data))


def read_record_at(f, offset):
    f.seek(offset)
    opcode, length = struct.unpack("<BQ", f.read(9))
    return opcode, length, f.read(length)


def check_indexes(path, summary, found):
    """Statistics, chunk / message / attachment / metadata indexes, summary offsets, CRC."""
    stats = summary.statistics
    expect(stats is not None, "the summary has no Statistics record")
    messages = found["messages"]
    per_channel = Counter(m.channel_id for m in messages)
    expect(stats.message_count == len(messages),
           f"Statistics.message_count {stats.message_count}, the file holds {len(messages)}")
    expect(dict(stats.channel_message_counts) == dict(per_channel),
           f"Statistics.channel_message_counts {dict(stats.channel_message_counts)}, the file holds {dict(per_channel)}")
    expect(stats.chunk_count == found["chunks"] == len(summary.chunk_indexes),
           f"Statistics.chunk_count {stats.chunk_count}, {len(summary.chunk_indexes)} chunk indexes, {found['chunks']} chunks")
    expect(stats.channel_count == len(found["channels"]) == len(summary.channels),
           f"Statistics.channel_count {stats.channel_count}, data section {len(found['channels'])}, summary {len(summary.channels)}")
    expect(stats.schema_count == len(found["schemas"]) == len(summary.schemas),
           f"Statistics.schema_count {stats.schema_count}, data section {len(found['schemas'])}, summary {len(summary.schemas)}")
    expect(stats.attachment_count == len(found["attachments"]) == len(summary.attachment_indexes),
           f"Statistics.attachment_count {stats.attachment_count}, {len(found['attachments'])} attachments")
    expect(stats.metadata_count == len(found["metadata"]) == len(summary.metadata_indexes),
           f"Statistics.metadata_count {stats.metadata_count}, {len(found['metadata'])} metadata records")
    if messages:
        expect(stats.message_start_time == min(m.log_time for m in messages), "Statistics.message_start_time is wrong")
        expect(stats.message_end_time == max(m.log_time for m in messages), "Statistics.message_end_time is wrong")
    for cid, channel in summary.channels.items():
        expect(found["channels"].get(cid) == channel, f"summary Channel {cid} differs from the data section's")
    for sid, schema in summary.schemas.items():
        expect(found["schemas"].get(sid) == schema, f"summary Schema {sid} differs from the data section's")

    with open(path, "rb") as f:
        for ci in summary.chunk_indexes:
            opcode, length, content = read_record_at(f, ci.chunk_start_offset)
            expect(opcode == Opcode.CHUNK and length + 9 == ci.chunk_length,
                   f"Chunk Index points at byte {ci.chunk_start_offset}, which holds no chunk of {ci.chunk_length} bytes")
            chunk = Chunk.read(ReadDataStream(io.BytesIO(content)))
            expect(chunk.compression == ci.compression and len(chunk.data) == ci.compressed_size
                   and chunk.uncompressed_size == ci.uncompressed_size,
                   f"Chunk Index of the chunk at {ci.chunk_start_offset}: compression/sizes differ from the chunk")
            expect(chunk.message_start_time == ci.message_start_time and chunk.message_end_time == ci.message_end_time,
                   f"Chunk Index of the chunk at {ci.chunk_start_offset}: message times differ from the chunk")
            inner = breakup_chunk(chunk, validate_crc=True)
            # The message records by their offset in the uncompressed chunk.
            by_offset, position = {}, 0
            raw = uncompressed_records(chunk)
            while position < len(raw):
                op, ln = struct.unpack_from("<BQ", raw, position)
                if op == Opcode.MESSAGE:
                    channel_id, _, log_time = struct.unpack_from("<HIQ", raw, position + 9)
                    by_offset[position] = (channel_id, log_time)
                position += 9 + ln
            expect(len(by_offset) == sum(isinstance(r, Message) for r in inner), "chunk record walk disagrees with mcap")
            indexed = 0
            index_bytes = 0
            for channel_id, offset in ci.message_index_offsets.items():
                opcode, length, content = read_record_at(f, offset)
                expect(opcode == Opcode.MESSAGE_INDEX, f"Message Index offset {offset} holds opcode {opcode}")
                index_bytes += 9 + length
                mi = MessageIndex.read(ReadDataStream(io.BytesIO(content)))
                expect(mi.channel_id == channel_id, f"Message Index at {offset} is for channel {mi.channel_id}, not {channel_id}")
                for log_time, message_offset in mi.records:
                    expect(by_offset.get(message_offset) == (channel_id, log_time),
                           f"Message Index entry ({log_time}, {message_offset}) of channel {channel_id} matches no message")
                indexed += len(mi.records)
            expect(indexed == len(by_offset), f"chunk at {ci.chunk_start_offset}: {indexed} indexed of {len(by_offset)} messages")
            expect(index_bytes == ci.message_index_length,
                   f"chunk at {ci.chunk_start_offset}: message_index_length {ci.message_index_length}, records are {index_bytes} bytes")
        for ai in summary.attachment_indexes:
            opcode, length, _ = read_record_at(f, ai.offset)
            expect(opcode == Opcode.ATTACHMENT and length + 9 == ai.length, f"Attachment Index at {ai.offset} points at no attachment")
        for mi in summary.metadata_indexes:
            opcode, length, _ = read_record_at(f, mi.offset)
            expect(opcode == Opcode.METADATA and length + 9 == mi.length, f"Metadata Index at {mi.offset} points at no metadata")
        check_footer(f)


def uncompressed_records(chunk):
    """A chunk's uncompressed records (what breakup_chunk parses), for offset checks."""
    stream, length = get_chunk_data_stream(chunk, validate_crc=True)
    return stream.read(length)


def check_footer(f):
    """The footer's summary CRC and Summary Offset records."""
    f.seek(-(8 + 29), 2)
    footer_at = f.tell()
    opcode, length, summary_start, offset_start, crc = struct.unpack("<BQQQI", f.read(29))
    expect(f.read(8) == MAGIC, "the file does not end with the MCAP magic")
    expect(opcode == Opcode.FOOTER and length == 20, "no Footer record before the closing magic")
    expect(summary_start != 0, "the footer says there is no summary")
    f.seek(summary_start)
    summary_bytes = f.read(footer_at - summary_start)
    if crc != 0:
        computed = zlib.crc32(summary_bytes + struct.pack("<BQQQ", opcode, length, summary_start, offset_start))
        expect(computed == crc, f"summary CRC is {computed:#010x}, the footer says {crc:#010x}")
    expect(offset_start != 0, "no Summary Offset records")
    groups, position = {}, 0
    while summary_start + position < offset_start:
        op, ln = struct.unpack_from("<BQ", summary_bytes, position)
        start, total = groups.get(op, (summary_start + position, 0))
        groups[op] = (start, total + 9 + ln)
        position += 9 + ln
    offsets = {}
    while position < len(summary_bytes):
        op, ln = struct.unpack_from("<BQ", summary_bytes, position)
        expect(op == Opcode.SUMMARY_OFFSET, f"record {op} after summary_offset_start")
        group_op, start, total = struct.unpack_from("<BQQ", summary_bytes, position + 9)
        if total or group_op in groups:  # the Python writer lists empty groups too
            offsets[group_op] = (start, total)
        position += 9 + ln
    expect(offsets == groups, f"Summary Offsets {offsets} do not describe the summary's groups {groups}")


def check_decoded(item, decoded):
    for key, value in item.get("fields", {}).items():
        if key == "data_length":
            actual = len(decoded.data)
        elif key == "timestamp_ns":
            actual = decoded.timestamp.seconds * 1_000_000_000 + decoded.timestamp.nanos
        else:
            actual = getattr(decoded, key)
        expect(actual == value, f"{item['topic']}[{item['index']}].{key} is {actual!r}, expected {value!r}")
    for key, value in item.get("json", {}).items():
        expect(decoded.get(key) == value, f"{item['topic']}[{item['index']}].{key} is {decoded.get(key)!r}, expected {value!r}")


def check_schemas(topics, summary, messages):
    """Every message on each topic validated against its channel's JSON Schema; returns the counts."""
    validated = {}
    by_topic = {c.topic: c for c in summary.channels.values()}
    for topic in topics:
        expect(topic in by_topic, f"schema_valid: no channel {topic}")
        channel = by_topic[topic]
        schema = summary.schemas.get(channel.schema_id)
        expect(schema is not None and schema.encoding == "jsonschema",
               f"{topic}: no JSON Schema (schema {schema.name if schema else None!r})")
        expect(channel.message_encoding == "json", f"{topic}: message encoding {channel.message_encoding!r}, not json")
        try:
            document = json.loads(bytes(schema.data))
            Draft202012Validator.check_schema(document)
        except (ValueError, SchemaError) as error:
            raise Mismatch(f"{topic}: schema {schema.name} is not a valid JSON Schema: {error}")
        validator = Draft202012Validator(document)
        count = 0
        for index, message in enumerate(m for m in messages if m.channel_id == channel.id):
            try:
                value = json.loads(bytes(message.data))
            except ValueError as error:
                raise Mismatch(f"{topic}[{index}] is not JSON: {error}")
            error = best_match(validator.iter_errors(value))
            if error is not None:
                text = bytes(message.data).decode("utf-8", "replace")
                raise Mismatch(f"{topic}[{index}] does not match schema {schema.name}: {error.message} "
                               f"(at {'/'.join(map(str, error.absolute_path)) or 'the top'}): {text[:300]}")
            count += 1
        validated[topic] = count
    return validated


def check(path, expected):
    found = linear_scan(path)
    expect(found["data_end"], "no DataEnd record: the file was not closed")
    if "profile" in expected:
        expect(found["header"].profile == expected["profile"], f"profile is {found['header'].profile!r}")
    if "compression" in expected and found["chunks"]:
        expect(found["compressions"] == {expected["compression"]}, f"chunk compressions {found['compressions']}")
    expect(found["chunks"] >= expected.get("min_chunks", 0), f"{found['chunks']} chunks, expected at least {expected.get('min_chunks')}")

    with open(path, "rb") as f:
        reader = make_reader(f, validate_crcs=True, decoder_factories=[ProtobufDecoderFactory(), JsonDecoderFactory()])
        summary = reader.get_summary()
        expect(summary is not None, "no summary section")
        check_indexes(path, summary, found)
        # Through the index, in file order: the same messages as the linear scan.
        indexed = [message_key(m) for _, _, m in reader.iter_messages(log_time_order=False)]
        expect(indexed == [message_key(m) for m in found["messages"]],
               f"iter_messages through the index gives {len(indexed)} messages, the linear scan {len(found['messages'])} (or a different order)")
        attachments = [(a.name, a.media_type, bytes(a.data)) for a in reader.iter_attachments()]
        expect(attachments == [(a.name, a.media_type, bytes(a.data)) for a in found["attachments"]],
               "attachments through the index differ from the data section's")
        metadata = [(m.name, dict(m.metadata)) for m in reader.iter_metadata()]
        expect(metadata == [(m.name, dict(m.metadata)) for m in found["metadata"]],
               "metadata through the index differ from the data section's")

        topics = {c.topic: c for c in summary.channels.values()}
        counts = Counter(summary.channels[m.channel_id].topic for m in found["messages"])
        for topic, want in expected.get("channels", {}).items():
            expect(topic in topics, f"no channel {topic} (channels: {sorted(topics)})")
            channel = topics[topic]
            schema = summary.schemas.get(channel.schema_id)
            if "message_encoding" in want:
                expect(channel.message_encoding == want["message_encoding"], f"{topic}: message encoding {channel.message_encoding!r}")
            if "schema" in want:
                expect((schema.name if schema else None) == want["schema"], f"{topic}: schema {schema.name if schema else None!r}")
            if "schema_encoding" in want:
                expect(schema is not None and schema.encoding == want["schema_encoding"], f"{topic}: schema encoding")
            if "messages" in want:
                expect(counts[topic] == want["messages"], f"{topic}: {counts[topic]} messages, expected {want['messages']}")
            if "metadata" in want:
                expect(dict(channel.metadata) == want["metadata"], f"{topic}: metadata {dict(channel.metadata)}")
        if "channels" in expected:
            expect(set(topics) == set(expected["channels"]), f"channels {sorted(topics)}, expected {sorted(expected['channels'])}")
        if "attachments" in expected:
            actual = [{"name": n, "media_type": t, "size": len(d)} for n, t, d in attachments]
            expect(actual == expected["attachments"], f"attachments {actual}")
        if "metadata" in expected:
            actual = [{"name": n, "entries": e} for n, e in metadata]
            expect(actual == expected["metadata"], f"metadata {actual}")

        found["validated"] = check_schemas(expected.get("schema_valid", []), summary, found["messages"])

        if expected.get("decoded"):
            by_topic = {}
            for schema, channel, message, decoded in reader.iter_decoded_messages(
                    topics=[d["topic"] for d in expected["decoded"]], log_time_order=False):
                by_topic.setdefault(channel.topic, []).append(decoded)
            for item in expected["decoded"]:
                messages = by_topic.get(item["topic"], [])
                expect(item["index"] < len(messages), f"{item['topic']} has {len(messages)} messages, no index {item['index']}")
                check_decoded(item, messages[item["index"]])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("file")
    parser.add_argument("--expect", required=True, help="expectations: a JSON file, or JSON text")
    args = parser.parse_args()
    text = args.expect if args.expect.lstrip().startswith("{") else open(args.expect).read()
    try:
        found = check(args.file, json.loads(text))
    except Mismatch as mismatch:
        print(f"check_mcap: {args.file}: {mismatch}", file=sys.stderr)
        return 1
    except (McapError, ValueError, struct.error, OSError) as error:
        print(f"check_mcap: {args.file}: the reference reader failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(f"check_mcap: {args.file}: ok ({len(found['messages'])} messages, {found['chunks']} chunks, "
          f"{len(found['attachments'])} attachments, {len(found['metadata'])} metadata"
          + "".join(f", {n} {topic} valid" for topic, n in found["validated"].items()) + ")")
    return 0


if __name__ == "__main__":
    sys.exit(main())
