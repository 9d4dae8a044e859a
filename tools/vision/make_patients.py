#!/usr/bin/env python3
"""Generate random virtual-patient files for training the view classifier.

Every key of docs/VIRTUAL-PATIENT.md ("Patient files") is sampled, inside its valid range, from a
broad distribution of adult anatomy that covers the shipped patients (hardware/patients/*.toml)
with a margin on every side. The shipped patients are the held-out TEST set: generated names and
seeds never collide with theirs (generated seeds start at 100000; the shipped ones are < 10000).

    python3 tools/vision/make_patients.py --count 50 --seed 7 --out /tmp/patients/train
    python3 tools/vision/make_patients.py ... --validate .build-vision/release/sonoctl

With --validate, each file is rendered once through `sonoctl sim render` (the loader rejects an
out-of-range value with a message naming the key) and the script fails on the first rejection.
Standard library only.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import subprocess
import sys
import tempfile

# Valid ranges from docs/VIRTUAL-PATIENT.md (the loader's PatientKey.all).
RANGES = {
    "heart_rate_bpm": (30, 200),
    "heart.center_mm.x": (-100, 150),
    "heart.center_mm.y": (-150, 100),
    "heart.center_mm.z": (-200, -40),
    "heart.long_axis_deg.az": (-90, 90),
    "heart.long_axis_deg.el": (-90, 90),
    "heart.rotation_deg": (-180, 180),
    "heart.scale": (0.7, 1.4),
    "chest.rib_spacing_mm": (15, 40),
    "chest.skin_to_heart_mm": (10, 60),
    "chest.stiffness_n_per_mm": (0.1, 5),
    "chest.breathing_amplitude_mm": (0, 20),
    "chest.breathing_rate_bpm": (4, 40),
    "chest.radius_mm": (100, 400),
    "imaging.noise": (0, 1),
    "imaging.window_quality": (0, 1),
}

# Sampling ranges used here: broad adult anatomy, a margin around the shipped patients
# (heart x 30…40, y −12…−20, depth 70…112 mm, azimuth 25…45°, elevation 10…28°, rotation −8…10°,
# scale 0.85…1.15, ribs 18…26 mm, wall 15…45 mm, stiffness 0.3…1.6, radius 130…240,
# noise 0.15…0.5, windows 0.45…0.95, HR 52…120). Each lies inside the valid range above.
SAMPLING = {
    "heart_rate_bpm": (40, 160),
    "heart.center_mm.x": (18, 52),
    "heart.center_mm.y": (-32, 0),
    "heart.long_axis_deg.az": (12, 58),
    "heart.long_axis_deg.el": (0, 40),
    "heart.rotation_deg": (-25, 25),
    "heart.scale": (0.75, 1.3),
    "chest.rib_spacing_mm": (15, 32),
    "chest.skin_to_heart_mm": (10, 55),
    "chest.stiffness_n_per_mm": (0.15, 3.0),      # log-uniform
    "chest.breathing_amplitude_mm": (0, 9),
    "chest.breathing_rate_bpm": (6, 30),
    "chest.radius_mm": (110, 320),
    "imaging.noise": (0.05, 0.7),
    "imaging.window_quality": (0.3, 1.0),
    "front_margin_mm": (2, 35),                    # heart front below the chest wall's inner surface
}


def check(key: str, value: float) -> float:
    lo, hi = RANGES[key]
    if not (lo <= value <= hi):
        raise ValueError(f"{key} = {value} outside {lo}…{hi}")
    return value


def sample_patient(rng: random.Random, index: int, seed_base: int) -> dict:
    u = lambda key: rng.uniform(*SAMPLING[key])
    scale = round(u("heart.scale"), 3)
    skin = round(u("chest.skin_to_heart_mm"), 1)
    margin = u("front_margin_mm")
    # The loader's rule: -z - 45*scale >= skin_to_heart_mm. Depth = wall + heart radius + margin.
    z = -(skin + 45 * scale + margin)
    z = max(RANGES["heart.center_mm.z"][0], min(RANGES["heart.center_mm.z"][1], z))
    z = math.floor(z * 10) / 10                    # round away from the skin: keeps the rule
    lo, hi = SAMPLING["chest.stiffness_n_per_mm"]
    stiffness = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    p = {
        "name": f"train-{index:03d}",
        "seed": seed_base + index,
        "heart_rate_bpm": round(u("heart_rate_bpm"), 1),
        "center": [round(u("heart.center_mm.x"), 1), round(u("heart.center_mm.y"), 1), z],
        "axis": [round(u("heart.long_axis_deg.az"), 1), round(u("heart.long_axis_deg.el"), 1)],
        "rotation": round(u("heart.rotation_deg"), 1),
        "scale": scale,
        "rib": round(u("chest.rib_spacing_mm"), 1),
        "skin": skin,
        "stiffness": round(stiffness, 3),
        "breath_amp": round(u("chest.breathing_amplitude_mm"), 2),
        "breath_rate": round(u("chest.breathing_rate_bpm"), 1),
        "radius": round(u("chest.radius_mm"), 0),
        "noise": round(u("imaging.noise"), 3),
        "window": round(u("imaging.window_quality"), 3),
    }
    check("heart_rate_bpm", p["heart_rate_bpm"])
    for key, v in zip(("x", "y", "z"), p["center"]):
        check(f"heart.center_mm.{key}", v)
    check("heart.long_axis_deg.az", p["axis"][0])
    check("heart.long_axis_deg.el", p["axis"][1])
    check("heart.rotation_deg", p["rotation"])
    check("heart.scale", p["scale"])
    check("chest.rib_spacing_mm", p["rib"])
    check("chest.skin_to_heart_mm", p["skin"])
    check("chest.stiffness_n_per_mm", p["stiffness"])
    check("chest.breathing_amplitude_mm", p["breath_amp"])
    check("chest.breathing_rate_bpm", p["breath_rate"])
    check("chest.radius_mm", p["radius"])
    check("imaging.noise", p["noise"])
    check("imaging.window_quality", p["window"])
    if -p["center"][2] - 45 * p["scale"] < p["skin"]:
        raise ValueError(f"heart reaches into the chest wall: {p}")
    return p


def toml_text(p: dict) -> str:
    return f"""# Generated by tools/vision/make_patients.py: a random training patient for the view classifier.
name = "{p['name']}"
seed = {p['seed']}
heart_rate_bpm = {p['heart_rate_bpm']}

[heart]
center_mm = [{p['center'][0]}, {p['center'][1]}, {p['center'][2]}]
long_axis_deg = [{p['axis'][0]}, {p['axis'][1]}]
rotation_deg = {p['rotation']}
scale = {p['scale']}

[chest]
rib_spacing_mm = {p['rib']}
skin_to_heart_mm = {p['skin']}
stiffness_n_per_mm = {p['stiffness']}
breathing_amplitude_mm = {p['breath_amp']}
breathing_rate_bpm = {p['breath_rate']}
radius_mm = {p['radius']}

[imaging]
noise = {p['noise']}
window_quality = {p['window']}
"""


def validate(sonoctl: str, path: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.png")
        r = subprocess.run([sonoctl, "sim", "render", "--patient", path, "--view", "A4C", "--out", out],
                           capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(out):
            raise SystemExit(f"sonoctl rejected {path}:\n{r.stdout}{r.stderr}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, required=True, help="number of patients")
    ap.add_argument("--seed", type=int, default=7, help="seed of the parameter sampling")
    ap.add_argument("--seed-base", type=int, default=100000, help="first patient seed (shipped ones are < 10000)")
    ap.add_argument("--first-index", type=int, default=0, help="index of the first patient (names train-NNN)")
    ap.add_argument("--prefix", default="train", help="file and name prefix")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--validate", metavar="SONOCTL", help="render each file once with this sonoctl binary")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)
    for i in range(args.first_index, args.first_index + args.count):
        p = sample_patient(rng, i, args.seed_base)
        p["name"] = f"{args.prefix}-{i:03d}"
        path = os.path.join(args.out, f"{args.prefix}-{i:03d}.toml")
        with open(path, "w") as f:
            f.write(toml_text(p))
        if args.validate:
            validate(args.validate, path)
    print(f"wrote {args.count} patients to {args.out}" + (" (validated)" if args.validate else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
