"""`mixerd eval EXPR`: evaluate one expression against an attribute bag given with the check flags.

Attribute types come from the manifest (Istio's vocabulary, plus `--config DIR`'s attributemanifest
documents): `-a request.size=10` is an INT64 because the manifest says so. Typed flags (-s, -i, ...)
force a type. Prints the value and its type, or the error; `--json` prints one object and the exit code
says which (0 value, 1 error).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import Any

from ..attribute import BUILTIN_MANIFEST, AttributeBag, Duration, Timestamp, ValueType
from ..attribute.values import ip_text
from ..client import attrs
from ..config import ConfigRejected, load_manifest
from .client import add_attribute_flags

_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"


class _RawAttributes(argparse.Action):
    """Keeps (kind, flag, name, text) items: values are typed after the manifest is known."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        try:
            items = attrs.split_items(str(option), str(values))
        except attrs.AttributeFlagError as e:
            raise argparse.ArgumentError(None, str(e)) from None
        raw = list(getattr(namespace, self.dest) or [])
        raw.extend((self.const, str(option), name, text) for name, text in items)
        setattr(namespace, self.dest, raw)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate an expression against attributes given as flags",
        usage="mixerd eval EXPR [ATTRIBUTE FLAGS] [--config DIR] [--json]",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("expression", metavar="EXPR", help="an expression in Mixer's language, e.g. 'a == \"b\"'")
    p.add_argument("--config", metavar="DIR", help="also read attributemanifest documents from this folder")
    p.add_argument("--json", action="store_true", help='print {"value", "type", "referenced"} or {"error"}')
    add_attribute_flags(p, action=_RawAttributes)
    p.set_defaults(run=run)


def _typed_values(raw: list[tuple[str, str, str, str]], manifest: Mapping[str, ValueType]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, flag, name, text in raw:
        declared = manifest.get(name)
        if kind != "any" or declared is None:  # a typed flag, or an attribute the manifest does not know
            out[name] = attrs.parse_attribute_flag(flag, kind, f"{name}={text}", manifest)[name]
            continue
        try:
            out[name] = attrs.parse_typed(declared, text)
        except ValueError as e:
            raise attrs.AttributeFlagError(f"{flag}: '{name}={text}': {e}") from None
    return out


def to_json_value(value: Any, value_type: ValueType) -> Any:
    """A value as JSON shows it: timestamps RFC 3339, durations in Go syntax, IPs as text that keeps their
    length: the 4 bytes a proxy sends as `1.2.3.4`, the 16 bytes ip("1.2.3.4") gives (Go's net.ParseIP,
    what an adapter then receives) as `::ffff:1.2.3.4`."""
    if value_type is ValueType.IP_ADDRESS and isinstance(value, bytes) and len(value) in (4, 16):
        if len(value) == 16 and value[:12] == _V4_MAPPED:
            return "::ffff:" + ip_text(value[12:])
        return ip_text(value)
    if isinstance(value, Timestamp):
        return value.isoformat()
    if isinstance(value, Duration):
        return str(value)
    if isinstance(value, bytes):
        return value.hex(":")
    return value


def run(args: argparse.Namespace) -> int:
    from ..lang import ExpressionError, compile_expression

    def fail(message: str) -> int:
        print(json.dumps({"error": message}) if args.json else f"error: {message}")
        return 1

    try:
        manifest = BUILTIN_MANIFEST
        if args.config:
            if not os.path.isdir(args.config):
                raise attrs.AttributeFlagError(f"--config {args.config}: no such folder")
            manifest = load_manifest(args.config)
        values = _typed_values(args.attribute_values or [], manifest)
    except attrs.AttributeFlagError as e:
        print(f"mixerd eval: {e}", file=sys.stderr)
        return 2
    except ConfigRejected as e:
        print(f"mixerd eval: --config {args.config}: {e}", file=sys.stderr)
        return 2
    bag = AttributeBag(values)
    try:
        expression = compile_expression(args.expression, manifest)
        value = expression.evaluate(bag)
    except ExpressionError as e:
        return fail(str(e))
    shown = to_json_value(value, expression.type)
    referenced = [{"name": r.name, "condition": r.condition.name, "key": r.key} for r in bag.references()]
    if args.json:
        print(json.dumps({"value": shown, "type": expression.type.name, "referenced": referenced}))
    else:
        print(f"{json.dumps(shown)} ({expression.type.name})")
        for r in referenced:
            name = f"{r['name']}::{r['key']}" if r["key"] is not None else r["name"]
            print(f"  {name} {r['condition']}")
    return 0
