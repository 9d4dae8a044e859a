#!/usr/bin/env python3
"""Writes each golden frame of firmware-protocol/vectors/frames.json as one file of a libFuzzer
seed corpus, so fuzzing starts from valid frames of every message type.

Usage: seed_corpus.py FRAMES_JSON OUT_DIR
"""
import json
import pathlib
import sys


def main() -> int:
    frames_json, out_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    frames = json.loads(pathlib.Path(frames_json).read_text())["frames"]
    for frame in frames:
        (out_dir / frame["name"]).write_bytes(bytes.fromhex(frame["frame"]))
    print(f"seed corpus: {len(frames)} frames in {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
