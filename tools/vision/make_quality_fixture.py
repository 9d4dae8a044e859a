#!/usr/bin/env python3
"""Writes Tests/SonoVisionTests/Fixtures/view-classifier-quality.onnx: a small view classifier
with the optional `quality` output (models/README.md), random weights, for Sono's parity and
loading tests. Not a trained model: its predictions mean nothing.

It has the shipped model's trunk (tools/vision/train.py build_model, head "gap": a 5×5 stride-2
stem, 3×3 Conv-BN-ReLU blocks with 2×2 max-pools, global average pool, Flatten), narrower so the
file stays small, and the second head the retrained model gets: a Gemm from the pooled features
to one value per view, then Sigmoid. Exported the way train.py exports (torch.onnx.export,
opset 17, dynamo=False, constant folding, dynamic batch) with output_names=["logits", "quality"],
and the contract's metadata (same input size and normalisation as the shipped model, so the
fixture PNGs serve both).

    /path/to/venv-with-torch/bin/python tools/vision/make_quality_fixture.py

Needs torch and onnx (tools/vision/requirements-train.txt). Fixed seed; BatchNorm statistics are
randomised too, so that folding them into the convolutions is exercised.
"""
from __future__ import annotations

import argparse
import os
import sys

LABELS = ["PLAX", "PSAX", "A4C", "A2C", "SC4C", "OTHER"]
QUALITY_LABELS = ["PLAX", "PSAX", "A4C", "A2C", "SC4C"]  # OTHER has no quality
INPUT_SIZE = 96
WIDTHS = [8, 16, 32, 32, 64]  # the shipped model: 16, 32, 64, 128, 128
MEAN, STD = 0.1713, 0.2198
RUNTIME_OPS = {"Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool", "GlobalAveragePool",
               "Gemm", "MatMul", "Add", "Flatten", "Reshape", "Sigmoid"}
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                           "Tests", "SonoVisionTests", "Fixtures", "view-classifier-quality.onnx")


def build(torch):
    import torch.nn as nn

    class QualityNet(nn.Module):
        def __init__(self):
            super().__init__()
            layers, c_in = [], 1
            for i, c in enumerate(WIDTHS):
                k, stride = (5, 2) if i == 0 else (3, 1)
                layers += [nn.Conv2d(c_in, c, k, stride=stride, padding=k // 2, bias=False),
                           nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
                if i < len(WIDTHS) - 1 and i != 0:  # the striding stem has no pool
                    layers.append(nn.MaxPool2d(2))
                c_in = c
            self.features = nn.Sequential(*layers)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c_in, len(LABELS))
            self.quality = nn.Linear(c_in, len(QUALITY_LABELS))

        def forward(self, x):
            features = torch.flatten(self.pool(self.features(x)), 1)
            return self.classifier(features), torch.sigmoid(self.quality(features))

    model = QualityNet()
    with torch.no_grad():
        for module in model.modules():
            # He initialisation keeps the activations' scale through the blocks, so that the
            # outputs differ from frame to frame (torch's default shrinks them layer by layer).
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.2, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.7, 1.3)
                module.bias.uniform_(-0.1, 0.1)
    return model.eval()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)

    import onnx
    import torch

    torch.manual_seed(args.seed)
    model = build(torch)
    tmp = args.out + ".tmp"
    torch.onnx.export(model, (torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE),), tmp, dynamo=False,
                      opset_version=17, input_names=["frame"], output_names=["logits", "quality"],
                      dynamic_axes={"frame": {0: "N"}, "logits": {0: "N"}, "quality": {0: "N"}},
                      do_constant_folding=True, export_params=True)
    m = onnx.load(tmp)
    os.remove(tmp)
    ops = sorted({n.op_type for n in m.graph.node})
    if not set(ops) <= RUNTIME_OPS:
        raise SystemExit(f"exported graph uses ops outside the Swift runtime's set: {sorted(set(ops) - RUNTIME_OPS)}")
    if [o.name for o in m.graph.output] != ["logits", "quality"]:
        raise SystemExit(f"unexpected outputs {[o.name for o in m.graph.output]}")
    meta = {
        "sono.labels": ",".join(LABELS),
        "sono.quality.labels": ",".join(QUALITY_LABELS),
        "sono.input.size": str(INPUT_SIZE),
        "sono.normalize.mean": repr(MEAN),
        "sono.normalize.std": repr(STD),
        "sono.resize": "bilinear-half-pixel",
        "sono.model.version": f"quality-fixture (random weights, seed {args.seed})",
    }
    del m.metadata_props[:]
    for key, value in meta.items():
        m.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    m.producer_name = "sono tools/vision/make_quality_fixture.py"
    m.producer_version = "1"
    m.doc_string = "Test fixture (random weights): logits over " + ",".join(LABELS) + " and quality of " + ",".join(QUALITY_LABELS)
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, args.out)
    print(f"wrote {os.path.relpath(args.out)}: {os.path.getsize(args.out)} bytes, ops {', '.join(ops)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
