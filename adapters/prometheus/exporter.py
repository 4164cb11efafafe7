"""The process-wide exporter every prometheus handler shares: the series, and the HTTP endpoint serving them.

As in Mixer, one registry and one HTTP server (`--prometheus-port`, path `/metrics`) serve all the
prometheus handlers of the process. The first handler built starts the endpoint; it stays up while any
prometheus handler is alive, so a config reload (which builds the new handlers before it closes the old
ones) keeps it, and it stops when the last one closes.

A metric is a `Family`: its definition and its series, keyed by its exported name. A handler defining a
metric the same way as the one exported shares that family (so a reload keeps the values of unchanged
metrics); a different definition replaces it, dropping its old series. A family goes away when no
handler uses it any more.

Series are plain dicts mutated on the event loop (handle_metric, expiry) and read by the HTTP thread
(a scrape); `Exporter.lock` guards both sides.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from mixerd.adapter import BackgroundHttpServer

from .naming import MetricDef
from .params import Kind

PATH = "/metrics"

#: A counter or gauge series is [value, last update ns]; a distribution [bucket counts, sum, last update
#: ns], the counts not cumulative, the last one the +Inf bucket. The last update is always last.
Series = list[Any]


class Family:
    """One exported metric: its definition, its series by label values, and the handlers using it."""

    __slots__ = ("definition", "series", "users")

    def __init__(self, definition: MetricDef) -> None:
        self.definition = definition
        self.series: dict[tuple[str, ...], Series] = {}
        self.users: dict[int, str] = {}  # handler token -> handler FQN


class Exporter:
    """The shared registry and endpoint; get it with `acquire`, give it back with `release`."""

    def __init__(self, host: str, port: int) -> None:
        self.lock = threading.Lock()
        self.families: dict[str, Family] = {}
        self.users = 0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Collector(self))
        self._server = _Endpoint(host, port, self.registry)
        self.host = host
        self.port = self._server.port
        self.stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{PATH}"

    def define(self, definition: MetricDef, token: int, handler: str, logger: logging.Logger) -> Family:
        """The family a handler records `definition` in: the exported one when it is defined the same way,
        else a new one that replaces it."""
        with self.lock:
            family = self.families.get(definition.name)
            if family is not None and family.definition == definition:
                family.users[token] = handler
                return family
            if family is not None:
                changed = ", ".join(definition.differences(family.definition))
                others = sorted(set(family.users.values()) - {handler})
                if others:
                    logger.warning(
                        "%s: metric %s is defined with other %s by %s; this definition replaces it "
                        "(its series are dropped, and updates from the other definition are not exported)",
                        handler,
                        definition.name,
                        changed,
                        ", ".join(others),
                    )
                else:
                    logger.info(
                        "%s: metric %s changed (%s); its old series are dropped",
                        handler,
                        definition.name,
                        changed,
                    )
            family = self.families[definition.name] = Family(definition)
            family.users[token] = handler
            return family

    def forget(self, token: int, families: Iterable[Family]) -> None:
        """A handler is done with `families`: each one no handler uses any more stops being exported."""
        with self.lock:
            for family in families:
                family.users.pop(token, None)
                name = family.definition.name
                if not family.users and self.families.get(name) is family:
                    del self.families[name]

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        """Stop serving and close the socket and its connections (blocks until done)."""
        try:
            self._server.stop()
        finally:
            self.stopped.set()


# -- process-wide sharing -----------------------------------------------------------------------------

_lock = threading.Lock()
_current: Exporter | None = None
_stopping: list[Exporter] = []


async def acquire(host: str, port: int, logger: logging.Logger) -> Exporter:
    """The running exporter, or a new one listening on host:port (OSError when it cannot listen).

    Every acquire is matched by one `release`. The host and port only matter for the first acquire: a
    running endpoint is shared whatever the later handlers ask for.
    """
    global _current
    for previous in list(_stopping):  # a fixed port is free again only once the old endpoint has closed
        await asyncio.to_thread(previous.stopped.wait, 10.0)
    with _lock:
        if _current is None:
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            try:
                exporter = Exporter(host, port)
            except OSError as e:
                raise OSError(f"cannot listen for prometheus metrics on {where}: {e.strerror or e}") from e
            exporter.start()
            _current = exporter
            logger.info("prometheus: serving metrics on %s", exporter.url)
        _current.users += 1
        return _current


async def release(exporter: Exporter, logger: logging.Logger) -> None:
    """Give back what `acquire` gave; the last release stops the endpoint."""
    global _current
    with _lock:
        exporter.users -= 1
        last = exporter.users <= 0
        if last:
            if _current is exporter:
                _current = None
            _stopping.append(exporter)
    if last:
        try:
            await asyncio.to_thread(exporter.stop)
            logger.info("prometheus: stopped serving metrics on %s", exporter.url)
        finally:
            with _lock:
                if exporter in _stopping:
                    _stopping.remove(exporter)


def current() -> Exporter | None:
    """The running exporter (its `url`, `port`), if any prometheus handler is alive."""
    return _current


# -- the scrape side ------------------------------------------------------------------------------------


class _Collector(Collector):
    """Turns the families into prometheus_client metric families at each scrape."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter

    def collect(self) -> Iterator[Metric]:
        with self._exporter.lock:  # copy under the lock, format outside it
            snapshot = [(f.definition, _copy(f)) for f in self._exporter.families.values()]
        for definition, series in sorted(snapshot, key=lambda item: item[0].name):
            yield _metric(definition, series)


def _copy(family: Family) -> list[tuple[tuple[str, ...], Any]]:
    if family.definition.kind == Kind.DISTRIBUTION:
        return [(key, (list(s[0]), s[1])) for key, s in family.series.items()]
    return [(key, s[0]) for key, s in family.series.items()]


def _metric(definition: MetricDef, series: list[tuple[tuple[str, ...], Any]]) -> Metric:
    labels = definition.label_names
    if definition.kind == Kind.COUNTER:
        counter = CounterMetricFamily(definition.name, definition.description, labels=labels)
        for key, value in series:
            counter.add_metric(key, value)
        return counter
    if definition.kind == Kind.GAUGE:
        gauge = GaugeMetricFamily(definition.name, definition.description, labels=labels)
        for key, value in series:
            gauge.add_metric(key, value)
        return gauge
    # A Metric of our own rather than HistogramMetricFamily, which leaves out _count and _sum when a
    # bucket bound is negative (linear buckets may start below 0; Mixer always exported both).
    histogram = Metric(definition.name, definition.description, "histogram")
    les = [floatToGoString(b) for b in definition.bounds] + ["+Inf"]
    name = definition.name
    samples = histogram.samples
    for key, (counts, total) in series:
        base = dict(zip(labels, key, strict=True))
        cumulative = 0
        for le, count in zip(les, counts, strict=True):
            cumulative += count
            samples.append(Sample(f"{name}_bucket", {**base, "le": le}, float(cumulative)))
        samples.append(Sample(f"{name}_count", base, float(cumulative)))
        samples.append(Sample(f"{name}_sum", base, total))
    return histogram


# -- the HTTP endpoint ----------------------------------------------------------------------------------

_StartResponse = Callable[..., Any]


class _Endpoint(BackgroundHttpServer):
    """`/metrics` (prometheus_client's exposition, with its content negotiation) on a thread of its own."""

    def __init__(self, host: str, port: int, registry: CollectorRegistry) -> None:
        metrics = make_wsgi_app(registry)

        def app(environ: dict[str, Any], start_response: _StartResponse) -> Iterable[bytes]:
            if environ.get("PATH_INFO", "") == PATH:
                return metrics(environ, start_response)
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"not found; try /metrics\n"]

        super().__init__(app, host, port, name="mixerd-prometheus")
