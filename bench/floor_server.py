"""The floor: a bare grpc.aio server whose Mixer Check/Report handlers return a constant.

It answers the same method paths as mixerd but never parses the request, so the server CPU it uses per
call is what gRPC itself costs. bench/rpc.py runs it beside mixerd.
Usage: python bench/floor_server.py [PORT]   (prints `floor: serving on HOST:PORT`)
"""

from __future__ import annotations

import asyncio
import sys

import grpc

from mixerd.api.mixer.v1 import mixer_pb2

_CHECK = mixer_pb2.CheckResponse()
_CHECK.precondition.status.code = 0
_CHECK.precondition.valid_duration.seconds = 60
_CHECK.precondition.valid_use_count = 10000
_CHECK_BYTES = _CHECK.SerializeToString()
_REPORT_BYTES = mixer_pb2.ReportResponse().SerializeToString()


async def _check(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _CHECK_BYTES


async def _report(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return _REPORT_BYTES


async def main(port: int) -> None:
    server = grpc.aio.server()
    handlers = {
        "Check": grpc.unary_unary_rpc_method_handler(_check),
        "Report": grpc.unary_unary_rpc_method_handler(_report),
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("istio.mixer.v1.Mixer", handlers),))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"floor: serving on 127.0.0.1:{bound}", flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
