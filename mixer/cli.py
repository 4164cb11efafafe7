"""The `mixerd` command: serve | check | report | eval | check-config | examples | version.

Each subcommand lives in mixerd.commands.<name> with two functions: `add_parser(subparsers)` and
`run(args) -> int` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from . import __version__

# subcommand -> module in mixerd.commands
_COMMANDS = {
    "serve": "serve",
    "check": "client",
    "report": "client",
    "eval": "eval",
    "check-config": "check_config",
    "examples": "examples",
    "version": "version",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixerd",
        description="A Mixer-style telemetry and policy engine (istio.mixer.v1 Check and Report over gRPC).",
    )
    parser.add_argument("--version", action="version", version=f"mixerd {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in dict.fromkeys(_COMMANDS.values()):
        importlib.import_module(f".commands.{module}", __package__).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.run(args))
        sys.stdout.flush()  # here, so that a reader gone away is caught below, not at interpreter exit
        return code
    except BrokenPipeError:
        # The reader went away (`mixerd examples | head`): nothing more to say, and no traceback. Point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    sys.exit(main())
