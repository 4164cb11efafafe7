"""envoyproxy/ratelimit's stats to statsd (mixer/server/envoy/ratelimit_statsd.py): its names, sanitized as
it sanitizes them; what grew since the last send; datagrams a UDP socket takes; never a crash when no
one listens."""

from __future__ import annotations

import asyncio
import socket

from mixerd.runtime.ratelimit import OK, OVER_LIMIT, Decision, DescriptorVerdict
from mixerd.runtime.ratelimit_accounting import Hits
from mixerd.server.envoy.ratelimit_stats import RateLimitStats
from mixerd.server.envoy.ratelimit_statsd import StatsdSink, _datagrams, sanitize


def test_names_are_sanitized_as_envoyproxy_ratelimit_does_and_hold_no_line_breaks() -> None:
    assert sanitize("edge.remote_address_10.0.0.1") == "edge.remote_address_10_0_0_1"
    assert sanitize("edge.path_/a:b|c") == "edge.path_/a_b_c"
    assert sanitize("edge.user_x\nevil:1|c") == "edge.user_x_evil_1_c"
    assert sanitize("edge.version_1.2.3") == "edge.version_1.2.3"  # not an IPv4 address


def _decision(stat: str, hits: Hits) -> Decision:
    code = OVER_LIMIT if hits.over else OK
    return Decision(code, (DescriptorVerdict(code, stat=stat, rollup=stat, hits=hits),))


def test_each_send_carries_what_grew_since_the_last() -> None:
    stats = RateLimitStats()
    sink = StatsdSink(stats, "127.0.0.1:9", 10.0)
    sink.config_loads = lambda: (1, 0)
    stats.record("edge", _decision("remote_address", Hits(2, within=2, near=1)), "OK")
    stats.record("edge", Decision(OK, (DescriptorVerdict(),), known=False), "OK")  # edge is known...
    stats.record("gone", Decision(OK, (DescriptorVerdict(), DescriptorVerdict()), known=False), "OK")
    first = dict(sink.take())
    assert first == {
        "ratelimit.service.rate_limit.edge.remote_address.total_hits": 2,
        "ratelimit.service.rate_limit.edge.remote_address.within_limit": 2,
        "ratelimit.service.rate_limit.edge.remote_address.near_limit": 1,
        "ratelimit.service.rate_limit.edge.domain_not_found": 1,
        "ratelimit.service.rate_limit.gone.domain_not_found": 2,
        "ratelimit.service.config_load_success": 1,
        "ratelimit_server.ShouldRateLimit.total_requests": 3,
    }
    assert sink.take() == []  # nothing new
    stats.record("edge", _decision("remote_address", Hits(1, over=1)), "OVER_LIMIT")
    stats.failed("edge", "INVALID_ARGUMENT", known=True)
    assert dict(sink.take()) == {
        "ratelimit.service.rate_limit.edge.remote_address.total_hits": 1,
        "ratelimit.service.rate_limit.edge.remote_address.over_limit": 1,
        "ratelimit.service.call.should_rate_limit.service_error": 1,
        "ratelimit_server.ShouldRateLimit.total_requests": 2,
    }


def test_lines_are_packed_into_datagrams_under_the_size() -> None:
    lines = [f"ratelimit.service.rate_limit.d.key_{i:04}.total_hits:1|c" for i in range(200)]
    datagrams = list(_datagrams(lines))
    assert all(len(d) <= 1400 for d in datagrams) and len(datagrams) > 1
    assert b"\n".join(datagrams).split(b"\n") == [line.encode() for line in lines]
    assert list(_datagrams(["x" * 2000])) == [b"x" * 2000]  # a longer line goes alone


def test_the_sink_sends_to_statsd_and_drops_what_it_cannot_send() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        stats = RateLimitStats()
        stats.record("edge", _decision("user_ann", Hits(3, within=3)), "OK")

        async def scenario() -> None:
            sink = StatsdSink(stats, f"127.0.0.1:{receiver.getsockname()[1]}", 0.01)
            sink.start()
            await asyncio.sleep(0.1)
            await sink.close()

        asyncio.run(scenario())
        received = receiver.recv(65_535).decode().split("\n")
    assert "ratelimit.service.rate_limit.edge.user_ann.total_hits:3|c" in received

    # No one listening: each send fails (ECONNREFUSED on a connected socket), is counted, and the next
    # one tries again; nothing is raised.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    sink = StatsdSink(stats, f"127.0.0.1:{port}", 10.0)
    for _ in range(3):
        sink._send([("a.b", 1)])
    assert sink.dropped >= 1


def test_redis_errors_count_requests_and_names_that_sanitize_alike_add_up() -> None:
    stats = RateLimitStats()
    sink = StatsdSink(stats, "127.0.0.1:9", 10.0)
    failed = Decision(OK, (DescriptorVerdict(), DescriptorVerdict()), backend_errors=2)
    stats.record("edge", failed, "OK")
    stats.failed("edge", "UNAVAILABLE", known=True)
    stats.record("edge", _decision("ip_10.0.0.1", Hits(1, within=1)), "OK")
    stats.record("edge", _decision("ip_10_0_0_1", Hits(2, within=2)), "OK")
    sent = dict(sink.take())
    assert sent["ratelimit.service.call.should_rate_limit.redis_error"] == 2  # two requests, three limits
    assert sent["ratelimit.service.rate_limit.edge.ip_10_0_0_1.total_hits"] == 3
