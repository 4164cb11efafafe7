"""Registering a service whose handlers take and return raw bytes (every front-end of mixerd does).

The handlers parse and serialize themselves, so that bytes that are not a valid request become
INVALID_ARGUMENT (grpc's own deserializer would answer INTERNAL) and constant answers are sent as they
are.

Every front-end registers here, so this is where load shedding applies: on a server given an
`Admission` (admission.attach), each handler gets the admission check in front of it (admission.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from .admission import attached

# The names Envoy calls its services by. mixerd's copies of Envoy's messages live in a package of their own
# (mixerd.envoy.*, protos/mixerd/README.md), so these are written here, not read from those descriptors.
ENVOY_AUTHORIZATION = "envoy.service.auth.v3.Authorization"
ENVOY_RATE_LIMIT_SERVICE = "envoy.service.ratelimit.v3.RateLimitService"
ENVOY_ACCESS_LOG_SERVICE = "envoy.service.accesslog.v3.AccessLogService"


def add_raw_handlers(
    server: grpc.aio.Server, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]
) -> None:
    """Serve `handlers` (method name -> handler without (de)serializers) as `service` on `server`, behind
    the server's admission check when it has one."""
    admission = attached(server)
    if admission is not None:
        handlers = admission.wrap(service, handlers)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, dict(handlers)),))
    # Registered methods take precedence and are found without walking the generic handlers (about
    # 10 us less server CPU per call once health and reflection are there); generated code does both.
    server.add_registered_method_handlers(service, dict(handlers))
