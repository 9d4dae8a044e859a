#!/usr/bin/env python3
"""Train Sono's view classifier on the virtual patient and export it as ONNX + model card.

One command, CPU only, fixed seeds (from the repository root):

    .venv-train/bin/python tools/vision/train.py

It (1) writes random training and validation patients (tools/vision/make_patients.py) and
validates each with sonoctl, (2) renders the data sets with `sonoctl sim dataset`: training and
validation patients, and the 5 shipped patients (hardware/patients/*.toml) as the held-out test
set with their own pose seed, (3) trains a small CNN with augmentation and keeps the epoch best on
the validation patients, (4) exports models/view-classifier.onnx (opset 17, only the ops the Swift
runtime lowers to oneDNN; anything else fails the run), checks onnxruntime against torch, (5)
scores the held-out patients through onnxruntime with the numpy preprocessing of
tools/vision/parity_reference.py (the deployed path), measures single-thread latency, and writes
the model card models/view-classifier.md.

Data sets and patients go to --work (default /tmp/sono-vision), never into the repository.
"""
from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import make_patients  # noqa: E402
from parity_reference import make_session, preprocess  # noqa: E402

LABELS = ["PLAX", "PSAX", "A4C", "A2C", "SC4C", "OTHER"]
VIEWS = LABELS[:5]          # the views with a quality output, in its order
INPUT_SIZE = 96
MODEL_VERSION = "2"
ALLOWED_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
               "Gemm", "MatMul", "Add", "Flatten", "Reshape", "Sigmoid"}
# SonoSim's true quality (docs/VIRTUAL-PATIENT.md, "True view quality"): diagnostic at q ≥ 0.7; the
# hard label is the best view with q ≥ 0.5, else OTHER. A frame is *clear* when its best q ≥ 0.5 or
# every q < 0.2; view accuracy is scored on clear frames. Training's class target puts the boundary
# in the middle of the unscored band (0.2 … 0.5), as far as it can be from both kinds of clear frame.
DIAGNOSTIC = 0.7
PRESENT = 0.5
CLEAR_BELOW = 0.2
TRAIN_PRESENT = 0.35


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- data

def run(cmd: list[str]) -> None:
    log("$ " + " ".join(cmd))
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stdout}{r.stderr}")
    tail = r.stdout.strip().splitlines()[-1:] if r.stdout.strip() else []
    for line in tail:
        log("  " + line)


def dataset(sonoctl: str, patients: str, count: int, seed: int, out: str) -> str:
    """Render once; a stamp of the inputs lets a rerun reuse the folder."""
    files = sorted(f for f in os.listdir(patients) if f.endswith(".toml"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        with open(os.path.join(patients, f), "rb") as fh:
            h.update(fh.read())
    with open(sonoctl, "rb") as fh:
        h.update(hashlib.sha256(fh.read()).digest())
    stamp = f"count={count} seed={seed} size=128 inputs={h.hexdigest()}"
    stamp_path = os.path.join(out, "STAMP")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        log(f"reusing {out}")
        return out
    shutil.rmtree(out, ignore_errors=True)
    run([sonoctl, "sim", "dataset", "--patients", patients, "--count", str(count), "--out", out,
         "--size", "128", "--seed", str(seed)])
    with open(stamp_path, "w") as f:
        f.write(stamp)
    return out


def load(folder: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """Frames, hard labels (the simulator's), true quality [N, 5], patients, files."""
    images, labels, quality, patients, files = [], [], [], [], []
    with open(os.path.join(folder, "labels.csv")) as f:
        for row in csv.DictReader(f):
            im = np.asarray(Image.open(os.path.join(folder, row["file"])), dtype=np.uint8)
            assert im.ndim == 2, row["file"]
            images.append(im)
            labels.append(LABELS.index(row["view"]))
            quality.append([float(row[v.lower() + "_q"]) for v in VIEWS])
            patients.append(row["patient"])
            files.append(row["file"])
    return (np.stack(images), np.array(labels, dtype=np.int64), np.array(quality, dtype=np.float32),
            patients, files)


def train_targets(quality: np.ndarray) -> np.ndarray:
    """Class targets for training: the best view when its q ≥ TRAIN_PRESENT, else OTHER."""
    best = quality.argmax(1)
    return np.where(quality.max(1) >= TRAIN_PRESENT, best, LABELS.index("OTHER")).astype(np.int64)


def clear_mask(quality: np.ndarray) -> np.ndarray:
    top = quality.max(1)
    return (top >= PRESENT) | (top < CLEAR_BELOW)


# ---------------------------------------------------------------- model

def build_model(widths: list[int], stem_kernel: int = 3, stem_stride: int = 1, head: str = "gap"):
    import torch.nn as nn

    class ViewNet(nn.Module):
        """Conv-BN-ReLU blocks: the first (stem) conv stem_kernel×stem_kernel with stride
        stem_stride, the others 3×3; a 2×2 max-pool after every block but the last (and but the
        stem when it strides); head "gap": global average pool, one fully connected layer to 6
        logits; head "flatten": the last feature map (6×6 for a 96×96 input) flattened into the
        fully connected layer, which keeps where things lie in the sector. A second fully
        connected layer on the same features, through a sigmoid, predicts the quality of each view."""

        def __init__(self):
            super().__init__()
            layers, c_in = [], 1
            for i, c in enumerate(widths):
                k, stride = (stem_kernel, stem_stride) if i == 0 else (3, 1)
                layers += [nn.Conv2d(c_in, c, k, stride=stride, padding=k // 2, bias=False),
                           nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                if i < len(widths) - 1 and not (i == 0 and stride > 1):
                    layers.append(nn.MaxPool2d(2))
                c_in = c
            self.features = nn.Sequential(*layers)
            self.head = head
            if head == "gap":
                self.pool = nn.AdaptiveAvgPool2d(1)
                features = c_in
            elif head == "flatten":
                side = INPUT_SIZE // (stem_stride * 2 ** (len(widths) - 1 - (1 if stem_stride > 1 else 0)))
                self.dropout = nn.Dropout(0.2)
                features = c_in * side * side
            else:
                raise ValueError(f"unknown head {head}")
            self.classifier = nn.Linear(features, len(LABELS))
            self.quality = nn.Linear(features, len(VIEWS))

        def forward(self, x):
            import torch
            x = self.features(x)
            f = torch.flatten(self.pool(x), 1) if self.head == "gap" else self.dropout(torch.flatten(x, 1))
            return self.classifier(f), torch.sigmoid(self.quality(f))

    return ViewNet()


def describe(widths: list[int], stem_kernel: int, stem_stride: int, head: str = "gap") -> str:
    parts = []
    for i, c in enumerate(widths):
        k, stride = (stem_kernel, stem_stride) if i == 0 else (3, 1)
        text = f"Conv{k}×{k}" + (f"/{stride}" if stride > 1 else "") + f"({c})-BN-ReLU"
        if i < len(widths) - 1 and not (i == 0 and stride > 1):
            text += "-MaxPool2"
        parts.append(text)
    tail = (" → GlobalAveragePool → Flatten" if head == "gap" else " → Flatten") + \
        " → Gemm(6) logits, and Gemm(5) → Sigmoid quality"
    return " → ".join(parts) + tail


def to_input(torch, F, x_u8, mean: float, std: float, aug: bool, gen=None):
    """uint8 [B, H, W] -> normalised float [B, 1, 96, 96]. The contract's preprocessing:
    x/255, F.interpolate(size=96, mode="bilinear", align_corners=False, antialias=False),
    (x - mean) / std. Augmentation (training only) acts on the 128×128 frame before it."""
    x = x_u8.unsqueeze(1).float() / 255
    if aug:
        b = x.shape[0]
        # gain and offset jitter (receiver gain / TGC differences), clipped like an 8-bit image
        gain = 1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * 0.12
        offset = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * 0.02
        gamma = torch.exp((torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * 0.15)
        x = (x.clamp_min(1e-6) ** gamma * gain + offset).clamp(0, 1)
        # small shifts (±3 px) with zero fill
        p = 3
        xp = F.pad(x, (p, p, p, p))
        dx = torch.randint(0, 2 * p + 1, (b,), generator=gen)
        dy = torch.randint(0, 2 * p + 1, (b,), generator=gen)
        h, w = x.shape[2], x.shape[3]
        x = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
        # a little extra pixel noise
        x = (x + torch.randn(x.shape, generator=gen) * 0.01 * torch.rand(b, 1, 1, 1, generator=gen)).clamp(0, 1)
    x = F.interpolate(x, size=INPUT_SIZE, mode="bilinear", align_corners=False, antialias=False)
    return ((x - mean) / std).contiguous(memory_format=torch.channels_last)


def evaluate_torch(torch, F, model, images, mean, std, batch=256) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, 6] and predicted quality [N, 5]."""
    model.eval()
    logits, quality = [], []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            xb = to_input(torch, F, torch.from_numpy(images[i:i + batch]), mean, std, aug=False)
            lo, q = model(xb)
            logits.append(lo.numpy())
            quality.append(q.numpy())
    return np.concatenate(logits), np.concatenate(quality)


# ---------------------------------------------------------------- export

def export_onnx(torch, model, path: str, mean: float, std: float, info: dict) -> list[str]:
    import onnx
    from onnx import helper, numpy_helper

    model.eval()
    model.to(memory_format=torch.contiguous_format)
    tmp = path + ".tmp"
    torch.onnx.export(model, (torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE),), tmp, dynamo=False,
                      opset_version=17, input_names=["frame"], output_names=["logits", "quality"],
                      dynamic_axes={"frame": {0: "N"}, "logits": {0: "N"}, "quality": {0: "N"}},
                      do_constant_folding=True, export_params=True)
    m = onnx.load(tmp)
    os.remove(tmp)
    g = m.graph
    # The exporter turns a folded initializer shared by two nodes into Identity: give each its own
    # copy. Any other Identity (e.g. an eval-mode Dropout) is bypassed.
    inits = {t.name: t for t in g.initializer}
    outputs = {o.name for o in g.output}
    for node in list(g.node):
        if node.op_type != "Identity":
            continue
        src, dst = node.input[0], node.output[0]
        if src in inits:
            arr = numpy_helper.to_array(inits[src])
            g.initializer.append(numpy_helper.from_array(arr.copy(), dst))
        elif dst not in outputs:
            for other in g.node:
                for j, name in enumerate(other.input):
                    if name == dst:
                        other.input[j] = src
        else:
            continue
        g.node.remove(node)
    # Readable initializer names.
    init_names = {t.name for t in g.initializer}
    rename, k = {}, 0
    for node in g.node:
        if node.op_type == "Conv":
            k += 1
            for j, suffix in ((1, "weight"), (2, "bias")):
                if j < len(node.input) and node.input[j] in init_names and node.input[j] not in rename:
                    rename[node.input[j]] = f"conv{k}.{suffix}"
    for t in g.initializer:
        if t.name in rename:
            t.name = rename[t.name]
    for node in g.node:
        for j, name in enumerate(node.input):
            if name in rename:
                node.input[j] = rename[name]
    used = {i for n in g.node for i in n.input}
    for t in list(g.initializer):
        if t.name not in used:
            g.initializer.remove(t)

    ops = sorted({n.op_type for n in g.node})
    bad = [op for op in ops if op not in ALLOWED_OPS]
    if bad:
        raise SystemExit(f"exported graph uses ops outside the Swift runtime's set: {bad} (all: {ops})")
    if "Softmax" in ops:
        raise SystemExit("the graph must output logits, not Softmax")
    if [i.name for i in g.input] != ["frame"] or [o.name for o in g.output] != ["logits", "quality"]:
        raise SystemExit(f"unexpected graph inputs/outputs {[i.name for i in g.input]} -> {[o.name for o in g.output]}")
    opsets = {o.domain: o.version for o in m.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != 17 or len(opsets) != 1:
        raise SystemExit(f"unexpected opset imports {opsets}")

    meta = {
        "sono.labels": ",".join(LABELS),
        "sono.quality.labels": ",".join(VIEWS),
        "sono.input.size": str(INPUT_SIZE),
        "sono.normalize.mean": repr(mean),
        "sono.normalize.std": repr(std),
        "sono.resize": "bilinear-half-pixel",
        "sono.model.version": MODEL_VERSION,
        "sono.training": json.dumps(info, sort_keys=True),
    }
    del m.metadata_props[:]
    for key, value in meta.items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    m.producer_name = "sono tools/vision/train.py"
    m.producer_version = MODEL_VERSION
    m.doc_string = ("Sono view classifier: 8-bit echo frame -> logits over " + ",".join(LABELS)
                    + " and the predicted quality of each of " + ",".join(VIEWS) + ". See models/view-classifier.md.")
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    return ops


# ---------------------------------------------------------------- metrics and card

def confusion(y_true, y_pred) -> np.ndarray:
    c = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        c[t, p] += 1
    return c


def per_class(c: np.ndarray) -> list[tuple[str, int, float, float]]:
    rows = []
    for i, name in enumerate(LABELS):
        tp = c[i, i]
        prec = tp / c[:, i].sum() if c[:, i].sum() else float("nan")
        rec = tp / c[i, :].sum() if c[i, :].sum() else float("nan")
        rows.append((name, int(c[i, :].sum()), prec, rec))
    return rows


def quality_metrics(q_true: np.ndarray, q_pred: np.ndarray) -> dict:
    """Quality against the simulator's truth, over (frame, view) pairs.

    MAE over all pairs, and over the pairs that matter (true or predicted q ≥ 0.1: a frame's
    other views, at q = 0 on both sides, would flatter it); calibration in bins of predicted q;
    precision of "diagnostic" (predicted q ≥ 0.7: the share truly ≥ 0.7) and its recall."""
    t, p = q_true.ravel(), q_pred.ravel()
    relevant = (t >= 0.1) | (p >= 0.1)
    called = p >= DIAGNOSTIC
    truly = t >= DIAGNOSTIC
    bins = []
    for k in range(10):
        lo, hi = k / 10, (k + 1) / 10
        sel = (p >= lo) & ((p < hi) if k < 9 else (p <= hi))
        n = int(sel.sum())
        bins.append({"lo": lo, "hi": hi, "n": n,
                     "pred": float(p[sel].mean()) if n else float("nan"),
                     "true": float(t[sel].mean()) if n else float("nan"),
                     "mae": float(np.abs(p[sel] - t[sel]).mean()) if n else float("nan")})
    return {
        "mae_all": float(np.abs(p - t).mean()),
        "mae": float(np.abs(p[relevant] - t[relevant]).mean()), "n_relevant": int(relevant.sum()),
        "called": int(called.sum()), "called_true": int((called & truly).sum()),
        "precision": float((called & truly).sum() / called.sum()) if called.any() else float("nan"),
        "recall": float((called & truly).sum() / truly.sum()) if truly.any() else float("nan"),
        "called_below_06": int((called & (t < 0.6)).sum()),
        "bins": bins,
    }


def view_metrics(y_hard: np.ndarray, q_true: np.ndarray, logits: np.ndarray) -> dict:
    pred = logits.argmax(1)
    clear = clear_mask(q_true)
    return {"pred": pred, "acc_all": float((pred == y_hard).mean()), "n": len(y_hard),
            "clear_n": int(clear.sum()), "clear_correct": int((pred[clear] == y_hard[clear]).sum()),
            "clear_acc": float((pred[clear] == y_hard[clear]).mean()),
            "confusion": confusion(y_hard[clear], pred[clear])}


def calibration_png(path: str, q_true: np.ndarray, q_pred: np.ndarray, title: str) -> None:
    """Predicted against true quality: every (frame, view) pair with either ≥ 0.05 as a dot,
    the binned means as a line, the identity and the diagnostic line (PIL only)."""
    from PIL import ImageDraw
    size, pad = 520, 56
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    span = size - 2 * pad
    xy = lambda x, y: (pad + x * span, size - pad - y * span)
    d.rectangle([xy(0, 1), xy(1, 0)], outline="black")
    for k in range(11):
        v = k / 10
        d.line([xy(v, 0), (xy(v, 0)[0], xy(v, 0)[1] + 4)], fill="black")
        d.line([xy(0, v), (xy(0, v)[0] - 4, xy(0, v)[1])], fill="black")
        if k % 2 == 0:
            d.text((xy(v, 0)[0] - 8, xy(v, 0)[1] + 8), f"{v:.1f}", fill="black")
            d.text((xy(0, v)[0] - 34, xy(0, v)[1] - 6), f"{v:.1f}", fill="black")
    t, p = q_true.ravel(), q_pred.ravel()
    sel = (t >= 0.05) | (p >= 0.05)
    for a, b in zip(p[sel], t[sel]):
        x, y = xy(float(a), float(b))
        d.point((x, y), fill=(150, 170, 220))
    d.line([xy(0, 0), xy(1, 1)], fill=(120, 120, 120))
    d.line([xy(DIAGNOSTIC, 0), xy(DIAGNOSTIC, 1)], fill=(200, 60, 60))
    d.line([xy(0, DIAGNOSTIC), xy(1, DIAGNOSTIC)], fill=(200, 60, 60))
    m = quality_metrics(q_true, q_pred)
    pts = [xy(b["pred"], b["true"]) for b in m["bins"] if b["n"] >= 10]
    if len(pts) > 1:
        d.line(pts, fill=(20, 40, 160), width=3)
    for pt in pts:
        d.ellipse([pt[0] - 4, pt[1] - 4, pt[0] + 4, pt[1] + 4], fill=(20, 40, 160))
    d.text((pad, 14), title, fill="black")
    d.text((pad, 30), f"MAE {m['mae']:.3f} (pairs with q >= 0.1); precision at predicted >= 0.7: {m['precision']:.4f}",
           fill="black")
    d.text((size // 2 - 60, size - 22), "predicted quality", fill="black")
    d.text((4, pad - 18), "true quality", fill="black")
    img.save(path)


def confusion_md(c: np.ndarray) -> str:
    head = "| true \\ predicted | " + " | ".join(LABELS) + " |\n|---|" + "---:|" * len(LABELS) + "\n"
    return head + "".join(f"| **{LABELS[i]}** | " + " | ".join(str(v) for v in c[i]) + " |\n" for i in range(len(LABELS)))


def write_card(path: str, r: dict) -> None:
    t, sh = r["results"]["test"], r["results"]["shipped"]
    dist = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())
    pct = lambda v: f"{v * 100:.2f} %"
    met = lambda ok: "met" if ok else "**not met**"

    def prc(c):
        return "| view | clear frames | precision | recall |\n|---|---:|---:|---:|\n" + "".join(
            f"| {n} | {k} | {p:.4f} | {q:.4f} |\n" for n, k, p, q in per_class(np.array(c)))

    def calibration(qm):
        return ("| predicted q | pairs | mean predicted | mean true | MAE |\n|---|---:|---:|---:|---:|\n" + "".join(
            f"| {b['lo']:.1f} – {b['hi']:.1f} | {b['n']} | {b['pred']:.3f} | {b['true']:.3f} | {b['mae']:.3f} |\n"
            for b in qm["bins"] if b["n"]))

    def per_patient(pp):
        return "| patient | clear frames | clear accuracy | quality MAE (all pairs) |\n|---|---:|---:|---:|\n" + "".join(
            f"| {p} | {n} | {a:.4f} | {m:.4f} |\n" for p, (n, a, m) in sorted(pp.items()))

    def block(name, res):
        v, q = res["view"], res["quality"]
        return f"""View accuracy on clear frames **{pct(v['clear_acc'])}** ({v['clear_correct']}/{v['clear_n']}; on every
frame against the hard label, unscored band included: {pct(v['acc_all'])} of {v['n']}).
Quality MAE **{q['mae']:.4f}** over the {q['n_relevant']} (frame, view) pairs where true or predicted q ≥ 0.1
({q['mae_all']:.4f} over all pairs). Called diagnostic (predicted q ≥ 0.7): {q['called']} pairs, of which
**{q['called_true']} truly are ({pct(q['precision']) if q['called'] else 'n/a'})**; {q['called_below_06']} have true q < 0.6.
Recall of diagnostic pairs: {pct(q['recall'])}.

Calibration (every (frame, view) pair, binned by predicted q):

{calibration(q)}
{prc(v['confusion'])}
Confusion on clear frames (rows: simulator truth, columns: prediction):

{confusion_md(np.array(v['confusion']))}
{per_patient(res['per_patient'])}"""

    text = f"""# Model card: Sono view classifier (`models/view-classifier.onnx`)

Version {r['version']}; trained {r['date']} by `tools/vision/train.py` (torch {r['torch']}, CPU,
{r['threads']} threads, seed {r['seed']}). From one 8-bit ultrasound frame of Sono's virtual patient it
predicts (1) the standard view the frame shows — **PLAX, PSAX, A4C, A2C, SC4C** or **OTHER** (logits) —
and (2) the frame's **diagnostic quality** as each of the five views (`quality`, 0…1, after a sigmoid in
the graph): the signal the planner climbs and acquires on (diagnostic at q ≥ 0.7).

Held out: {r['n_test_patients']} random patients `test-…` (make_patients.py --seed {r['patient_seed'] + 2}, patient
seeds 300000+), which no training or validation frame comes from, and the 5 shipped patients.

| target (held-out random patients) | measured | |
|---|---:|---|
| view accuracy on clear frames ≥ 99 % | {pct(t['view']['clear_acc'])} | {met(t['view']['clear_acc'] >= 0.99)} |
| quality MAE ≤ 0.06 (pairs with true or predicted q ≥ 0.1) | {t['quality']['mae']:.4f} | {met(t['quality']['mae'] <= 0.06)} |
| of pairs called diagnostic (predicted q ≥ 0.7), truly diagnostic ≥ 99 % | {pct(t['quality']['precision'])} | {met(t['quality']['precision'] >= 0.99)} |

The calibration plot: `view-classifier-calibration.png` (held-out random patients) and
`view-classifier-calibration-shipped.png` (shipped patients); dots are (frame, view) pairs, the dark
line the binned means, red the diagnostic line at 0.7.

## Intended use and limits

- Trained and tested on **simulated** frames only (SonoSim's virtual patient, `sonoctl sim dataset`,
  128×128, 80° sector, 160 mm deep). It has never seen a real echo; do not use it on one.
- One frame at a time; the runtime smooths both outputs over time (`SonoVision.TemporalSmoother`).
- Truth is SonoSim's true quality q (docs/VIRTUAL-PATIENT.md, "True view quality"): a smooth function
  of the probe's error from the view's canonical pose (2^−e², e² = (d/12 mm)² + (β/12°)² + (ρ/15°)²),
  the coupling (contact force) and the acoustic window (ribs and lung). The hard label is the best view
  with q ≥ 0.5, else OTHER. A frame is **clear** when its best q ≥ 0.5 or every q < 0.2; frames in between
  are genuinely ambiguous as a class (not as a quality) and view accuracy is scored on clear frames only.
- The quality head is trained with a binary cross-entropy against the true quality as a soft target,
  an overestimate weighing {r['over_weight']:g}× an underestimate, so it leans low: a frame it calls
  diagnostic nearly always is.

## Data

Poses from `TrainingPoseSampler` (≈ 60 % around a standard view with an error spread evenly over
0…1.8 tolerance units, i.e. true q from 1 to ≈ 0.1; ≈ 25 % 1.3–3× the tolerance away; ≈ 15 % anywhere
on the chest; forces 3–10 N, 5 % below 1.5 N; random cardiac and breathing phase). Training's class
target: the best view when its q ≥ {TRAIN_PRESENT}, else OTHER (the middle of the unscored band).

| split | patients | frames | pose seed | class targets / hard labels |
|---|---|---:|---:|---|
| train | {r['n_train_patients']} random patients `train-…` (make_patients.py --seed {r['patient_seed']}, seeds 100000+) | {r['n_train']} | {r['train_seed']} | {dist(r['dist_train'])} |
| validation (epoch choice) | {r['n_val_patients']} random patients `val-…` (--seed {r['patient_seed'] + 1}, seeds 200000+) | {r['n_val']} | {r['val_seed']} | {dist(r['dist_val'])} |
| **test (held out)** | {r['n_test_patients']} random patients `test-…` (--seed {r['patient_seed'] + 2}, seeds 300000+) | {t['view']['n']} | {r['test_seed']} | {dist(t['hard'])} |
| shipped (held out) | the 5 patients of hardware/patients/ | {sh['view']['n']} | {r['test_seed']} | {dist(sh['hard'])} |

Random patients sample every key of the patient file (docs/VIRTUAL-PATIENT.md, "Patient files")
from broad adult ranges that enclose the shipped patients with a margin (`SAMPLING` in
make_patients.py). Augmentation (training only, on the 128×128 frame before the resize): gain
×(1 ± 0.12), offset ± 0.02, gamma e^(±0.15), shift ± 3 px with zero fill, light Gaussian noise.

## Input and outputs (what the Swift runtime implements)

- Input `frame`: float32 `[N, 1, 96, 96]` (N = 1 in Sono; the batch dimension is symbolic).
- Output `logits`: float32 `[N, 6]` in the order of `sono.labels`; no softmax in the graph.
- Output `quality`: float32 `[N, 5]` in the order of `sono.quality.labels`, after a Sigmoid.
- Preprocessing: `v = p / 255`; bilinear resize to 96 × 96 with half-pixel centres and no antialias
  (`torch.nn.functional.interpolate(v, size=96, mode="bilinear", align_corners=False, antialias=False)`;
  the per-axis formula is in models/README.md); `frame = (r − mean) / std` with mean = {r['mean']!r},
  std = {r['std']!r}. The numpy reference is `preprocess()` in tools/vision/parity_reference.py.
- `metadata_props`:

| key | value |
|---|---|
""" + "".join(f"| `{k}` | `{v}` |\n" for k, v in r["metadata"].items() if k != "sono.training") + f"""| `sono.training` | JSON: seeds, data sizes, epochs, architecture |

## Architecture and training

{r['arch']} — {r['params']:,} parameters, file **{r['size_bytes']:,} bytes** ({r['size_bytes'] / 1e6:.2f} MB).
ONNX opset 17; ops: **{', '.join(r['ops'])}** (BatchNormalization folded into Conv by the exporter).
Loss: cross-entropy (label smoothing {r['smoothing']}) + {r['quality_weight']:g} × weighted soft-target binary cross-entropy on quality.
Trained {r['epochs']} epochs (AdamW, one-cycle LR max {r['lr']}, batch {r['batch']}); kept epoch {r['best_epoch']}
(validation: clear accuracy {pct(r['val_view']['clear_acc'])}, quality MAE {r['val_quality']['mae']:.4f}, precision
{pct(r['val_quality']['precision'])}). onnxruntime vs torch on {r['parity_n']} validation frames: max |Δ| =
{r['parity_max']:.2e} over both outputs.

## Held-out random patients (onnxruntime, numpy preprocessing)

{block('test', t)}
## Shipped patients (onnxruntime, numpy preprocessing)

{block('shipped', sh)}
## Latency

onnxruntime {r['ort_version']}, CPUExecutionProvider, `intra_op_num_threads=1`, one frame
`[1, 1, 96, 96]` per `run` (preprocessing not included), {r['bench']['frames']} frames after
{r['bench']['warmup']} warm-up, on this machine ({r['cpu']}):
**p50 {r['bench']['p50_us']} µs, p99 {r['bench']['p99_us']} µs** (mean {r['bench']['mean_us']} µs).
`python3 tools/vision/ort_bench.py --model models/view-classifier.onnx` repeats it.

## Reproduce

```sh
cd "$(git rev-parse --show-toplevel)"
swift build -c release --product sonoctl --scratch-path .build-vision
python3 -m venv .venv-train
.venv-train/bin/pip install -r tools/vision/requirements-train.txt \\
    --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
{r['command']}
```

Training took {r['train_minutes']:.1f} min ({r['total_minutes']:.1f} min in all, including rendering
and evaluation) on {r['threads']} CPU threads. The seeds fix the patients, poses, frames and the
initialisation; torch's CPU kernels may still differ in the last bits across machines.
"""
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sonoctl", default=os.path.join(REPO, ".build-vision/release/sonoctl"))
    ap.add_argument("--work", default="/tmp/sono-vision", help="patients and data sets (outside the repo)")
    ap.add_argument("--out", default=os.path.join(REPO, "models"))
    ap.add_argument("--train-patients", type=int, default=240)
    ap.add_argument("--val-patients", type=int, default=10)
    ap.add_argument("--frames", type=int, default=150, help="frames per training/validation patient")
    ap.add_argument("--test-patients", type=int, default=20, help="held-out random patients (seeds 300000+)")
    ap.add_argument("--test-frames", type=int, default=100, help="frames per held-out random patient")
    ap.add_argument("--shipped-frames", type=int, default=400, help="frames per shipped patient")
    ap.add_argument("--patient-seed", type=int, default=7)
    ap.add_argument("--train-seed", type=int, default=11)
    ap.add_argument("--val-seed", type=int, default=12)
    ap.add_argument("--test-seed", type=int, default=2024)
    ap.add_argument("--seed", type=int, default=1, help="torch seed")
    ap.add_argument("--epochs", type=int, default=16)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--smoothing", type=float, default=0.05)
    ap.add_argument("--quality-weight", type=float, default=2.0, help="weight of the quality loss beside the view's")
    ap.add_argument("--over-weight", type=float, default=2.0,
                    help="an overestimate of quality costs this many times an underestimate (precision of 'diagnostic')")
    ap.add_argument("--widths", default="16,32,64,128,128")
    ap.add_argument("--head", choices=["gap", "flatten"], default="gap")
    ap.add_argument("--stem-kernel", type=int, default=5)
    ap.add_argument("--stem-stride", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=30, help="stop training after this long")
    args = ap.parse_args(argv)

    t_start = time.time()
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    sonoctl = os.path.abspath(args.sonoctl)
    if not os.access(sonoctl, os.X_OK):
        raise SystemExit(f"no sonoctl at {sonoctl}: swift build -c release --product sonoctl --scratch-path .build-vision")
    work = os.path.abspath(args.work)
    shipped = os.path.join(REPO, "hardware/patients")

    # 1. patients: training, validation and held-out random patients from disjoint seeds
    ptrain, pval = os.path.join(work, "patients/train"), os.path.join(work, "patients/val")
    ptest = os.path.join(work, "patients/test")
    for folder, n, seed, base, prefix in ((ptrain, args.train_patients, args.patient_seed, 100000, "train"),
                                          (pval, args.val_patients, args.patient_seed + 1, 200000, "val"),
                                          (ptest, args.test_patients, args.patient_seed + 2, 300000, "test")):
        shutil.rmtree(folder, ignore_errors=True)
        make_patients.main(["--count", str(n), "--seed", str(seed), "--seed-base", str(base),
                            "--prefix", prefix, "--out", folder, "--validate", sonoctl])
    shipped_seeds = set()
    for f in os.listdir(shipped):
        for line in open(os.path.join(shipped, f)):
            if line.startswith("seed"):
                shipped_seeds.add(int(line.split("=")[1].split("#")[0]))
    assert shipped_seeds.isdisjoint(range(100000, 300000 + args.test_patients)), "patient seeds collide"

    # 2. data sets
    dtrain = dataset(sonoctl, ptrain, args.frames, args.train_seed, os.path.join(work, "data/train"))
    dval = dataset(sonoctl, pval, args.frames, args.val_seed, os.path.join(work, "data/val"))
    dtest = dataset(sonoctl, ptest, args.test_frames, args.test_seed, os.path.join(work, "data/test"))
    dship = dataset(sonoctl, shipped, args.shipped_frames, args.test_seed, os.path.join(work, "data/shipped"))
    xtr, _, qtr, _, _ = load(dtrain)
    xva, yva, qva, _, _ = load(dval)
    xte, yte, qte, pte, fte = load(dtest)
    xsh, ysh, qsh, psh, _ = load(dship)
    ytr = train_targets(qtr)
    log(f"frames: train {len(xtr)}, val {len(xva)}, test {len(xte)}, shipped {len(xsh)}")
    counts = lambda y: {LABELS[i]: int((y == i).sum()) for i in range(len(LABELS))}
    log(f"train targets {counts(ytr)}")

    # normalisation constants from the training frames after the resize (rounded: they are text in the model)
    with torch.no_grad():
        sample = torch.from_numpy(xtr[:: max(1, len(xtr) // 2000)])
        r = F.interpolate(sample.unsqueeze(1).float() / 255, size=INPUT_SIZE, mode="bilinear",
                          align_corners=False, antialias=False)
        mean, std = round(float(r.mean()), 4), round(float(r.std()), 4)
    log(f"normalisation mean {mean} std {std}")

    # 3. train: view cross-entropy + quality regression (weighted soft-target BCE: overestimates cost more)
    widths = [int(w) for w in args.widths.split(",")]
    model = build_model(widths, args.stem_kernel, args.stem_stride, args.head).to(memory_format=torch.channels_last)  # faster on CPU
    params = sum(p.numel() for p in model.parameters())
    log(f"model {widths}: {params} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.smoothing)

    def quality_loss(pred, true):
        # Binary cross-entropy with the true quality as a soft target: its gradient at the logit
        # is (pred − true), which an L1 or L2 loss through the sigmoid loses once it saturates
        # (most pairs are a frame's other views, at q = 0). Overestimates weigh more.
        weight = torch.where(pred > true, args.over_weight, 1.0).detach()
        return F.binary_cross_entropy(pred, true, weight=weight)

    gen = torch.Generator().manual_seed(args.seed)
    xtr_t, ytr_t, qtr_t = torch.from_numpy(xtr), torch.from_numpy(ytr), torch.from_numpy(qtr)
    best = (-1e9, -1, None, None)
    t_train = time.time()
    epochs_run = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total, correct, loss_sum, qloss_sum = 0, 0, 0.0, 0.0
        t0 = time.time()
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            xb = to_input(torch, F, xtr_t[idx], mean, std, aug=True, gen=gen)
            yb = ytr_t[idx]
            logits, quality = model(xb)
            qloss = quality_loss(quality, qtr_t[idx])
            loss = loss_fn(logits, yb) + args.quality_weight * qloss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            qloss_sum += qloss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            total += len(idx)
        vlog, vq = evaluate_torch(torch, F, model, xva, mean, std)
        vm, vqm = view_metrics(yva, qva, vlog), quality_metrics(qva, vq)
        # Epoch choice: clear-frame accuracy, quality error and wrongly called diagnostic frames.
        score = vm["clear_acc"] - vqm["mae"] - (1 - (vqm["precision"] if vqm["called"] else 0))
        epochs_run = epoch
        log(f"epoch {epoch:2d}: loss {loss_sum / total:.4f} (quality {qloss_sum / total:.4f}) train acc "
            f"{correct / total:.4f} | val clear acc {vm['clear_acc']:.4f} quality MAE {vqm['mae']:.4f} "
            f"precision {vqm['precision']:.4f} ({vqm['called']} called) ({time.time() - t0:.0f} s)")
        if score >= best[0]:
            best = (score, epoch, {k: v.clone() for k, v in model.state_dict().items()}, (vm, vqm))
        if (time.time() - t_train) / 60 > args.max_minutes and epoch < args.epochs:
            log(f"stopping after epoch {epoch}: --max-minutes {args.max_minutes} reached")
            break
    train_minutes = (time.time() - t_train) / 60
    _, best_epoch, state, (val_view, val_quality) = best
    model.load_state_dict(state)
    model.eval()
    log(f"best epoch {best_epoch}: val clear acc {val_view['clear_acc']:.4f}, quality MAE {val_quality['mae']:.4f}")

    # 4. export
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "view-classifier.onnx")
    command = ".venv-train/bin/python tools/vision/train.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    info = {"train_patients": args.train_patients, "val_patients": args.val_patients, "frames": args.frames,
            "test_patients": args.test_patients, "test_frames": args.test_frames,
            "shipped_frames": args.shipped_frames, "patient_seed": args.patient_seed, "train_seed": args.train_seed,
            "val_seed": args.val_seed, "test_seed": args.test_seed, "torch_seed": args.seed,
            "epochs": epochs_run, "best_epoch": best_epoch, "widths": widths,
            "stem_kernel": args.stem_kernel, "stem_stride": args.stem_stride, "head": args.head,
            "quality_weight": args.quality_weight, "over_weight": args.over_weight}
    ops = export_onnx(torch, model, onnx_path, mean, std, info)
    log(f"exported {onnx_path}: ops {ops}")

    # onnxruntime vs torch (same torch preprocessing) on validation frames, both outputs
    import onnxruntime as ort
    session = make_session(onnx_path, threads=args.threads)
    n_par = min(256, len(xva))
    with torch.no_grad():
        xin = to_input(torch, F, torch.from_numpy(xva[:n_par]), mean, std, aug=False)
        ref_logits, ref_quality = (t.numpy() for t in model(xin))
    got_logits, got_quality = session.run(["logits", "quality"], {"frame": np.ascontiguousarray(xin.numpy())})
    parity_max = float(max(np.abs(ref_logits - got_logits).max(), np.abs(ref_quality - got_quality).max()))
    log(f"onnxruntime vs torch: max |d| {parity_max:.2e} (logits and quality)")
    if parity_max > 1e-4:
        raise SystemExit(f"onnxruntime disagrees with torch: {parity_max}")
    # numpy preprocessing vs torch's
    pre_max = float(np.abs(np.concatenate([preprocess(x, INPUT_SIZE, mean, std) for x in xva[:64]]) -
                           xin.numpy()[:64]).max())
    log(f"numpy vs torch preprocessing: max |d| {pre_max:.2e}")
    if pre_max > 1e-5:
        raise SystemExit(f"numpy preprocessing disagrees with torch: {pre_max}")

    # 5. held-out sets through the deployed path (numpy preprocessing, onnxruntime)
    def deployed(images):
        outs = [session.run(["logits", "quality"], {"frame": preprocess(x, INPUT_SIZE, mean, std)}) for x in images]
        return np.concatenate([o[0] for o in outs]), np.concatenate([o[1] for o in outs])

    results = {}
    for name, x, y, q, pats in (("test", xte, yte, qte, pte), ("shipped", xsh, ysh, qsh, psh)):
        lo, qp = deployed(x)
        vm, qm = view_metrics(y, q, lo), quality_metrics(q, qp)
        per_patient = {}
        for pt in sorted(set(pats)):
            mask = np.array([a == pt for a in pats]) & clear_mask(q)
            per_patient[pt] = (int(mask.sum()), float((vm["pred"][mask] == y[mask]).mean()) if mask.any() else float("nan"),
                               float(np.abs(qp[np.array([a == pt for a in pats])] - q[np.array([a == pt for a in pats])]).mean()))
        results[name] = {"view": vm, "quality": qm, "per_patient": per_patient, "hard": counts(y)}
        log(f"{name.upper()}: clear-frame accuracy {vm['clear_acc']:.4f} ({vm['clear_correct']}/{vm['clear_n']}); "
            f"quality MAE {qm['mae']:.4f} (all pairs {qm['mae_all']:.4f}); precision at q >= 0.7 "
            f"{qm['precision']:.4f} ({qm['called_true']}/{qm['called']}), recall {qm['recall']:.4f}")
        calibration_png(os.path.join(args.out, f"view-classifier-calibration{'' if name == 'test' else '-shipped'}.png"),
                        q, qp, f"{'held-out random patients' if name == 'test' else 'shipped patients'}: "
                        f"predicted vs true quality")
    wrong = np.nonzero((results["test"]["view"]["pred"] != yte) & clear_mask(qte))[0]
    with open(os.path.join(work, "test-errors.csv"), "w") as f:
        f.write("file,truth,predicted,best_q\n" + "".join(
            f"{fte[i]},{LABELS[yte[i]]},{LABELS[results['test']['view']['pred'][i]]},{qte[i].max():.3f}\n" for i in wrong))
    log(f"misclassified clear frames listed in {os.path.join(work, 'test-errors.csv')}")

    import ort_bench
    bench = ort_bench.bench(onnx_path, frames=2000, warmup=200)
    log(f"latency {bench}")

    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import onnx
    metadata = {p.key: p.value for p in onnx.load(onnx_path).metadata_props}
    arch = describe(widths, args.stem_kernel, args.stem_stride, args.head)
    card = {
        "version": MODEL_VERSION, "date": datetime.date.today().isoformat(), "torch": torch.__version__,
        "ort_version": ort.__version__, "threads": args.threads, "seed": args.seed,
        "results": results, "n_train_patients": args.train_patients, "n_val_patients": args.val_patients,
        "n_test_patients": args.test_patients, "n_train": len(ytr), "n_val": len(yva), "patient_seed": args.patient_seed,
        "train_seed": args.train_seed, "val_seed": args.val_seed, "test_seed": args.test_seed,
        "dist_train": counts(ytr), "dist_val": counts(yva),
        "mean": mean, "std": std, "metadata": metadata, "arch": arch, "params": params,
        "size_bytes": os.path.getsize(onnx_path), "ops": ops, "epochs": epochs_run, "lr": args.lr,
        "batch": args.batch, "smoothing": args.smoothing, "quality_weight": args.quality_weight,
        "over_weight": args.over_weight, "best_epoch": best_epoch, "val_view": val_view, "val_quality": val_quality,
        "parity_n": n_par, "parity_max": parity_max,
        "bench": bench, "cpu": cpu, "command": command, "train_minutes": train_minutes,
        "total_minutes": (time.time() - t_start) / 60,
    }
    write_card(os.path.join(args.out, "view-classifier.md"), card)
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(card, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    log(f"wrote {os.path.join(args.out, 'view-classifier.md')}; total {card['total_minutes']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
