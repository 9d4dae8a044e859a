#!/usr/bin/env python3
"""Reference outputs of the view classifier with onnxruntime, for Sono's Swift parity test.

For each PNG (8-bit grayscale, any size) the input tensor is computed with numpy exactly as the
model contract says (models/view-classifier.md, "Input contract"), run through onnxruntime on one
thread, and the logits (and, when the model has the optional `quality` output, the quality per
view) are written as JSON:

    python3 tools/vision/parity_reference.py --model models/view-classifier.onnx \
        Tests/SonoVisionTests/Fixtures --out /tmp/reference.json

    {"model": "...", "labels": [...], "input_size": 96, "mean": ..., "std": ...,
     "results": [{"file": "default_a4c.png", "width": 128, "height": 128,
                  "logits": [6 floats], "label": "A4C"}, ...]}

A model with a `quality` output (models/README.md) adds `"quality_labels": [...]` (its
`sono.quality.labels`) to the document and `"quality": [Q floats]` to each result; a logits-only
model's JSON is as before.

Arguments may be PNG files or folders (their *.png, sorted by name). `--dump-input` also writes
each input tensor (96×96 float32, row-major) so a preprocessing mismatch can be told apart from
an inference mismatch. Needs numpy, pillow and onnxruntime only (tools/vision/requirements.txt).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image


def resize_weights(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear, half-pixel centres, no antialias (== torch interpolate(mode="bilinear",
    align_corners=False, antialias=False) with an output size given), per axis:
        scale = Float(in_size) / Float(out_size)                 (float32)
        src   = max(fma(scale, dst + 0.5, -0.5), 0)              (float32, one rounding)
        i0    = floor(src); i1 = min(i0 + 1, in_size - 1)
        w1    = src - i0;   w0 = 1 - w1                          (float32)
    torch's CPU kernel evaluates src with a fused multiply-add; the exact product of two float32
    values fits a float64, so float64 arithmetic rounded once to float32 reproduces it. (For
    128 -> 96 a plain float32 multiply then subtract gives the same weights.)"""
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float64)
    src = (np.float64(scale) * (dst + 0.5) - 0.5).astype(np.float32)
    src = np.maximum(src, np.float32(0))
    i0 = np.floor(src).astype(np.int64)
    i0 = np.minimum(i0, in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0.astype(np.float32)).astype(np.float32)
    w0 = (np.float32(1) - w1).astype(np.float32)
    return i0, i1, np.stack([w0, w1])


def preprocess(pixels: np.ndarray, size: int, mean: float, std: float) -> np.ndarray:
    """uint8 [H, W] frame -> float32 [1, 1, size, size] model input.
    x = pixel / 255 (float32); bilinear resize to size×size (rows then columns, see
    resize_weights); value = (x - mean) / std."""
    assert pixels.ndim == 2 and pixels.dtype == np.uint8, (pixels.shape, pixels.dtype)
    x = pixels.astype(np.float32) / np.float32(255)
    h, w = x.shape
    yi0, yi1, yw = resize_weights(h, size)
    xi0, xi1, xw = resize_weights(w, size)
    # out[y, x] = wy0 * (wx0*in[y0,x0] + wx1*in[y0,x1]) + wy1 * (wx0*in[y1,x0] + wx1*in[y1,x1])
    top = xw[0][None, :] * x[yi0][:, xi0] + xw[1][None, :] * x[yi0][:, xi1]
    bottom = xw[0][None, :] * x[yi1][:, xi0] + xw[1][None, :] * x[yi1][:, xi1]
    out = yw[0][:, None] * top + yw[1][:, None] * bottom
    out = (out - np.float32(mean)) / np.float32(std)
    return out.astype(np.float32)[None, None]


def load_png(path: str) -> np.ndarray:
    im = Image.open(path)
    if im.mode != "L":
        raise SystemExit(f"{path}: expected 8-bit grayscale PNG, got mode {im.mode}")
    return np.asarray(im, dtype=np.uint8)


def contract(session) -> dict:
    meta = session.get_modelmeta().custom_metadata_map
    try:
        return {
            "labels": meta["sono.labels"].split(","),
            "input_size": int(meta["sono.input.size"]),
            "mean": float(meta["sono.normalize.mean"]),
            "std": float(meta["sono.normalize.std"]),
            "resize": meta["sono.resize"],
            "version": meta.get("sono.model.version", ""),
            "quality_labels": meta["sono.quality.labels"].split(",") if "sono.quality.labels" in meta else [],
        }
    except KeyError as e:
        raise SystemExit(f"model lacks metadata_props {e}")


def output_names(session) -> tuple[str, str | None]:
    """The logits output and the optional quality output, by name as the model contract says:
    a single output (any name) is the logits; two must be `logits` and `quality`."""
    names = [o.name for o in session.get_outputs()]
    if len(names) == 1:
        return names[0], None
    if sorted(names) != ["logits", "quality"]:
        raise SystemExit(f"outputs must be logits and optionally quality, got {names}")
    return "logits", "quality"


def make_session(model: str, threads: int = 1):
    import onnxruntime as ort
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


def collect(paths: list[str]) -> list[str]:
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(".png"))
        else:
            files.append(p)
    if not files:
        raise SystemExit("no PNG files given")
    return files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="models/view-classifier.onnx")
    ap.add_argument("--out", help="JSON output (default: stdout)")
    ap.add_argument("--dump-input", action="store_true", help="also write each input tensor (flattened)")
    ap.add_argument("inputs", nargs="+", help="PNG files or folders of PNGs")
    args = ap.parse_args(argv)

    session = make_session(args.model)
    c = contract(session)
    if c["resize"] != "bilinear-half-pixel":
        raise SystemExit(f"unsupported sono.resize {c['resize']!r}")
    input_name = session.get_inputs()[0].name
    logits_name, quality_name = output_names(session)
    if (quality_name is None) != (not c["quality_labels"]):
        raise SystemExit("a quality output needs sono.quality.labels, and sono.quality.labels a quality output")
    fetch = [logits_name] + ([quality_name] if quality_name else [])
    results = []
    for path in collect(args.inputs):
        pixels = load_png(path)
        x = preprocess(pixels, c["input_size"], c["mean"], c["std"])
        outputs = session.run(fetch, {input_name: x})
        logits = outputs[0][0]
        r = {"file": os.path.basename(path), "width": int(pixels.shape[1]), "height": int(pixels.shape[0]),
             "logits": [float(v) for v in logits], "label": c["labels"][int(np.argmax(logits))]}
        if quality_name:
            r["quality"] = [float(v) for v in outputs[1][0]]
        if args.dump_input:
            r["input"] = [float(v) for v in x.reshape(-1)]
        results.append(r)
    doc = {"model": os.path.basename(args.model), "version": c["version"], "labels": c["labels"],
           "input_size": c["input_size"], "mean": c["mean"], "std": c["std"], "resize": c["resize"]}
    if quality_name:
        doc["quality_labels"] = c["quality_labels"]
    doc["results"] = results
    text = json.dumps(doc, indent=1) + "\n"
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
        print(f"wrote {len(results)} results to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
