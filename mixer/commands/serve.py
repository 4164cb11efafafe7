"""`mixerd serve`: run the Mixer gRPC API, the monitoring HTTP server and the admin page until SIGTERM or
SIGINT.

Once every server listens it prints one line for each to stdout (format: mixerd.server.app), and on
SIGTERM or SIGINT it stops taking calls, lets in-flight ones finish within --shutdown-grace and exits 0.
Exit codes: 0 after a clean stop; 1 when a port cannot be bound; 2 for bad settings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from typing import Any

from .. import logs
from .. import settings as _settings
from ..runtime import heap
from ..server.app import StartError, start


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the istio.mixer.v1 gRPC server",
        description="Serve istio.mixer.v1.Mixer Check and Report, plus gRPC health and reflection, and "
        "mixerd's own /metrics, /version, /healthz and /readyz over HTTP, and a local admin page "
        "(docs/admin.md). Every flag can also be set with the environment variable shown in its help.",
    )
    _settings.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = _settings.from_namespace(args)
    choices = (
        ("--log-level", settings.log_level, logs.LEVELS),
        ("--log-level-grpc", settings.log_level_grpc, logs.LEVELS),
        ("--log-format", settings.log_format, logs.FORMATS),
    )
    for flag, value, allowed in choices:
        if value.lower() not in allowed:
            print(f"mixerd serve: error: {flag} {value!r}: use one of {', '.join(allowed)}", file=sys.stderr)
            return 2
    logs.configure(settings.log_level.lower(), settings.log_level_grpc.lower(), settings.log_format.lower())
    try:
        return asyncio.run(_serve(settings))
    except StartError as e:
        print(f"mixerd serve: error: {e}", file=sys.stderr)
        return e.exit_code


async def _serve(settings: _settings.Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Before starting: a signal during the first load (a big config, a stuck read) must stop it too.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.ensure_future(start(settings))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        starting.cancel()  # the load runs in a thread the process does not wait for (runtime.offload)
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        logging.getLogger(__name__).info("stopped while starting")
        return 0
    stopped.cancel()
    running = starting.result()  # StartError goes to serve's caller
    heap.settle_after_start()  # libraries and the first config never walked by a collection again
    print("\n".join(running.ready_lines()), flush=True)
    try:
        await stop.wait()
        logging.getLogger(__name__).info(
            "stopping: in-flight calls get %ss to finish", settings.shutdown_grace
        )
    finally:
        await running.stop()
    return 0
