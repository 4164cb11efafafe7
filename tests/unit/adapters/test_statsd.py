"""statsd: name templates, exact statsd lines per metric type, datagram packing, sampling, background
delivery (flush interval, retry of refused datagrams, drops), params and config validation.

Datagrams are read from a real UDP socket on 127.0.0.1; tests/integration/test_statsd.py runs the same
against the Etsy statsd daemon behind a real mixerd.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mixerd.adapter import Env, InstanceInfo, ValueType
from mixerd.attribute.values import Duration, Timestamp
from mixerd.config import load_snapshot
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import collect_adapters, load_adapters, make_plugin_manager
from mixerd.templates import MetricInstance
from mixerd_adapters.statsd import MetricType, Params, StatsdHandler, build, mixerd_adapter_info, validate
from mixerd_adapters.statsd import handler as handler_module
from mixerd_adapters.statsd.template import TemplateError, go_float, go_text, parse
from mixerd_adapters.statsd.udp import packets

HANDLER = "statsd.handler.istio-system"
COUNT = "requestcount.instance.istio-system"
SIZE = "requestsize.instance.istio-system"
LATENCY = "latency.instance.istio-system"
INFLIGHT = "inflight.instance.istio-system"
MS = 1_000_000

METRICS = {
    COUNT: {"type": "COUNTER", "nameTemplate": "requests.{{.method}}.{{.code}}"},
    SIZE: {"type": "DISTRIBUTION", "nameTemplate": "size"},
    LATENCY: {"type": "DISTRIBUTION", "nameTemplate": "latency.{{.code}}"},
    INFLIGHT: {"type": "GAUGE"},  # no template: the instance name
}


class Receiver:
    """A UDP socket on a free loopback port: the datagrams a handler sends."""

    def __init__(self, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def read(self) -> list[bytes]:
        while True:
            try:
                self.datagrams.append(self.sock.recv(65_535))
            except BlockingIOError:
                return self.datagrams

    def lines(self) -> list[str]:
        return [line for d in self.read() for line in d.decode().split("\n")]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(handler_module, "RETRY_INITIAL_S", 0.01)
    monkeypatch.setattr(handler_module, "RETRY_MAX_S", 0.02)


def params(address: str, **more: Any) -> Params:
    return read_params(Params, {"address": address, "metrics": METRICS, **more})


def make_env(p: Params) -> Env:
    return Env(handler=HANDLER, adapter="statsd", params=p, instances={})


def run(p: Params, scenario: Callable[[StatsdHandler], Awaitable[Any]], **handler_args: Any) -> Any:
    """Build a handler in a running loop, run the scenario, close it as the runtime does."""

    async def main() -> Any:
        env = make_env(p)
        handler = StatsdHandler(env, **handler_args)
        try:
            return await scenario(handler)
        finally:
            await env.cancel_background()
            await handler.close()

    return asyncio.run(asyncio.wait_for(main(), 10))


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def metric(name: str, value: Any, **dimensions: Any) -> MetricInstance:
    return MetricInstance(name=name, value=value, dimensions=dimensions)


# -- name templates ------------------------------------------------------------------------------------


def test_a_template_is_literal_text_and_dimension_references():
    t = parse("{{.apiMethod}}-{{ .responseCode }}.total")
    assert t.parts == ((True, "apiMethod"), (False, "-"), (True, "responseCode"), (False, ".total"))
    assert t.references == ("apiMethod", "responseCode")
    assert t.render({"apiMethod": "GET", "responseCode": 200}) == "GET-200.total"
    assert parse("plain").render({}) == "plain"
    assert parse("").parts == ()


def test_trim_markers_remove_the_white_space_on_their_side():
    assert parse("a  {{- .x -}}  b").render({"x": 1}) == "a1b"
    assert parse("a {{- .x }} b").render({"x": 1}) == "a1 b"
    assert parse("a {{.x -}}\n b").render({"x": 1}) == "a 1b"


def test_rendered_values_lose_characters_that_break_a_statsd_line():
    assert parse("p.{{.path}}").render({"path": "/a:b|c\nd"}) == "p./a_b_c_d"


def test_a_key_the_dimensions_lack_renders_as_go_does():
    assert parse("x.{{.missing}}").render({}) == "x.<no value>"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{.a", "unclosed action '{{.a'"),
        ("x.{{.a}}.{{.b", "unclosed action '{{.b'"),
        ("{{if .a}}x{{end}}", "unsupported action '{{if .a}}': only {{.dimension}} references are supported"),
        ("{{.a.b}}", "unsupported action '{{.a.b}}': only {{.dimension}} references are supported"),
        (
            "{{.a | printf}}",
            "unsupported action '{{.a | printf}}': only {{.dimension}} references are supported",
        ),
        ("{{.}}", "unsupported action '{{.}}': only {{.dimension}} references are supported"),
        ("{{1x}}", "unsupported action '{{1x}}': only {{.dimension}} references are supported"),
    ],
)
def test_templates_mixerd_cannot_render_are_refused(text, message):
    with pytest.raises(TemplateError) as e:
        parse(text)
    assert str(e.value) == message


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("GET", "GET"),
        (200, "200"),
        (-3, "-3"),
        (True, "true"),
        (0.5, "0.5"),
        (100.0, "100"),
        (123456.5, "123456.5"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-2.5e-7, "-2.5e-07"),
        (0.0, "0"),
        (float("nan"), "NaN"),
        (float("-inf"), "-Inf"),
        (Duration(1_500_000_000), "1.5s"),
        (Duration(10 * MS), "10ms"),
        (Timestamp.parse("2026-11-20T10:00:00.5Z"), "2026-11-20 10:00:00.5 +0000 UTC"),
        (Timestamp.parse("2026-11-20T10:00:00Z"), "2026-11-20 10:00:00 +0000 UTC"),
        (bytes([10, 0, 0, 1]), "10.0.0.1"),
        (bytes(10) + b"\xff\xff" + bytes([10, 0, 0, 1]), "10.0.0.1"),
        (bytes.fromhex("20010db8000000000000000000000001"), "2001:db8::1"),
        (b"\x01\x02", "[1 2]"),
        ({"b": "2", "a": "1"}, "map[a:1 b:2]"),
        (None, "<no value>"),
    ],
)
def test_values_render_as_go_prints_them(value, text):
    assert go_text(value) == text


def test_go_float_agrees_with_go_for_the_shortest_digits():
    assert [go_float(x) for x in (0.1, 1 / 3, 999999.0, 1e21, 5e-324)] == [
        "0.1",
        "0.3333333333333333",
        "999999",
        "1e+21",
        "5e-324",
    ]


# -- params and config validation ------------------------------------------------------------------------


def test_defaults_are_mixers():
    assert params_to_dict(read_params(Params, None)) == {
        "address": "localhost:8125",
        "prefix": "",
        "flushDuration": "300ms",
        "flushBytes": 512,
        "samplingRate": 1.0,
        "metrics": {},
    }


def test_metrics_read_by_type_name_and_round_trip():
    p = read_params(Params, {"metrics": METRICS, "flush_duration": "1s", "samplingRate": 0.25})
    assert p.metrics[COUNT].type == MetricType.COUNTER
    assert p.metrics[INFLIGHT].name_template == ""
    assert read_params(Params, params_to_dict(p)) == p


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"address": "statsd"}, [(".address", "expected host:port, got 'statsd'")]),
        ({"address": "statsd:http"}, [(".address", "expected host:port, got 'statsd:http'")]),
        ({"address": "statsd:0"}, [(".address", "port must be between 1 and 65535, got 0")]),
        (
            {"address": "::1:8125"},
            [(".address", "an IPv6 address needs brackets ([::1]:8125), got '::1:8125'")],
        ),
        (
            {"flushDuration": "0s", "flushBytes": 0, "samplingRate": 1.5},
            [
                (".flushDuration", "must be greater than 0, got 0s"),
                (".flushBytes", "must be between 1 and 65507 (the largest UDP payload), got 0"),
                (".samplingRate", "must be between 0 and 1, got 1.5"),
            ],
        ),
        ({"samplingRate": "nan"}, [(".samplingRate", "must be between 0 and 1, got nan")]),
        ({"prefix": "a:b"}, [(".prefix", "must not contain ':': they would break the statsd line format")]),
        (
            {"metrics": {COUNT: {"nameTemplate": "x|{{.a}}"}}},
            [
                (f".metrics[{COUNT!r}].type", "must be COUNTER, GAUGE or DISTRIBUTION"),
                (
                    f".metrics[{COUNT!r}].nameTemplate",
                    "must not contain '|': they would break the statsd line format",
                ),
            ],
        ),
        (
            {"metrics": {COUNT: {"type": "HISTOGRAM", "nameTemplate": "{{.a"}}},
            [
                (
                    f".metrics[{COUNT!r}].type",
                    "expected one of UNKNOWN, COUNTER, GAUGE, DISTRIBUTION, got 'HISTOGRAM'",
                )
            ],
        ),
        (
            {"metrics": {COUNT: {"type": "COUNTER", "nameTemplate": "{{.a"}}},
            [(f".metrics[{COUNT!r}].nameTemplate", "cannot use template '{{.a': unclosed action '{{.a'")],
        ),
    ],
)
def test_params_problems(raw, expected):
    with pytest.raises(ParamsError) as e:
        read_params(Params, raw)
    assert e.value.problems == expected


def test_bracketed_ipv6_and_a_missing_host_are_addresses():
    assert read_params(Params, {"address": "[::1]:8125"}).address == "[::1]:8125"
    assert read_params(Params, {"address": ":8125"}).address == ":8125"


def _metric_info(name: str, **dimensions: ValueType) -> InstanceInfo:
    return InstanceInfo(name, "metric", {"value": ValueType.INT64, "dimensions": dimensions})


def test_validate_wants_an_entry_per_metric_instance_and_known_dimensions():
    p = read_params(Params, {"metrics": {COUNT: METRICS[COUNT], INFLIGHT: METRICS[INFLIGHT]}})
    instances = {
        COUNT: _metric_info(COUNT, method=ValueType.STRING, status=ValueType.INT64),
        INFLIGHT: _metric_info(INFLIGHT),
        SIZE: _metric_info(SIZE),
    }
    assert validate(p, instances) == [
        (
            f".metrics[{COUNT!r}].nameTemplate",
            f"{{{{.code}}}}: instance {COUNT!r} has no dimension 'code' (its dimensions: method, status)",
        ),
        (".metrics", f"no entry for metric instance {SIZE!r} (configured: {INFLIGHT}, {COUNT})"),
    ]
    instances[COUNT] = _metric_info(COUNT, method=ValueType.STRING, code=ValueType.INT64)
    del instances[SIZE]
    assert validate(p, instances) == []


# -- lines and datagrams -----------------------------------------------------------------------------------


def test_each_type_makes_the_statsd_line_mixer_sent(receiver):
    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric(
            [
                metric(COUNT, 3, method="GET", code=200),
                metric(SIZE, 512, code=200),  # a DISTRIBUTION of an integer: a count
                metric(LATENCY, Duration(12_500_000), code=200),  # of a duration: a timing in ms
                metric(INFLIGHT, 7),
                metric(INFLIGHT, -2),  # a negative gauge: set to 0, then add -2 (a bare -2 is a change)
            ]
        )
        assert await h.flush()
        await until(lambda: len(receiver.lines()) == 6)

    run(params(receiver.address, prefix="mesh"), scenario)
    assert receiver.datagrams == [
        b"mesh.requests.GET.200:3|c\nmesh.size:512|c\nmesh.latency.200:12.500000|ms\n"
        + f"mesh.{INFLIGHT}:7|g\nmesh.{INFLIGHT}:0|g\nmesh.{INFLIGHT}:-2|g".encode()
    ]


def test_without_a_prefix_the_name_is_the_rendered_template(receiver):
    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, 1, method="POST", code=503)])
        await h.flush()
        await until(receiver.read)

    run(params(receiver.address), scenario)
    assert receiver.datagrams == [b"requests.POST.503:1|c"]


def test_values_a_type_cannot_take_are_skipped_counted_and_logged(receiver, caplog):
    caplog.set_level(logging.WARNING, logger="mixerd.adapter.statsd")

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric(
            [
                metric(INFLIGHT, 1.5),
                metric(COUNT, True, method="GET", code=200),
                metric(COUNT, Duration(MS), method="GET", code=200),
                metric(SIZE, "12", code=200),
                metric(COUNT, 1, method="GET", code=200),
            ]
        )
        await h.flush()
        await until(receiver.read)
        assert h.skipped == 4
        assert h.delivery_stats() == {"queued": 1, "sent": 1, "dropped": 0, "failed": 0}

    run(params(receiver.address), scenario)
    assert receiver.datagrams == [b"requests.GET.200:1|c"]
    # logged at the 1st skip, then at the 10th, 100th...: not once per value
    assert [r.getMessage() for r in caplog.records] == [
        f"{HANDLER}: not sent: {INFLIGHT}: GAUGE needs an integer value, got float 1.5 (1 skipped so far)"
    ]


def test_a_line_too_long_for_a_datagram_is_skipped(receiver, caplog):
    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric(
            [metric(COUNT, 1, method="é" * 33_000, code=200), metric(COUNT, 2, method="GET", code=200)]
        )
        await h.flush()
        await until(receiver.read)
        assert h.skipped == 1

    run(params(receiver.address), scenario)
    assert receiver.datagrams == [b"requests.GET.200:2|c"]
    assert caplog.messages == [
        f"{HANDLER}: not sent: requests.{'é' * 33_000}.200: a line too long for a UDP datagram "
        "(1 skipped so far)"
    ]


def test_an_instance_without_an_entry_is_skipped_quietly(receiver, caplog):
    caplog.set_level(logging.DEBUG, logger="mixerd.adapter.statsd")

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric("other.instance.default", 1)])
        assert h.skipped == 1 and h.delivery_stats()["queued"] == 0

    run(params(receiver.address), scenario)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", f"{HANDLER}: no metrics entry for other.instance.default")
    ]


def test_sampling_sends_a_share_of_the_values_marked_with_the_rate(receiver, monkeypatch):
    draws = iter([0.1, 0.9, 0.25, 0.3])  # the statsd library sends when the draw is <= the rate
    monkeypatch.setattr(random, "random", lambda: next(draws))

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, i, method="GET", code=200) for i in range(1, 5)])
        await h.flush()
        await until(receiver.read)

    run(params(receiver.address, samplingRate=0.25), scenario)
    assert receiver.datagrams == [b"requests.GET.200:1|c|@0.25\nrequests.GET.200:3|c|@0.25"]


def test_lines_are_packed_into_datagrams_of_at_most_flush_bytes():
    lines = ["a:1|c", "bb:2|c", "c:3|c", "a-very-long-line:1|c", "d:4|c"]
    assert list(packets(lines, 12)) == [
        (b"a:1|c\nbb:2|c", 2),  # 12 bytes: exactly the limit
        (b"c:3|c", 1),
        (b"a-very-long-line:1|c", 1),  # longer than the limit: alone
        (b"d:4|c", 1),
    ]
    assert list(packets([], 12)) == []


def test_a_handler_sends_datagrams_no_larger_than_flush_bytes(receiver):
    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, i, method="GET", code=200) for i in range(10)])
        await h.flush()
        await until(lambda: len(receiver.lines()) == 10)

    run(params(receiver.address, flushBytes=64), scenario)
    assert [len(d) for d in receiver.datagrams] == [
        62,
        62,
        62,
        20,
    ]  # three 20-byte lines and two newlines fit in 64
    assert receiver.lines() == [f"requests.GET.200:{i}|c" for i in range(10)]


def test_lines_go_out_within_the_flush_duration_without_being_asked(receiver):
    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, 1, method="GET", code=200)])
        assert receiver.read() == []  # the request path only queues
        await until(receiver.read, timeout=2)

    run(params(receiver.address, flushDuration="20ms"), scenario)
    assert receiver.datagrams == [b"requests.GET.200:1|c"]


def test_close_sends_what_is_queued_and_can_be_called_twice(receiver):
    async def main() -> StatsdHandler:
        env = make_env(params(receiver.address, flushDuration="1m"))
        h = build(env)
        h.handle_metric([metric(COUNT, 5, method="GET", code=200)])
        await env.cancel_background()  # what the runtime does before close()
        await h.close()
        await h.close()
        return h

    h = asyncio.run(main())
    assert receiver.read() == [b"requests.GET.200:5|c"]
    assert h.delivery_stats() == {"queued": 1, "sent": 1, "dropped": 0, "failed": 0}


# -- a receiver that is not there -----------------------------------------------------------------------


def test_a_refused_datagram_is_retried_until_the_receiver_is_back(fast_retries):
    gone = Receiver()
    port = gone.port
    gone.close()  # nothing listens on the port now: the kernel refuses datagrams sent there
    back: list[Receiver] = []

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, 1, method="GET", code=200), metric(INFLIGHT, 4)])
        await until(lambda: h.delivery_stats()["failed"] >= 2)
        assert h.delivery_stats()["sent"] == 0
        back.append(Receiver(port))
        await until(lambda: h.delivery_stats()["sent"] == 2)
        await until(back[0].read)

    try:
        run(params(f"127.0.0.1:{port}", flushDuration="10ms"), scenario)
        assert back[0].datagrams == [f"requests.GET.200:1|c\n{INFLIGHT}:4|g".encode()]
    finally:
        for r in back:
            r.close()


def test_while_the_receiver_is_away_a_full_queue_drops_and_counts(fast_retries, monkeypatch, caplog):
    monkeypatch.setattr(handler_module, "MAX_QUEUED_LINES", 3)
    gone = Receiver()
    gone.close()

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, i, method="GET", code=200) for i in range(5)])
        await until(lambda: h.delivery_stats()["failed"] >= 1)
        assert h.delivery_stats() == {
            "queued": 3,
            "sent": 0,
            "dropped": 2,
            "failed": h.delivery_stats()["failed"],
        }

    run(params(gone.address, flushDuration="10ms"), scenario)
    assert f"{HANDLER}: delivery queue full (3 items); 1 dropped so far" in caplog.messages


class FlakySender:
    """Records datagrams; refuses the ones whose number is in `refuse` (each only once)."""

    def __init__(self, *refuse: int) -> None:
        self.refuse = set(refuse)
        self.attempts = 0
        self.sent: list[bytes] = []

    def send(self, datagram: bytes) -> None:
        self.attempts += 1
        if self.attempts in self.refuse:
            self.refuse.discard(self.attempts)
            raise ConnectionRefusedError(111, "Connection refused")
        self.sent.append(datagram)

    def close(self) -> None:
        pass


def test_a_retry_skips_the_datagrams_that_went_out_before_the_failure(fast_retries):
    sender = FlakySender(2)

    async def scenario(h: StatsdHandler) -> None:
        h.handle_metric([metric(COUNT, i, method="GET", code=200) for i in range(6)])
        await h.flush()
        assert h.delivery_stats() == {"queued": 6, "sent": 6, "dropped": 0, "failed": 1}

    run(params("127.0.0.1:1", flushBytes=42), scenario, sender=sender)
    # two lines per datagram; the second datagram failed once and is the only one sent again
    assert sender.sent == [
        b"requests.GET.200:0|c\nrequests.GET.200:1|c",
        b"requests.GET.200:2|c\nrequests.GET.200:3|c",
        b"requests.GET.200:4|c\nrequests.GET.200:5|c",
    ]


# -- registration and the docs ---------------------------------------------------------------------------


def test_the_adapter_registers_through_the_plugin_manager():
    adapters = collect_adapters(make_plugin_manager(builtins=["mixerd_adapters.statsd"], entry_points=False))
    info = adapters["statsd"]
    assert (info.name, info.templates, info.params, info.validate) == (
        "statsd",
        ("metric",),
        Params,
        validate,
    )
    assert info == mixerd_adapter_info()


def test_the_docs_example_is_a_valid_config(tmp_path: Path):
    text = (Path(__file__).parents[3] / "docs" / "adapters" / "statsd.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    handler = next(d for d in yaml.safe_load_all(example) if d["kind"] == "handler")
    assert (handler["apiVersion"], handler["spec"]["compiledAdapter"]) == (
        "config.istio.io/v1alpha2",
        "statsd",
    )
    (tmp_path / "statsd.yaml").write_text(example)
    snapshot = load_snapshot(tmp_path, {**load_adapters(), "statsd": mixerd_adapter_info()})
    assert sorted(snapshot.handlers) == ["statsd.handler.istio-system"]
