#!/usr/bin/env python3
"""The split of the Swift test suites over the passes of `make test`, and its check.

    test-passes.py emulated
        The suites that need umockdev's LD_PRELOAD (one per line): those whose @Suite trait
        is gated on it, `.enabled(if: EmulatedSerialBench.isPreloaded ...)`. The Makefile
        runs them one at a time under umockdev-wrapper (test-emulated); the list is made from
        the sources, so a new or renamed emulated suite cannot be left out of it.

    test-passes.py check LIST --run PASS=REGEX ... --rest PASS=REGEX
        LIST is the output of `swift test list` (one Target.Suite/test() per line). Each
        --run is one `swift test --filter REGEX` of a pass; --rest is the pass that runs
        everything else (`swift test --skip REGEX`). Checks that every listed test runs in
        exactly one of these runs and that every --run's filter selects something (a filter
        that selects nothing names a suite that was renamed or removed). swift test matches
        --filter and --skip as regular expressions searched in the test's identifier; this
        does the same. Exits 1 naming each suite that runs in no run or in several.
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# @Suite(<traits>) [modifiers] struct|class|enum|actor Name — the traits may span lines.
SUITE = re.compile(r"@Suite\s*\((?P<traits>.*?)\)\s*(?:(?:public|internal|private|fileprivate|final)\s+)*"
                   r"(?:struct|class|enum|actor)\s+(?P<name>\w+)", re.DOTALL)
PRELOAD_GATE = "EmulatedSerialBench.isPreloaded"


def emulated_suites():
    names = []
    for path in sorted((ROOT / "Tests").rglob("*.swift")):
        for match in SUITE.finditer(path.read_text(encoding="utf-8")):
            if PRELOAD_GATE in match.group("traits"):
                names.append(match.group("name"))
    return names


def parse_run(text):
    name, separator, pattern = text.partition("=")
    if not separator or not name or not pattern:
        raise argparse.ArgumentTypeError(f"expected PASS=REGEX, got {text!r}")
    try:
        return name, re.compile(pattern)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"{name}: bad regular expression {pattern!r}: {error}")


def suite_of(test):
    """Target.Suite of a listed test (Target.Suite/test(), or Target.Outer/Inner/test())."""
    return test.rsplit("/", 1)[0] if "/" in test else test


def check(list_path, runs, rest):
    tests = [line.strip() for line in open(list_path, encoding="utf-8")
             if re.match(r"^\w+\.\w+", line.strip())]
    if not tests:
        print(f"test-passes: {list_path} lists no tests (was `swift test list` run after the build?)", file=sys.stderr)
        return 1
    failures = []
    runs_of = {test: [] for test in tests}
    for name, pattern in runs:
        selected = [test for test in tests if pattern.search(test)]
        if not selected:
            failures.append(f"{name}: its filter '{pattern.pattern}' selects no test: a suite it names was renamed "
                            f"or removed; update the Makefile")
        for test in selected:
            runs_of[test].append(f"{name} (--filter '{pattern.pattern}')")
    rest_name, rest_pattern = rest
    for test in tests:
        if not rest_pattern.search(test):
            runs_of[test].append(f"{rest_name} (everything not --skip'ped)")

    by_suite = {}
    for test, where in runs_of.items():
        by_suite.setdefault(suite_of(test), set()).add(tuple(where))
    for suite, placements in sorted(by_suite.items()):
        for where in sorted(placements):
            if len(where) == 0:
                failures.append(f"{suite}: runs in no pass of make test (give it to one: {rest_name}'s --skip "
                                f"leaves it out, and no other pass's filter selects it)")
            elif len(where) > 1:
                failures.append(f"{suite}: runs in {len(where)} passes of make test: {', '.join(where)}")
    if failures:
        for failure in failures:
            print(f"test-passes: {failure}", file=sys.stderr)
        return 1
    print(f"test-passes: {len(tests)} tests in {len(by_suite)} suites, each in exactly one pass "
          f"({len(runs)} filtered runs and {rest_name})")
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("emulated", help="the suites that need umockdev's LD_PRELOAD")
    checker = commands.add_parser("check", help="every listed test runs in exactly one pass")
    checker.add_argument("list", help="the output of `swift test list`")
    checker.add_argument("--run", type=parse_run, action="append", default=[], metavar="PASS=REGEX")
    checker.add_argument("--rest", type=parse_run, required=True, metavar="PASS=REGEX")
    args = parser.parse_args()
    if args.command == "emulated":
        names = emulated_suites()
        if not names:
            print("test-passes: no suite is gated on umockdev's preload: the pattern no longer matches the sources",
                  file=sys.stderr)
            return 1
        print("\n".join(names))
        return 0
    return check(args.list, args.run, args.rest)


if __name__ == "__main__":
    sys.exit(main())
