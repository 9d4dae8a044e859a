#!/usr/bin/env python3
"""Check sonod's control-API description (docs/control-api.yaml).

    pip install -r tools/api/requirements.txt
    python3 tools/api/check_openapi.py [--spec docs/control-api.yaml] [--routes docs/control-api-routes.txt]

Checks, and prints every problem found (exit status 1 if any):
  1. the document is valid OpenAPI 3.1 (PyPI package openapi-spec-validator);
  2. its operations are exactly the routes of docs/control-api-routes.txt ("METHOD /path" per
     line, sorted in byte order as `LC_ALL=C sort` does, no duplicates), both ways;
  3. every operation has `x-sono-access`: read, motion or stop;
  4. every local `$ref` resolves, also those the validator does not follow (e.g. x-sono-events);
  5. every example of a request or response body, and of a component schema, matches its schema.
"""

import argparse
import sys
from pathlib import Path

try:
    import yaml
    from openapi_schema_validator import OAS31Validator, oas31_format_checker
    from openapi_spec_validator import OpenAPIV31SpecValidator
except ImportError as exc:  # pragma: no cover
    sys.exit(f"check_openapi: missing package ({exc}); run: pip install -r tools/api/requirements.txt")

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
ACCESS = {"read", "motion", "stop"}


def load_routes(path, problems):
    routes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split(" ")
        if len(parts) != 2 or parts[0] != parts[0].upper() or parts[0].lower() not in METHODS \
                or not parts[1].startswith("/"):
            problems.append(f"{path.name}:{number}: expected 'METHOD /path', got {line!r}")
            continue
        routes.append(line)
    if routes != sorted(routes):
        problems.append(f"{path.name}: lines are not sorted (LC_ALL=C sort)")
    if len(set(routes)) != len(routes):
        problems.append(f"{path.name}: duplicate lines")
    return set(routes)


def operations(doc):
    for route, item in (doc.get("paths") or {}).items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {route}", item[method]


def resolve(doc, ref):
    node = doc
    for token in ref[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or token not in node:
            return None
        node = node[token]
    return node


def pointer(parts, base="#"):
    """A JSON pointer (RFC 6901) from path parts."""
    return base + "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def local_refs(node, where="#"):
    """(JSON pointer of the referring object, reference) of every $ref in the document."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from local_refs(value, pointer([key], where))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from local_refs(value, pointer([index], where))


def examples(doc):
    """(where, schema, example value) of every example of a request or response body, and of
    every example a component schema carries."""
    for name, schema in ((doc.get("components") or {}).get("schemas") or {}).items():
        if isinstance(schema, dict):
            values = ([schema["example"]] if "example" in schema else []) + list(schema.get("examples") or [])
            for value in values:
                yield f"components/schemas/{name} example", schema, value
    for route, operation in operations(doc):
        bodies = [("request", operation.get("requestBody"))]
        bodies += [(f"response {status}", response) for status, response in (operation.get("responses") or {}).items()]
        for name, body in bodies:
            if body and "$ref" in body:
                body = resolve(doc, body["$ref"])
            for media_name, media in ((body or {}).get("content") or {}).items():
                schema = media.get("schema")
                if schema is None:
                    continue
                where = f"{route} {name} {media_name}"
                if "example" in media:
                    yield where, schema, media["example"]
                for example_name, example in (media.get("examples") or {}).items():
                    if "$ref" in example:
                        example = resolve(doc, example["$ref"]) or {}
                    if "value" in example:
                        yield f"{where} example {example_name}", schema, example["value"]


def check(spec_path, routes_path):
    problems = []
    try:
        doc = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        return [f"{spec_path}: {error}"]
    if not isinstance(doc, dict) or not str(doc.get("openapi", "")).startswith("3.1."):
        return [f"{spec_path.name}: not an OpenAPI 3.1 document"]

    for error in OpenAPIV31SpecValidator(doc, base_uri=spec_path.resolve().as_uri()).iter_errors():
        location = pointer(getattr(error, "path", ()) or ())
        problems.append(f"{spec_path.name}: OpenAPI: {error.message} (at {location})")

    documented = {}
    for route, operation in operations(doc):
        documented[route] = operation
        access = operation.get("x-sono-access")
        if access not in ACCESS:
            problems.append(f"{route}: x-sono-access is {access!r}, expected one of {sorted(ACCESS)}")
    try:
        listed = load_routes(routes_path, problems)
    except OSError as error:
        problems.append(f"{routes_path}: {error}")
    else:
        for route in sorted(listed - documented.keys()):
            problems.append(f"{route}: in {routes_path.name} but not in {spec_path.name}")
        for route in sorted(documented.keys() - listed):
            problems.append(f"{route}: in {spec_path.name} but not in {routes_path.name}")

    for where, ref in local_refs(doc):
        if ref.startswith("#/") and resolve(doc, ref) is None:
            problems.append(f"{where}: $ref {ref} does not resolve")

    components = doc.get("components") or {}
    for where, schema, value in examples(doc):
        # The whole components section rides along, so "#/components/..." resolves.
        validator = OAS31Validator({**schema, "components": components}, format_checker=oas31_format_checker)
        for error in validator.iter_errors(value):
            problems.append(f"{where}: example does not match its schema: {error.message}"
                            f" (at {pointer(error.absolute_path)})")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "docs/control-api.yaml")
    parser.add_argument("--routes", type=Path, default=ROOT / "docs/control-api-routes.txt")
    args = parser.parse_args()
    problems = check(args.spec, args.routes)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    count = sum(1 for _ in operations(yaml.safe_load(args.spec.read_text(encoding="utf-8"))))
    print(f"{args.spec.name}: valid OpenAPI 3.1, {count} operations, matching {args.routes.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
