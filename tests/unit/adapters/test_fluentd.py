"""fluentd: logentry instances as Fluentd events (tag, EventTime, record with converted values), pushes
in writes of at most maxBatchSizeBytes, the bounded buffer, retry and reconnection, params.

Events are read by a small forward-protocol (message mode) receiver on 127.0.0.1 here;
tests/integration/test_fluentd.py runs the same against a real FluentServer behind a real mixerd.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import yaml

from mixerd.adapter import Env, InstanceInfo, ValueType
from mixerd.attribute.values import Duration, Timestamp
from mixerd.config import load_snapshot
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import collect_adapters, load_adapters, make_plugin_manager
from mixerd.templates import LogEntryInstance
from mixerd_adapters.fluentd import FluentdHandler, Params, build, mixerd_adapter_info
from mixerd_adapters.fluentd import handler as handler_module
from mixerd_adapters.fluentd.record import event, value
from mixerd_adapters.fluentd.sender import Sender

HANDLER = "fluentd.handler.istio-system"
ACCESS = "accesslog.instance.istio-system"
T0 = Timestamp.parse("2026-11-20T10:00:00.123456789Z")
T0_TIME = [T0.seconds, T0.nanos]
IP4 = bytes([10, 0, 0, 1])


def _event_time(code: int, data: bytes) -> Any:
    assert code == 0  # Fluentd's EventTime extension type
    return list(struct.unpack(">II", data))


def unpack(data: bytes) -> list[Any]:
    unpacker = msgpack.Unpacker(ext_hook=_event_time, raw=False)
    unpacker.feed(data)
    return list(unpacker)


class ForwardReceiver:
    """A minimal Fluentd forward-protocol receiver (message mode), stoppable and restartable on its port."""

    def __init__(self) -> None:
        self.port = 0
        self.events: list[list[Any]] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> ForwardReceiver:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self._conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        unpacker = msgpack.Unpacker(ext_hook=_event_time, raw=False)
        while True:
            try:
                data = conn.recv(65_536)
            except OSError:
                return
            if not data:
                return
            unpacker.feed(data)
            with self._lock:
                self.events.extend(unpacker)

    def received(self) -> list[list[Any]]:
        with self._lock:
            return list(self.events)

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, frees the port
            self._listener.close()
            self._listener = None
        for conn in self._conns:
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()


@pytest.fixture
def receiver():
    r = ForwardReceiver().start()
    yield r
    r.stop()


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(handler_module, "RETRY_INITIAL_S", 0.01)
    monkeypatch.setattr(handler_module, "RETRY_MAX_S", 0.02)


def params(address: str, **more: Any) -> Params:
    return read_params(Params, {"address": address, "pushIntervalDuration": "10ms", **more})


def make_env(p: Params, instances: dict[str, InstanceInfo] | None = None) -> Env:
    return Env(handler=HANDLER, adapter="fluentd", params=p, instances=instances or {})


def run(
    p: Params,
    scenario: Callable[[FluentdHandler], Awaitable[Any]],
    instances: dict[str, InstanceInfo] | None = None,
    **handler_args: Any,
) -> Any:
    """Build a handler in a running loop, run the scenario, close it as the runtime does."""

    async def main() -> Any:
        env = make_env(p, instances)
        handler = FluentdHandler(env, **handler_args)
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


def wait_for(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def entry(severity: str = "Info", name: str = ACCESS, **variables: Any) -> LogEntryInstance:
    return LogEntryInstance(name=name, variables=variables, timestamp=T0, severity=severity)


# -- events ----------------------------------------------------------------------------------------------


def test_the_tag_is_the_instance_name_and_the_record_is_variables_then_severity():
    assert event(entry("Warning", code=200, path="/a"), frozenset(), False) == (
        ACCESS,
        {"code": 200, "path": "/a", "severity": "Warning"},
    )


def test_a_tag_variable_becomes_the_tag_and_the_instance_name_goes_into_the_record():
    assert event(entry(tag="mesh.access", code=200), frozenset(), False) == (
        "mesh.access",
        {"code": 200, "name": ACCESS, "severity": "Info"},
    )
    assert event(entry(tag=7), frozenset(), False)[0] == "7"
    # with a tag, `name` is the instance's name; `severity` is always the instance's
    clashing = LogEntryInstance(
        name=ACCESS, variables={"tag": "t", "name": "x", "severity": "y"}, timestamp=T0, severity="Error"
    )
    assert event(clashing, frozenset(), False) == ("t", {"name": ACCESS, "severity": "Error"})


@pytest.mark.parametrize(
    ("v", "is_ip", "integer_duration", "expected"),
    [
        ("GET", False, False, "GET"),
        (200, False, False, 200),
        (0.25, False, False, 0.25),
        (True, False, False, True),
        (IP4, True, False, "10.0.0.1"),
        (IP4, False, False, "10.0.0.1"),  # 4 or 16 bytes without a known type: an address too
        (bytes(10) + b"\xff\xff" + IP4, True, False, "10.0.0.1"),
        (bytes.fromhex("20010db8000000000000000000000001"), True, False, "2001:db8::1"),
        (b"\x01\x02\x03", False, False, b"\x01\x02\x03"),
        (T0, False, False, "2026-11-20T10:00:00.123456789Z"),
        (Timestamp.parse("2026-11-20T10:00:00Z"), False, False, "2026-11-20T10:00:00Z"),
        (Duration(1_500_000_000), False, False, "1.5s"),
        (Duration(1_500_000_000), False, True, 1500),
        (Duration(2_999_999), False, True, 2),  # whole milliseconds, truncated
        (Duration(-2_999_999), False, True, -2),  # toward zero
        ({"b": Duration(1_000_000), "a": "x"}, False, False, {"b": "1ms", "a": "x"}),
        ({"b": Duration(1_000_000)}, False, True, {"b": 1}),
        (None, False, False, None),
    ],
)
def test_values_in_the_record(v, is_ip, integer_duration, expected):
    assert value(v, is_ip, integer_duration) == expected


def test_an_event_is_packed_in_message_mode_with_a_nanosecond_event_time():
    sender = Sender("127.0.0.1", 1, 1.0)
    assert unpack(sender.pack("t", T0, {"a": 1})) == [["t", T0_TIME, {"a": 1}]]
    assert unpack(sender.pack("t", -5, {})) == [["t", [0, 0], {}]]  # before 1970: the epoch


# -- pushes ----------------------------------------------------------------------------------------------


def test_events_reach_fluentd_with_ip_variables_as_text(receiver):
    instances = {ACCESS: InstanceInfo(ACCESS, "logentry", {"variables": {"src": ValueType.IP_ADDRESS}})}

    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry(
            [
                entry(src=IP4, code=200, latency=Duration(12_000_000)),
                entry("Error", src=b"\x00" * 16, tag="errors", code=503, latency=Duration(1_500_000_000)),
            ]
        )
        await until(lambda: len(receiver.received()) == 2)
        assert h.delivery_stats() == {"queued": 2, "sent": 2, "dropped": 0, "failed": 0}

    run(params(receiver.address, integerDuration=True), scenario, instances)
    assert receiver.received() == [
        [ACCESS, T0_TIME, {"src": "10.0.0.1", "code": 200, "latency": 12, "severity": "Info"}],
        ["errors", T0_TIME, {"src": "::", "code": 503, "latency": 1500, "name": ACCESS, "severity": "Error"}],
    ]


class RecordingSender(Sender):
    """Records each write (as the events in it); fails the writes whose number is in `fail`, once each."""

    def __init__(self, *fail: int) -> None:
        super().__init__("127.0.0.1", 1, 1.0)
        self.fail = set(fail)
        self.attempts = 0
        self.writes: list[list[Any]] = []

    def write(self, data: bytes) -> None:
        self.attempts += 1
        if self.attempts in self.fail:
            self.fail.discard(self.attempts)
            raise ConnectionError("Fluentd at 127.0.0.1:1: [Errno 111] Connection refused")
        self.writes.append([record["n"] for _, _, record in unpack(data)])


def test_a_push_writes_at_most_max_batch_size_bytes_at_a_time():
    sender = RecordingSender()
    size = len(sender.pack(ACCESS, T0, {"n": 0, "severity": "Info"}))

    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(n=i) for i in range(7)])
        await h.flush()

    run(params("127.0.0.1:1", maxBatchSizeBytes=3 * size), scenario, sender=sender)
    assert sender.writes == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_retried_push_skips_the_writes_that_went_out(fast_retries):
    sender = RecordingSender(2)
    size = len(sender.pack(ACCESS, T0, {"n": 0, "severity": "Info"}))

    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(n=i) for i in range(6)])
        await h.flush()
        assert h.delivery_stats() == {"queued": 6, "sent": 6, "dropped": 0, "failed": 1}

    run(params("127.0.0.1:1", maxBatchSizeBytes=2 * size), scenario, sender=sender)
    assert sender.writes == [[0, 1], [2, 3], [4, 5]]  # [2, 3] failed once and was written once


def test_a_push_happens_when_half_the_buffer_is_waiting():
    sender = RecordingSender()

    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(n=i) for i in range(3)])
        await until(lambda: sender.writes)  # long before the push interval (1 minute)

    run(params("127.0.0.1:1", instanceBufferSize=6, pushIntervalDuration="1m"), scenario, sender=sender)
    assert sender.writes == [[0, 1, 2]]


def test_while_fluentd_is_down_the_buffer_fills_then_drops_and_counts(fast_retries, caplog):
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()

    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(n=i) for i in range(5)])
        await until(lambda: h.delivery_stats()["failed"] >= 2)
        stats = h.delivery_stats()
        assert (stats["queued"], stats["sent"], stats["dropped"]) == (3, 0, 2)

    run(params(address, instanceBufferSize=3), scenario)
    assert f"{HANDLER}: delivery queue full (3 items); 1 dropped so far" in caplog.messages
    refused = f"Fluentd at {address}: [Errno 111] Connection refused"
    # batches of half the buffer (1 event), retried
    assert (
        f"{HANDLER}: sending 1 items failed (1 attempts so far; retry in 0.0s): {refused}" in caplog.messages
    )
    # at close (after the runtime cancelled the delivery task) one last try, then the rest is dropped
    assert caplog.messages[-1] == f"{HANDLER}: final delivery of 1 items failed: {refused}"


def test_delivery_resumes_on_a_new_connection_when_fluentd_is_back(receiver, fast_retries):
    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(n=1)])
        await until(lambda: len(receiver.received()) == 1)
        receiver.stop()
        h.handle_logentry([entry(n=2)])
        await until(lambda: h.delivery_stats()["failed"] >= 1)
        receiver.start()  # same port
        h.handle_logentry([entry(n=3)])
        await until(lambda: len(receiver.received()) == 3)
        assert h.delivery_stats()["sent"] == 3

    run(params(receiver.address), scenario)
    assert [record["n"] for _, _, record in receiver.received()] == [1, 2, 3]


def test_a_record_that_cannot_be_encoded_is_skipped_counted_and_logged(receiver, caplog):
    async def scenario(h: FluentdHandler) -> None:
        h.handle_logentry([entry(path="\udcff"), entry(path="/ok")])
        await until(lambda: len(receiver.received()) == 1)
        assert h.skipped == 1 and h.delivery_stats()["queued"] == 1

    run(params(receiver.address), scenario)
    assert receiver.received()[0][2] == {"path": "/ok", "severity": "Info"}
    (message,) = [m for m in caplog.messages if "cannot be sent" in m]
    assert message.startswith(f"{HANDLER}: {ACCESS} cannot be sent to Fluentd: ")
    assert message.endswith(" (1 skipped so far)")


def test_close_pushes_what_is_queued_and_can_be_called_twice(receiver):
    async def main() -> FluentdHandler:
        env = make_env(params(receiver.address, pushIntervalDuration="1m"))
        h = build(env)
        h.handle_logentry([entry(n=1)])
        await env.cancel_background()  # what the runtime does before close()
        await h.close()
        await h.close()
        return h

    h = asyncio.run(main())
    wait_for(receiver.received)  # sent; the receiver's thread may still be reading it
    assert [record["n"] for _, _, record in receiver.received()] == [1]
    assert h.delivery_stats() == {"queued": 1, "sent": 1, "dropped": 0, "failed": 0}
    with pytest.raises(ConnectionError, match=r"the sender is closed"):
        h._sender.write(b"")


def test_close_with_fluentd_down_gives_up_in_time_and_counts_the_loss(caplog):
    caplog.set_level(logging.WARNING)

    async def main() -> FluentdHandler:
        env = make_env(params("127.0.0.1:1", pushIntervalDuration="1m"))
        h = build(env)
        h.handle_logentry([entry(n=1), entry(n=2)])
        await env.cancel_background()
        await h.close()
        return h

    h = asyncio.run(asyncio.wait_for(main(), 5))
    assert h.delivery_stats() == {"queued": 2, "sent": 0, "dropped": 2, "failed": 1}
    assert any(m.startswith(f"{HANDLER}: final delivery of 2 items failed: ") for m in caplog.messages)


# -- params and registration -----------------------------------------------------------------------------


def test_defaults_are_mixers():
    assert params_to_dict(read_params(Params, None)) == {
        "address": "localhost:24224",
        "integerDuration": False,
        "instanceBufferSize": 1024,
        "maxBatchSizeBytes": 8388608,
        "pushIntervalDuration": "1m0s",
        "pushTimeoutDuration": "1m0s",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"address": "fluentd"}, [(".address", "expected host:port, got 'fluentd'")]),
        ({"address": "fluentd:99999"}, [(".address", "port must be between 1 and 65535, got 99999")]),
        (
            {"address": "[::1]:24224"},
            [(".address", "the Fluentd client connects over IPv4 only: use an IPv4 address, not ::1")],
        ),
        (
            {"instanceBufferSize": 0, "maxBatchSizeBytes": -1, "pushIntervalDuration": "0s"},
            [
                (".instanceBufferSize", "must be greater than 0, got 0"),
                (".maxBatchSizeBytes", "must be greater than 0, got -1"),
                (".pushIntervalDuration", "must be greater than 0, got 0s"),
            ],
        ),
        ({"pushTimeoutDuration": "-1s"}, [(".pushTimeoutDuration", "must be greater than 0, got -1s")]),
    ],
)
def test_params_problems(raw, expected):
    with pytest.raises(ParamsError) as e:
        read_params(Params, raw)
    assert e.value.problems == expected


def test_a_missing_host_means_localhost():
    assert read_params(Params, {"address": ":24224"}).address == ":24224"


def test_the_adapter_registers_through_the_plugin_manager():
    adapters = collect_adapters(make_plugin_manager(builtins=["mixerd_adapters.fluentd"], entry_points=False))
    info = adapters["fluentd"]
    assert (info.name, info.templates, info.params) == ("fluentd", ("logentry",), Params)
    assert info == mixerd_adapter_info()


def test_the_docs_example_is_a_valid_config(tmp_path: Path):
    text = (Path(__file__).parents[3] / "docs" / "adapters" / "fluentd.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    handler = next(d for d in yaml.safe_load_all(example) if d["kind"] == "handler")
    assert (handler["apiVersion"], handler["spec"]["compiledAdapter"]) == (
        "config.istio.io/v1alpha2",
        "fluentd",
    )
    (tmp_path / "fluentd.yaml").write_text(example)
    snapshot = load_snapshot(tmp_path, {**load_adapters(), "fluentd": mixerd_adapter_info()})
    assert sorted(snapshot.handlers) == ["fluentd.handler.istio-system"]
