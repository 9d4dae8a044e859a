#!/usr/bin/env python3
"""Single-image latency of the view classifier in onnxruntime on ONE thread.

    python3 tools/vision/ort_bench.py --model models/view-classifier.onnx --frames 2000

Prints one JSON line: {"runtime": "onnxruntime", "version": ..., "threads": 1, "frames": N,
"warmup": W, "p50_us": ..., "p99_us": ..., "mean_us": ..., "min_us": ...}. Timed: session.run on
an already preprocessed [1, 1, S, S] float32 input (model inference only, no resize); the input
is a fixed pseudo-random frame (seeded). Sono's Swift benchmark compares its own numbers to these.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from parity_reference import contract, make_session, preprocess  # noqa: E402


def bench(model: str, frames: int, warmup: int, png: str | None = None) -> dict:
    import onnxruntime as ort
    session = make_session(model, threads=1)
    c = contract(session)
    if png:
        from parity_reference import load_png
        pixels = load_png(png)
    else:
        pixels = np.random.default_rng(1).integers(0, 256, size=(128, 128), dtype=np.uint8)
    x = preprocess(pixels, c["input_size"], c["mean"], c["std"])
    feed = {session.get_inputs()[0].name: x}
    for _ in range(warmup):
        session.run(None, feed)
    times = np.empty(frames)
    for i in range(frames):
        t0 = time.perf_counter_ns()
        session.run(None, feed)
        times[i] = (time.perf_counter_ns() - t0) / 1000
    return {"runtime": "onnxruntime", "version": ort.__version__, "threads": 1, "frames": frames,
            "warmup": warmup, "p50_us": round(float(np.percentile(times, 50)), 1),
            "p99_us": round(float(np.percentile(times, 99)), 1),
            "mean_us": round(float(times.mean()), 1), "min_us": round(float(times.min()), 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/view-classifier.onnx")
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--png", help="time this frame instead of a random one")
    args = ap.parse_args(argv)
    if args.frames <= 0:
        raise SystemExit("--frames must be positive")
    print(json.dumps(bench(args.model, args.frames, args.warmup, args.png)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
