#!/usr/bin/env python3
"""Checks Package.swift's module graph against docs/ARCHITECTURE.md.

The doc's module table gives every target a layer; this script reads the targets and their
dependencies from `swift package dump-package` and fails, naming the edge or module, when
  - a target is missing from the table (or the table names a target that does not exist);
  - a module depends on a module of a later layer (an edge against the data flow);
  - a module of the pipeline layers (devices, perception, decision, actuation) depends on
    anything but `platform` (the stages are joined above them, never to each other);
  - the service binary `sonod` links, directly or through others, a `simulation` module;
  - the graph block in the doc differs from the graph of Package.swift (regenerate it with
    `scripts/check-modules.py --write`).
Usage: scripts/check-modules.py [--write | --graph]
"""
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "ARCHITECTURE.md"
LAYERS = ["platform", "devices", "perception", "decision", "actuation", "wiring", "daemon", "simulation",
          "programs", "tests"]
PIPELINE = {"devices", "perception", "decision", "actuation"}
SERVICE_BINARY = "sonod"
BEGIN, END = "<!-- module-graph:begin -->", "<!-- module-graph:end -->"


def fail(message):
    print(f"check-modules: FAIL: {message}", file=sys.stderr)
    return 1


def documented_layers(text):
    layers = {}
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or cells[0] not in LAYERS:
            continue
        for module in re.findall(r"`([^`]+)`", cells[1]):
            layers[module] = cells[0]
    return layers


def package_targets():
    dump = subprocess.run(["swift", "package", "dump-package"], cwd=ROOT, check=True, capture_output=True, text=True)
    package = json.loads(dump.stdout)
    targets = {}
    for target in package["targets"]:
        local = []
        for dependency in target["dependencies"]:
            kind, value = next(iter(dependency.items()))
            if kind in ("byName", "target"):
                local.append(value[0])
        targets[target["name"]] = (target["type"], local)
    return targets


def graph_block(targets, layers):
    """One line per module outside `platform` and the tests: its layer and its local dependencies."""
    lines = ["```"]
    for layer in LAYERS:
        if layer in ("platform", "tests"):
            continue
        for name in sorted(n for n, l in layers.items() if l == layer and n in targets):
            dependencies = sorted(d for d in targets[name][1] if d in targets and layers.get(d) != "platform")
            lines.append(f"{layer:<10} {name:<22} → {', '.join(dependencies) if dependencies else '(platform only)'}")
    lines.append("```")
    return "\n".join(lines)


def main():
    text = DOC.read_text()
    layers = documented_layers(text)
    targets = package_targets()
    failures = 0
    for name, (kind, _) in targets.items():
        if kind == "test":
            layers.setdefault(name, "tests")
        if name not in layers:
            failures += fail(f"target {name} is not in docs/ARCHITECTURE.md's module table: give it a layer")
    for name in layers:
        if name not in targets:
            failures += fail(f"docs/ARCHITECTURE.md names module {name}, which Package.swift does not have")
    rank = {name: LAYERS.index(layer) for name, layer in layers.items()}
    for name, (_, dependencies) in targets.items():
        for dependency in dependencies:
            if dependency not in targets or name not in rank or dependency not in rank:
                continue
            if rank[dependency] > rank[name]:
                failures += fail(f"{name} ({layers[name]}) depends on {dependency} ({layers[dependency]}), a later layer")
            if layers[name] in PIPELINE and layers[dependency] != "platform":
                failures += fail(f"{name} ({layers[name]}) depends on {dependency} ({layers[dependency]}): the pipeline "
                                 "layers depend only on platform")
    linked, queue = set(), [SERVICE_BINARY]
    while queue:
        for dependency in targets.get(queue.pop(), ("", []))[1]:
            if dependency in targets and dependency not in linked:
                linked.add(dependency)
                queue.append(dependency)
    for module in sorted(m for m in linked if layers.get(m) == "simulation"):
        failures += fail(f"the service binary {SERVICE_BINARY} links {module} (simulation)")
    block = graph_block(targets, layers)
    if "--graph" in sys.argv:
        print(block)
        return failures
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return failures + fail(f"docs/ARCHITECTURE.md has no {BEGIN} … {END} block")
    current = text[start + len(BEGIN):end].strip()
    if "--write" in sys.argv:
        DOC.write_text(text[:start + len(BEGIN)] + "\n" + block + "\n" + text[end:])
    elif current != block:
        failures += fail("the module graph in docs/ARCHITECTURE.md is stale: run scripts/check-modules.py --write")
    if failures == 0:
        print(f"check-modules: {len(targets)} targets in {len(LAYERS)} layers; no edge against the data flow; "
              f"{SERVICE_BINARY} links no simulation module ({len(linked)} modules)")
    return failures


if __name__ == "__main__":
    sys.exit(1 if main() else 0)
