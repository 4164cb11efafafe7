"""Test helpers shipped for adapter authors: sample attribute bags (here), the lifecycle conformance
checks (`mixerd.testing.conformance`) and pytest fixtures (`mixerd.testing.fixtures`, turned on as
`mixerd.pytest_plugin` says).

Sample bags are shaped like what Istio proxies send, for tests, benchmarks and examples.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from ..attribute.values import Duration, Timestamp


def typical_http_bag(n: int = 0) -> dict[str, Any]:
    """A 30-attribute inbound HTTP request bag as a 1.4 sidecar reports it; `n` varies the request."""
    start = Timestamp.parse("2026-11-20T10:00:00.000000123Z") + n * 1_000_000
    return {
        "source.uid": "kubernetes://productpage-v1-6b746f74dc-9stvs.default",
        "source.ip": ipaddress.ip_address("10.44.0.12").packed,
        "source.principal": "cluster.local/ns/default/sa/bookinfo-productpage",
        "source.namespace": "default",
        "destination.uid": "kubernetes://reviews-v2-7bf8c9648f-xcvd4.default",
        "destination.ip": ipaddress.ip_address("10.44.0.17").packed,
        "destination.port": 9080,
        "destination.principal": "cluster.local/ns/default/sa/bookinfo-reviews",
        "destination.namespace": "default",
        "destination.service.host": "reviews.default.svc.cluster.local",
        "destination.service.uid": "istio://default/services/reviews",
        "destination.service.name": "reviews",
        "destination.service.namespace": "default",
        "request.headers": {
            ":authority": "reviews:9080",
            ":method": "GET",
            ":path": f"/reviews/{n}",
            "user-agent": "python-requests/2.31.0",
            "x-request-id": f"5d0d2a5c-87b5-4bd2-a3d5-{n:012d}",
            "x-user": "jason",
        },
        "request.id": f"5d0d2a5c-87b5-4bd2-a3d5-{n:012d}",
        "request.path": f"/reviews/{n}",
        "request.host": "reviews:9080",
        "request.method": "GET",
        "request.scheme": "http",
        "request.useragent": "python-requests/2.31.0",
        "request.size": 0,
        "request.total_size": 512,
        "request.time": Timestamp(start),
        "response.code": 200,
        "response.time": Timestamp(start + 4_210_000),
        "response.duration": Duration(4_210_000),
        "context.protocol": "http",
        "context.reporter.kind": "inbound",
        "context.reporter.uid": "kubernetes://reviews-v2-7bf8c9648f-xcvd4.default",
        "connection.mtls": True,
    }
