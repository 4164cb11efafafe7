"""Load shedding: past what mixerd can answer within `shed_latency`, calls get UNAVAILABLE at once.

**What predicts a call's latency here.** grpc.aio asks gRPC core for a method's next call only once it
has taken the previous one, so under load calls queue inside gRPC core, where Python cannot see them:
in bench/overload.py's measurements, with 1,000 calls in flight the event loop's lag stayed under 1 ms
and one or two calls were in Python, while each call waited 0.5 s. Neither lag nor an in-flight count
sees that queue. A call that waits in it does: mixerd sends itself a *probe*, an ordinary call of the
same method, over a Unix socket of the same server (a folder only its user can enter), so it joins the
same queue; its round trip is the queueing delay a call arriving now meets (within a few ms of real
callers' latency), and a probe still waiting is a lower bound that grows by itself. gRPC core's own
counters (channelz) say the same but cost O(connections) per read: 4 ms at 100 connections.

Probes go to the methods with traffic: one per tick (`shed_latency / 2.5`, between 10 and 100 ms)
while a queue is seen (the last delay measured above a quarter of the target, or shedding), otherwise
one every fifth tick once 8 calls came since the last probe (or any call, after a second), none
without traffic. A probe costs about what two cheap calls cost: calm, under 1% of the CPU of the calls
it watches; while a queue stands, 50 probes a second, a few percent of one core.

**The decision** (`Controller`, CoDel's rule applied to this queue): shed a method's calls once its
delay has stood above a target (`shed_latency / 4`) for a whole interval (`shed_latency / 2`), a
standing queue rather than a burst, and go on while it stays above the target. So under sustained
overload the queue is held near the target (admitted and shed calls alike wait about that long, well
within `shed_latency`), and a pause of the whole process (a garbage collection, a busy machine) that
leaves no queue behind sheds nothing: a large measurement is checked at once by another probe.

**The check** is in `add_raw_handlers` (raw_handlers.py), which every front-end registers through: a
server given an `Admission` (`attach`) has its unary handlers wrapped, so a call while shedding is
answered UNAVAILABLE (`SHED_MESSAGE`) before its bytes are parsed, counted in
`mixerd_shed_requests_total{api}`. Long-lived client streams (Envoy's access logs) are never cut: a
new one is refused while any API is shedding, one already open runs on. Health and reflection are not
registered through here and are never shed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import grpc
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

SHED_MESSAGE = "mixerd is overloaded; retry on another replica"

_UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
_log = logging.getLogger(__name__)

#: Calm (no queue seen): probe on every this many ticks, once this many calls came since the last probe
#: or any call came and this many seconds passed.
_CALM_TICKS = 5
_CALM_CALLS = 8
_CALM_SECONDS = 1.0
#: Probes one method may have waiting at once (a stalled server must not pile them up).
_MAX_WAITING = 8
#: A probe gives up after this long (its round trip then still counts as a measurement).
_PROBE_TIMEOUT = 10.0
#: Seconds between log lines about shedding.
_LOG_EVERY = 10.0


class Controller:
    """Decides from observed queueing delays whether to shed (the unit-testable core; no clock of its own).

    CoDel's rule: a queue that has stood above `target` (a quarter of `limit`) for a whole `interval`
    (half of `limit`) is a standing queue, not a burst, and calls are shed while the delay stays above
    the target; within an interval after that, a delay above the target sheds again at once. A single
    observation never sheds, however large: after a pause of the whole process (a garbage collection, a
    busy machine) the first measurement is large, and only the next one tells whether a queue is left.

    `observe(delay, now)` is called with each new estimate of the delay and the time it was made;
    `shedding` is what every call reads.
    """

    def __init__(self, limit: float) -> None:
        if limit <= 0:
            raise ValueError("limit must be positive")
        self.limit = limit
        self.target = limit / 4
        self.interval = limit / 2
        self.shedding = False
        self._above_since: float | None = None
        self._stopped_at = -math.inf

    def observe(self, delay: float, now: float) -> bool:
        """Take one observation; returns whether calls are shed from now on."""
        if delay <= self.target:
            self._above_since = None
            if self.shedding:
                self.shedding = False
                self._stopped_at = now
            return False
        if self._above_since is None:
            self._above_since = now
        if not self.shedding and (
            now - self._above_since >= self.interval  # a standing queue
            or now - self._stopped_at < self.interval  # back right after it was drained
        ):
            self.shedding = True
        return self.shedding


class DelayEstimate:
    """The queueing delay of one method's queue, from its probes: the larger of the last measured round
    trip (forgotten after `memory` seconds) and how long the oldest waiting probe has waited."""

    def __init__(self, memory: float) -> None:
        self._memory = memory
        self._waiting: dict[int, float] = {}  # probe number -> when it was sent (oldest first)
        self._sent = 0
        self.last = 0.0
        self._last_at = -math.inf

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def sent(self, now: float) -> int:
        self._sent += 1
        self._waiting[self._sent] = now
        return self._sent

    def answered(self, probe: int, now: float) -> None:
        sent = self._waiting.pop(probe, None)
        if sent is not None:
            self.last, self._last_at = now - sent, now

    def abandoned(self, probe: int) -> None:
        self._waiting.pop(probe, None)

    def delay(self, now: float) -> float:
        oldest = next(iter(self._waiting.values()), now)
        last = self.last if now - self._last_at <= self._memory else 0.0
        return max(now - oldest, last)


class _Api:
    """One wrapped method: its decision, its probes' measurements, its counts."""

    __slots__ = ("calls", "controller", "estimate", "name", "peak", "probed", "probed_at", "shed", "stub")

    def __init__(self, name: str, limit: float, probed: bool) -> None:
        self.name = name  # "service/method", the metric label
        self.probed = probed
        self.controller = Controller(limit)
        self.estimate = DelayEstimate(memory=limit)
        self.calls = 0  # calls (shed or not) since the last probe was sent
        self.probed_at = -math.inf
        self.shed = 0
        self.peak = 0.0  # the largest delay measured since the last log line
        self.stub: Any = None


def _due(api: _Api, now: float, ticks: int) -> bool:
    """Whether `api` (which had calls since its last probe) gets a probe on this tick."""
    controller = api.controller
    if controller.shedding or api.estimate.delay(now) > controller.target / 4:
        return True  # a queue is there: measure it on every tick
    if ticks % _CALM_TICKS:
        return False
    return api.calls >= _CALM_CALLS or now - api.probed_at >= _CALM_SECONDS


class Admission:
    """Load shedding for one grpc.aio server: wraps its handlers (`attach` it before registering them),
    probes its queues (`listen` before the server starts, `start` after), publishes its metrics
    (`collector`); `close` at shutdown."""

    def __init__(
        self,
        limit: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.tick = min(0.1, max(0.01, limit / 2.5))
        self._clock = clock
        self._apis: dict[str, _Api] = {}
        self.probe_body = os.urandom(32)  # what only mixerd's own probes send
        self._folder: str | None = None
        self._channel: grpc.aio.Channel | None = None
        self._task: asyncio.Task[None] | None = None
        self._probes: set[asyncio.Task[None]] = set()
        self._logged_at = -math.inf
        self._logged_shed = 0

    # -- handlers ------------------------------------------------------------------------------------

    def wrap(self, service: str, handlers: Mapping[str, grpc.RpcMethodHandler]) -> dict[str, Any]:
        """`handlers` with the admission check in front of each unary call and each new client stream."""
        out: dict[str, Any] = {}
        for method, handler in handlers.items():
            name = f"{service}/{method}"
            if handler.unary_unary is not None:
                api = self._apis.setdefault(name, _Api(name, self.limit, probed=True))
                out[method] = handler._replace(unary_unary=self._unary(api, handler.unary_unary))
            elif handler.stream_unary is not None:
                api = self._apis.setdefault(name, _Api(name, self.limit, probed=False))
                out[method] = handler._replace(stream_unary=self._stream(api, handler.stream_unary))
            else:
                out[method] = handler
        return out

    def _unary(self, api: _Api, behavior: Callable[..., Any]) -> Callable[..., Any]:
        probe = self.probe_body
        controller = api.controller

        async def admitted(raw: bytes, context: grpc.aio.ServicerContext) -> Any:
            if raw == probe:
                return b""  # it has measured the queue by reaching here; never parsed or counted
            api.calls += 1
            if controller.shedding:
                api.shed += 1
                await context.abort(_UNAVAILABLE, SHED_MESSAGE)
            return await behavior(raw, context)

        return admitted

    def _stream(self, api: _Api, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def admitted(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> Any:
            if self.overloaded:
                api.shed += 1
                await context.abort(_UNAVAILABLE, SHED_MESSAGE)
            return await behavior(requests, context)

        return admitted

    @property
    def overloaded(self) -> bool:
        """Whether calls of some API are being shed."""
        return any(api.controller.shedding for api in self._apis.values())

    # -- probing -------------------------------------------------------------------------------------

    def listen(self, server: grpc.aio.Server) -> bool:
        """Give `server` the Unix socket probes come in by (before it starts); False when there is no
        folder to put it in (shedding then never starts, which is logged)."""
        try:
            self._folder = tempfile.mkdtemp(prefix="mixerd-")  # mode 0700: only our user gets in
            port = server.add_insecure_port(f"unix:{self._socket}")
        except (OSError, RuntimeError) as e:
            _log.warning("load shedding is off: no Unix socket for its probes (%s)", e)
            self._remove_folder()
            return False
        if not port:
            _log.warning("load shedding is off: cannot listen on %s for its probes", self._socket)
            self._remove_folder()
            return False
        return True

    @property
    def _socket(self) -> str:
        return os.path.join(self._folder or "", "probe.sock")

    async def start(self) -> None:
        """Start probing (after the server started); does nothing when `listen` failed."""
        if self._folder is None:
            return
        self._channel = grpc.aio.insecure_channel(f"unix:{self._socket}")
        for api in self._apis.values():
            if api.probed:
                service, method = api.name.split("/")
                api.stub = self._channel.unary_unary(f"/{service}/{method}")
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mixerd-admission")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for probe in list(self._probes):
            probe.cancel()
        if self._probes:
            await asyncio.gather(*self._probes, return_exceptions=True)
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
        self._remove_folder()

    def _remove_folder(self) -> None:
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    async def _run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.tick)
            now = self._clock()
            ticks += 1
            for api in self._apis.values():
                if not api.probed:
                    continue
                estimate, controller = api.estimate, api.controller
                if api.calls and estimate.waiting < _MAX_WAITING and _due(api, now, ticks):
                    self._send(api, now)
                controller.observe(estimate.delay(now), now)
            self._log(now)

    def _send(self, api: _Api, now: float) -> None:
        api.calls = 0
        api.probed_at = now
        task = asyncio.get_running_loop().create_task(self._probe(api))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, api: _Api) -> None:
        probe = api.estimate.sent(self._clock())
        try:
            await api.stub(self.probe_body, timeout=_PROBE_TIMEOUT)
        except asyncio.CancelledError:
            api.estimate.abandoned(probe)
            raise
        except grpc.RpcError:
            pass  # a failed probe still waited its turn (or the server is stopping)
        now = self._clock()
        estimate, controller = api.estimate, api.controller
        estimate.answered(probe, now)
        api.peak = max(api.peak, estimate.last)
        controller.observe(estimate.delay(now), now)
        if estimate.last > controller.target and not controller.shedding and not estimate.waiting:
            self._send(api, now)  # a queue, or a pause just over? The next probe tells, now.

    def _log(self, now: float) -> None:
        if now - self._logged_at < _LOG_EVERY:
            return
        shed = sum(api.shed for api in self._apis.values())
        if shed == self._logged_shed:
            return
        busiest = max(self._apis.values(), key=lambda api: api.peak)
        _log.warning(
            "overloaded: %d calls answered UNAVAILABLE since the last report (queueing delay up to %.0f ms "
            "on %s; shed_latency %.0f ms)",
            shed - self._logged_shed,
            busiest.peak * 1e3,
            busiest.name,
            self.limit * 1e3,
        )
        self._logged_at, self._logged_shed = now, shed
        for api in self._apis.values():
            api.peak = 0.0

    # -- metrics -------------------------------------------------------------------------------------

    def collector(self) -> Collector:
        return _AdmissionCollector(self)

    def apis(self) -> Iterator[_Api]:
        return iter(self._apis.values())


class _AdmissionCollector(Collector):
    def __init__(self, admission: Admission) -> None:
        self._admission = admission

    def collect(self) -> Iterator[Metric]:
        shed = CounterMetricFamily(
            "mixerd_shed_requests",
            "Calls (and new access-log streams) answered UNAVAILABLE by load shedding, by API.",
            labels=["api"],
        )
        shedding = GaugeMetricFamily("mixerd_shedding", "1 while calls of the API are shed.", labels=["api"])
        delay = GaugeMetricFamily(
            "mixerd_queueing_delay_seconds",
            "The wait before mixerd takes a call of the API, as its last probe measured it.",
            labels=["api"],
        )
        for api in self._admission.apis():
            shed.add_metric([api.name], api.shed)
            if api.probed:
                shedding.add_metric([api.name], 1 if api.controller.shedding else 0)
                delay.add_metric([api.name], api.estimate.last)
        yield shed
        yield shedding
        yield delay


_attached: weakref.WeakKeyDictionary[Any, Admission] = weakref.WeakKeyDictionary()


def attach(server: grpc.aio.Server, admission: Admission) -> None:
    """Make `add_raw_handlers` put `admission` in front of the handlers registered on `server` from now on."""
    _attached[server] = admission


def attached(server: grpc.aio.Server) -> Admission | None:
    return _attached.get(server)
