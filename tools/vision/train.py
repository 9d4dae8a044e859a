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
INPUT_SIZE = 96
MODEL_VERSION = "1"
ALLOWED_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
               "Gemm", "MatMul", "Add", "Flatten", "Reshape"}


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


def load(folder: str) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    images, labels, patients, files = [], [], [], []
    with open(os.path.join(folder, "labels.csv")) as f:
        for row in csv.DictReader(f):
            im = np.asarray(Image.open(os.path.join(folder, row["file"])), dtype=np.uint8)
            assert im.ndim == 2, row["file"]
            images.append(im)
            labels.append(LABELS.index(row["view"]))
            patients.append(row["patient"])
            files.append(row["file"])
    return np.stack(images), np.array(labels, dtype=np.int64), patients, files


# ---------------------------------------------------------------- model

def build_model(widths: list[int], stem_kernel: int = 3, stem_stride: int = 1, head: str = "gap"):
    import torch.nn as nn

    class ViewNet(nn.Module):
        """Conv-BN-ReLU blocks: the first (stem) conv stem_kernel×stem_kernel with stride
        stem_stride, the others 3×3; a 2×2 max-pool after every block but the last (and but the
        stem when it strides); head "gap": global average pool, one fully connected layer to 6
        logits; head "flatten": the last feature map (6×6 for a 96×96 input) flattened into the
        fully connected layer, which keeps where things lie in the sector."""

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
                self.classifier = nn.Linear(c_in, len(LABELS))
            elif head == "flatten":
                side = INPUT_SIZE // (stem_stride * 2 ** (len(widths) - 1 - (1 if stem_stride > 1 else 0)))
                self.dropout = nn.Dropout(0.2)
                self.classifier = nn.Linear(c_in * side * side, len(LABELS))
            else:
                raise ValueError(f"unknown head {head}")

        def forward(self, x):
            import torch
            x = self.features(x)
            if self.head == "gap":
                return self.classifier(torch.flatten(self.pool(x), 1))
            return self.classifier(self.dropout(torch.flatten(x, 1)))

    return ViewNet()


def describe(widths: list[int], stem_kernel: int, stem_stride: int, head: str = "gap") -> str:
    parts = []
    for i, c in enumerate(widths):
        k, stride = (stem_kernel, stem_stride) if i == 0 else (3, 1)
        text = f"Conv{k}×{k}" + (f"/{stride}" if stride > 1 else "") + f"({c})-BN-ReLU"
        if i < len(widths) - 1 and not (i == 0 and stride > 1):
            text += "-MaxPool2"
        parts.append(text)
    tail = " → GlobalAveragePool → Flatten → Gemm(6)" if head == "gap" else " → Flatten → Gemm(6)"
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


def evaluate_torch(torch, F, model, images, mean, std, batch=256) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            xb = to_input(torch, F, torch.from_numpy(images[i:i + batch]), mean, std, aug=False)
            out.append(model(xb).numpy())
    return np.concatenate(out)


# ---------------------------------------------------------------- export

def export_onnx(torch, model, path: str, mean: float, std: float, info: dict) -> list[str]:
    import onnx
    from onnx import helper, numpy_helper

    model.eval()
    model.to(memory_format=torch.contiguous_format)
    tmp = path + ".tmp"
    torch.onnx.export(model, (torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE),), tmp, dynamo=False,
                      opset_version=17, input_names=["frame"], output_names=["logits"],
                      dynamic_axes={"frame": {0: "N"}, "logits": {0: "N"}},
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
    if [i.name for i in g.input] != ["frame"] or [o.name for o in g.output] != ["logits"]:
        raise SystemExit(f"unexpected graph inputs/outputs {[i.name for i in g.input]} -> {[o.name for o in g.output]}")
    opsets = {o.domain: o.version for o in m.opset_import}
    if opsets.get("", opsets.get("ai.onnx")) != 17 or len(opsets) != 1:
        raise SystemExit(f"unexpected opset imports {opsets}")

    meta = {
        "sono.labels": ",".join(LABELS),
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
    m.doc_string = "Sono view classifier: 8-bit echo frame -> logits over " + ",".join(LABELS) + ". See models/view-classifier.md."
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


BANDS = [(0, 0.85), (0.85, 1.0), (1.0, 1.15), (1.15, 1.5), (1.5, 2.0), (2.0, float("inf"))]


def error_bands(folder: str, files: list[str], wrong: np.ndarray) -> dict:
    """Frames and errors per band of normalised distance to the nearest canonical pose."""
    views = [v.lower() for v in LABELS if v != "OTHER"]
    dist = {}
    with open(os.path.join(folder, "labels.csv")) as f:
        for row in csv.DictReader(f):
            dist[row["file"]] = min(max(float(row[v + "_mm"]) / 12, float(row[v + "_beam_deg"]) / 12,
                                        abs(float(row[v + "_plane_deg"])) / 15) for v in views)
    out = {}
    for lo, hi in BANDS:
        key = f"{lo:g} – {hi:g}" if hi != float("inf") else f"≥ {lo:g}"
        sel = [i for i, name in enumerate(files) if lo <= dist[name] < hi]
        out[key] = (len(sel), int(sum(bool(wrong[i]) for i in sel)))
    return out


def confusion_md(c: np.ndarray) -> str:
    head = "| true \\ predicted | " + " | ".join(LABELS) + " |\n|---|" + "---:|" * len(LABELS) + "\n"
    return head + "".join(f"| **{LABELS[i]}** | " + " | ".join(str(v) for v in c[i]) + " |\n" for i in range(len(LABELS)))


def write_card(path: str, r: dict) -> None:
    c = np.array(r["confusion"])
    prc = "| view | frames | precision | recall |\n|---|---:|---:|---:|\n" + "".join(
        f"| {n} | {k} | {p:.4f} | {q:.4f} |\n" for n, k, p, q in per_class(c))
    per_patient = "| patient | frames | accuracy |\n|---|---:|---:|\n" + "".join(
        f"| {p} | {n} | {a:.4f} |\n" for p, (n, a) in sorted(r["per_patient"].items()))
    dist = lambda d: ", ".join(f"{k} {v}" for k, v in d.items())
    text = f"""# Model card: Sono view classifier (`models/view-classifier.onnx`)

Version {r['version']}; trained {r['date']} by `tools/vision/train.py` (torch {r['torch']}, CPU,
{r['threads']} threads, seed {r['seed']}). Classifies one 8-bit ultrasound frame of Sono's virtual
patient into the standard view it shows: **PLAX, PSAX, A4C, A2C, SC4C** or **OTHER**.

**Held-out frame accuracy: {r['test_acc'] * 100:.2f} %** ({r['test_correct']}/{r['test_n']} frames of the 5 shipped
patients, which no training or validation frame comes from).
""" + (f"""
**Below the 98 % target.** Of the {r['test_n'] - r['test_correct']} errors, {sum(r['confusion'][5][:5])} are OTHER frames called a view,
{sum(row[5] for row in r['confusion'][:5])} are view frames called OTHER and the rest one view called another.
""" if r["test_acc"] < 0.98 else "") + f"""
## Intended use and limits

- Trained and tested on **simulated** frames only (SonoSim's virtual patient, `sonoctl sim dataset`,
  128×128, 80° sector, 160 mm deep). It has never seen a real echo; do not use it on one.
- One frame at a time; the runtime smooths over time (`SonoVision.TemporalSmoother`).
- Labels are simulator truth: the nearest canonical view within 12 mm, 12° of beam angle and 15° of
  rotation about the beam, contact force ≥ 2 N, central beam reaching blood first; otherwise OTHER
  (docs/VIRTUAL-PATIENT.md). Frames near a tolerance's edge are genuinely ambiguous.

## Data

Poses from `TrainingPoseSampler` (≈ 60 % near a standard view, ≈ 25 % near but outside the
tolerance, ≈ 15 % anywhere on the chest; forces 3–10 N, 5 % below 1.5 N; random cardiac and
breathing phase).

| split | patients | frames | pose seed | views |
|---|---|---:|---:|---|
| train | {r['n_train_patients']} random patients `train-000…` (make_patients.py --seed {r['patient_seed']}, patient seeds 100000+) | {r['n_train']} | {r['train_seed']} | {dist(r['dist_train'])} |
| validation (epoch choice) | {r['n_val_patients']} random patients `val-…` (make_patients.py --seed {r['patient_seed'] + 1}, patient seeds 200000+) | {r['n_val']} | {r['val_seed']} | {dist(r['dist_val'])} |
| **test (held out)** | the 5 shipped patients `hardware/patients/*.toml`: default, elderly-horizontal-heart, lean-athlete, obese, tachycardic-small | {r['test_n']} | {r['test_seed']} | {dist(r['dist_test'])} |

Random patients sample every key of the patient file (docs/VIRTUAL-PATIENT.md, "Patient files")
from broad adult ranges that enclose the shipped patients with a margin: heart centre x 18…52,
y −32…0 mm, depth = chest wall + 45 × scale + 2…35 mm; long axis azimuth 12…58°, elevation
0…40°; rotation −25…25°; scale 0.75…1.3; rib spacing 15…32 mm; chest wall 10…55 mm; stiffness
0.15…3 N/mm (log-uniform); breathing 0…9 mm at 6…30 /min; chest radius 110…320 mm; noise
0.05…0.7; window quality 0.3…1; heart rate 40…160 /min (`SAMPLING` in make_patients.py).

Augmentation (training only, on the 128×128 frame before the resize): gain ×(1 ± 0.12), offset
± 0.02, gamma e^(±0.15), shift ± 3 px with zero fill, light Gaussian noise; clipped to [0, 1].

## Input contract (what the Swift runtime implements)

- Input `frame`: float32 `[N, 1, 96, 96]` (N = 1 in Sono; the batch dimension is symbolic).
  Output `logits`: float32 `[N, 6]` in the order of `sono.labels`; no softmax in the graph.
- From the 8-bit grayscale frame `p[y][x]` (H × W, 128 × 128 from the simulator; other sizes
  take the same formula):
  1. `v = p / 255` (float32).
  2. Resize to 96 × 96, bilinear, half-pixel centres, no antialias — in training
     `torch.nn.functional.interpolate(v, size=96, mode="bilinear", align_corners=False, antialias=False)`.
     Per axis (in = H or W, out = 96), all in float32: `scale = Float(in) / Float(out)`,
     `src = max(fma(scale, dst + 0.5, −0.5), 0)` (one rounding, as torch's kernel; for 128 → 96 a
     plain multiply-then-subtract gives the same weights), `i0 = floor(src)`,
     `i1 = min(i0 + 1, in − 1)`, `w1 = src − i0`, `w0 = 1 − w1`;
     `r[y][x] = wy0·(wx0·v[y0][x0] + wx1·v[y0][x1]) + wy1·(wx0·v[y1][x0] + wx1·v[y1][x1])`.
     Edges: downscaling never reaches them (for 128 → 96, src runs 0.1667 … 126.8333); when
     upscaling, src below 0 clamps to 0 and i1 clamps to the last row/column (edge replication).
  3. `frame = (r − mean) / std` with mean = {r['mean']!r}, std = {r['std']!r}.
  The numpy reference is `preprocess()` in tools/vision/parity_reference.py.
- `metadata_props`:

| key | value |
|---|---|
""" + "".join(f"| `{k}` | `{v}` |\n" for k, v in r["metadata"].items() if k != "sono.training") + f"""| `sono.training` | JSON: seeds, data sizes, epochs, architecture |

## Architecture

{r['arch']} — {r['params']:,} parameters, file **{r['size_bytes']:,} bytes** ({r['size_bytes'] / 1e6:.2f} MB).
ONNX opset 17; ops in the graph: **{', '.join(r['ops'])}** (BatchNormalization folded into Conv by the
exporter). Trained {r['epochs']} epochs (AdamW, one-cycle LR max {r['lr']}, batch {r['batch']},
label smoothing {r['smoothing']}); kept epoch {r['best_epoch']} (validation accuracy {r['val_acc'] * 100:.2f} %).
onnxruntime vs torch on {r['parity_n']} validation frames: max |Δlogit| = {r['parity_max']:.2e}.

## Held-out results (5 shipped patients, onnxruntime, numpy preprocessing)

Frame accuracy **{r['test_acc'] * 100:.2f} %** ({r['test_correct']}/{r['test_n']}).

{prc}
Confusion matrix (rows: simulator truth, columns: prediction):

{confusion_md(c)}
{per_patient}
Where the errors lie: each held-out frame's distance to the nearest canonical pose, in units of
the label tolerance, `d = max(position / 12 mm, beam angle / 12°, |plane rotation| / 15°)`
(d < 1: inside a view's tolerance; the label is still OTHER there when the force is below 2 N or
the central beam meets bone or lung first):

| d | frames | errors | accuracy |
|---|---:|---:|---:|
""" + "".join(f"| {k} | {n} | {e} | {(1 - e / n) * 100 if n else float('nan'):.1f} % |\n" for k, (n, e) in r["bands"].items()) + f"""
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
    ap.add_argument("--test-frames", type=int, default=400, help="frames per held-out patient")
    ap.add_argument("--patient-seed", type=int, default=7)
    ap.add_argument("--train-seed", type=int, default=11)
    ap.add_argument("--val-seed", type=int, default=12)
    ap.add_argument("--test-seed", type=int, default=2024)
    ap.add_argument("--seed", type=int, default=1, help="torch seed")
    ap.add_argument("--epochs", type=int, default=7)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--smoothing", type=float, default=0.05)
    ap.add_argument("--widths", default="16,32,64,128,128")
    ap.add_argument("--head", choices=["gap", "flatten"], default="gap")
    ap.add_argument("--stem-kernel", type=int, default=5)
    ap.add_argument("--stem-stride", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=27, help="stop training after this long")
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

    # 1. patients
    ptrain, pval = os.path.join(work, "patients/train"), os.path.join(work, "patients/val")
    for folder, n, seed, base, prefix in ((ptrain, args.train_patients, args.patient_seed, 100000, "train"),
                                          (pval, args.val_patients, args.patient_seed + 1, 200000, "val")):
        shutil.rmtree(folder, ignore_errors=True)
        make_patients.main(["--count", str(n), "--seed", str(seed), "--seed-base", str(base),
                            "--prefix", prefix, "--out", folder, "--validate", sonoctl])
    shipped_seeds = set()
    for f in os.listdir(shipped):
        for line in open(os.path.join(shipped, f)):
            if line.startswith("seed"):
                shipped_seeds.add(int(line.split("=")[1].split("#")[0]))
    assert shipped_seeds.isdisjoint(range(100000, 200000 + args.val_patients)), "patient seeds collide"

    # 2. data sets
    dtrain = dataset(sonoctl, ptrain, args.frames, args.train_seed, os.path.join(work, "data/train"))
    dval = dataset(sonoctl, pval, args.frames, args.val_seed, os.path.join(work, "data/val"))
    dtest = dataset(sonoctl, shipped, args.test_frames, args.test_seed, os.path.join(work, "data/test"))
    xtr, ytr, _, _ = load(dtrain)
    xva, yva, _, _ = load(dval)
    xte, yte, pte, fte = load(dtest)
    log(f"frames: train {len(xtr)}, val {len(xva)}, test {len(xte)}")
    counts = lambda y: {LABELS[i]: int((y == i).sum()) for i in range(len(LABELS))}
    log(f"train views {counts(ytr)}")

    # normalisation constants from the training frames after the resize (rounded: they are text in the model)
    with torch.no_grad():
        sample = torch.from_numpy(xtr[:: max(1, len(xtr) // 2000)])
        r = F.interpolate(sample.unsqueeze(1).float() / 255, size=INPUT_SIZE, mode="bilinear",
                          align_corners=False, antialias=False)
        mean, std = round(float(r.mean()), 4), round(float(r.std()), 4)
    log(f"normalisation mean {mean} std {std}")

    # 3. train
    widths = [int(w) for w in args.widths.split(",")]
    model = build_model(widths, args.stem_kernel, args.stem_stride, args.head).to(memory_format=torch.channels_last)  # faster on CPU
    params = sum(p.numel() for p in model.parameters())
    log(f"model {widths}: {params} parameters")
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=args.smoothing)
    gen = torch.Generator().manual_seed(args.seed)
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    best = (-1.0, -1, None)
    t_train = time.time()
    epochs_run = 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        t0 = time.time()
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = to_input(torch, F, xtr_t[idx], mean, std, aug=True, gen=gen)
            yb = ytr_t[idx]
            logits = model(xb)
            loss = loss_fn(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
            total += len(idx)
        val_pred = evaluate_torch(torch, F, model, xva, mean, std).argmax(1)
        val_acc = float((val_pred == yva).mean())
        epochs_run = epoch
        log(f"epoch {epoch:2d}: loss {loss_sum / total:.4f} train acc {correct / total:.4f} "
            f"val acc {val_acc:.4f} ({time.time() - t0:.0f} s)")
        if val_acc >= best[0]:
            best = (val_acc, epoch, {k: v.clone() for k, v in model.state_dict().items()})
        if (time.time() - t_train) / 60 > args.max_minutes and epoch < args.epochs:
            log(f"stopping after epoch {epoch}: --max-minutes {args.max_minutes} reached")
            break
    train_minutes = (time.time() - t_train) / 60
    val_acc, best_epoch, state = best
    model.load_state_dict(state)
    model.eval()
    log(f"best epoch {best_epoch}: val acc {val_acc:.4f}")
    vc = confusion(yva, evaluate_torch(torch, F, model, xva, mean, std).argmax(1))
    log("validation confusion (rows truth " + ",".join(LABELS) + "):\n" + str(vc))

    # 4. export
    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "view-classifier.onnx")
    command = ".venv-train/bin/python tools/vision/train.py" + "".join(
        f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    info = {"train_patients": args.train_patients, "val_patients": args.val_patients, "frames": args.frames,
            "test_frames": args.test_frames, "patient_seed": args.patient_seed, "train_seed": args.train_seed,
            "val_seed": args.val_seed, "test_seed": args.test_seed, "torch_seed": args.seed,
            "epochs": epochs_run, "best_epoch": best_epoch, "widths": widths,
            "stem_kernel": args.stem_kernel, "stem_stride": args.stem_stride, "head": args.head}
    ops = export_onnx(torch, model, onnx_path, mean, std, info)
    log(f"exported {onnx_path}: ops {ops}")

    # onnxruntime vs torch (same torch preprocessing) on validation frames
    import onnxruntime as ort
    session = make_session(onnx_path, threads=args.threads)
    n_par = min(256, len(xva))
    with torch.no_grad():
        xin = to_input(torch, F, torch.from_numpy(xva[:n_par]), mean, std, aug=False)
        ref = model(xin).numpy()
    got = session.run(None, {"frame": np.ascontiguousarray(xin.numpy())})[0]
    parity_max = float(np.abs(ref - got).max())
    log(f"onnxruntime vs torch: max |dlogit| {parity_max:.2e}")
    if parity_max > 1e-4:
        raise SystemExit(f"onnxruntime disagrees with torch: {parity_max}")
    # numpy preprocessing vs torch's
    pre_max = float(np.abs(np.concatenate([preprocess(x, INPUT_SIZE, mean, std) for x in xva[:64]]) -
                           xin.numpy()[:64]).max())
    log(f"numpy vs torch preprocessing: max |d| {pre_max:.2e}")
    if pre_max > 1e-5:
        raise SystemExit(f"numpy preprocessing disagrees with torch: {pre_max}")

    # 5. held-out test through the deployed path
    logits = np.concatenate([session.run(None, {"frame": preprocess(x, INPUT_SIZE, mean, std)})[0] for x in xte])
    pred = logits.argmax(1)
    cm = confusion(yte, pred)
    test_acc = float((pred == yte).mean())
    log(f"HELD-OUT accuracy {test_acc:.4f}\n{cm}")
    per_patient = {}
    for p in sorted(set(pte)):
        mask = np.array([q == p for q in pte])
        per_patient[p] = (int(mask.sum()), float((pred[mask] == yte[mask]).mean()))
    errors = [(fte[i], LABELS[yte[i]], LABELS[pred[i]]) for i in np.nonzero(pred != yte)[0]]
    with open(os.path.join(work, "test-errors.csv"), "w") as f:
        f.write("file,truth,predicted\n" + "".join(f"{a},{b},{c}\n" for a, b, c in errors))
    log(f"misclassified frames listed in {os.path.join(work, 'test-errors.csv')}")
    bands = error_bands(dtest, fte, pred != yte)
    log(f"errors by distance to the nearest canonical pose: {bands}")

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
        "test_acc": test_acc, "test_correct": int((pred == yte).sum()), "test_n": len(yte),
        "n_train_patients": args.train_patients, "n_val_patients": args.val_patients,
        "n_train": len(ytr), "n_val": len(yva), "patient_seed": args.patient_seed,
        "train_seed": args.train_seed, "val_seed": args.val_seed, "test_seed": args.test_seed,
        "dist_train": counts(ytr), "dist_val": counts(yva), "dist_test": counts(yte),
        "mean": mean, "std": std, "metadata": metadata, "arch": arch, "params": params,
        "size_bytes": os.path.getsize(onnx_path), "ops": ops, "epochs": epochs_run, "lr": args.lr,
        "batch": args.batch, "smoothing": args.smoothing, "best_epoch": best_epoch, "val_acc": val_acc,
        "parity_n": n_par, "parity_max": parity_max, "confusion": cm.tolist(), "per_patient": per_patient, "bands": bands,
        "bench": bench, "cpu": cpu, "command": command, "train_minutes": train_minutes,
        "total_minutes": (time.time() - t_start) / 60,
    }
    write_card(os.path.join(args.out, "view-classifier.md"), card)
    with open(os.path.join(work, "result.json"), "w") as f:
        json.dump(card, f, indent=1)
    log(f"wrote {os.path.join(args.out, 'view-classifier.md')}; total {card['total_minutes']:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
