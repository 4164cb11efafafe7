"""docs/envoy/ratelimit.md stays true: its configs load, its Envoy blocks are what the Envoy test harness
runs, its request table is what the service answers (on the doc's own config, counted by memquota), its
field and metric tables name what the code reads and exports, and its quoted errors are the corpus's."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import yaml
from peers.envoy import RateLimit, generic_key, remote_address, request_header

from mixerd.config import compile_snapshot, ratelimit_files, ratelimit_reader, ratelimits
from mixerd.config.loader import Document
from mixerd.params import camel
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.runtime.ratelimit import MAX_REQUESTS_PER_UNIT, OK, OVER_LIMIT, DescriptorRequest, RateLimiter
from mixerd.server.envoy.ratelimit_stats import HIT_FAMILIES, RateLimitCollector, RateLimitStats

REPO = Path(__file__).resolve().parents[3]
DOC = (REPO / "docs" / "envoy" / "ratelimit.md").read_text()
BAD = REPO / "tests" / "data" / "config" / "bad"
BAD_FILES = REPO / "tests" / "data" / "ratelimit" / "bad"
S = 1_000_000_000
T0 = 1_699_999_200 * S  # the top of an hour


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", DOC, flags=re.M | re.S)


def _documents(text: str) -> list[Document]:
    return [Document("doc.yaml", i + 1, d) for i, d in enumerate(yaml.safe_load_all(text)) if d]


def _section(heading: str) -> str:
    start = DOC.index(f"\n{heading}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else len(DOC)]


def _table(text: str, first: str) -> list[list[str]]:
    """The rows (header and separator left out) of the table in `text` whose header starts with `first`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first} |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def test_the_configs_load() -> None:
    config, redis_handler = (b for b in _blocks("yaml") if "config.istio.io" in b)
    adapters = load_adapters()
    snapshot = compile_snapshot(_documents(config), adapters)
    assert list(snapshot.rate_limit_domains) == ["edge"]
    assert snapshot.handlers["ratelimit-counter.handler.istio-system"].rate_limits
    # The redisquota handler in place of the memquota one: the same domain, counted in Redis.
    with_redis = redis_handler + "---\n" + config.split("---\n", 1)[1]
    snapshot = compile_snapshot(_documents(with_redis), adapters)
    assert snapshot.handlers["ratelimit-counter.handler.istio-system"].adapter.name == "redisquota"


def test_the_config_reference_example_loads() -> None:
    text = (REPO / "docs" / "config.md").read_text()
    [block] = [b for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.S) if "kind: ratelimitconfig" in b]
    handler = "apiVersion: config.istio.io/v1alpha2\nkind: handler\nmetadata: {name: counter}\n"
    handler += "spec: {compiledAdapter: memquota}\n---\n"
    snapshot = compile_snapshot(_documents(handler + block), load_adapters())
    assert snapshot.rate_limit_domains["edge"].handler == "counter.handler.istio-system"


def test_the_envoy_blocks_are_what_the_harness_runs() -> None:
    [filters] = [yaml.safe_load(b) for b in _blocks("yaml") if b.startswith("http_filters:")]
    [routes] = [yaml.safe_load(b) for b in _blocks("yaml") if b.startswith("routes:")]
    harness = RateLimit(
        "127.0.0.1:9091",
        "edge",
        [[remote_address()], [generic_key("api"), request_header("x-user", "user")]],
        extra={"enable_x_ratelimit_headers": "DRAFT_VERSION_03"},
    )
    assert filters["http_filters"] == [harness.filter()]
    assert routes["routes"][0]["route"]["rate_limits"] == harness.route_rate_limits()


def _descriptor(text: str) -> tuple[tuple[str, str], ...]:
    return tuple(tuple(entry.split("=", 1)) for entry in text.strip("`").split(", "))  # type: ignore[misc]


def _status(text: str) -> tuple[int, int | None]:
    """(code, remaining) from "OK, 9 left", "OK, unlimited" or "OK, no limit (...)" (remaining None)."""
    code, what = text.split(", ", 1)
    if what.startswith("no limit"):
        return (OK if code == "OK" else OVER_LIMIT), None
    if what.startswith("unlimited"):
        return OK, MAX_REQUESTS_PER_UNIT
    left = re.match(r"(\d+) left", what)
    assert left is not None, text
    return (OK if code == "OK" else OVER_LIMIT), int(left.group(1))


def test_the_request_table_is_what_the_service_answers() -> None:
    rows = _table(_section("## How a request is answered"), "descriptors (domain `edge`)")
    assert len(rows) >= 10
    config = next(b for b in _blocks("yaml") if "kind: ratelimitconfig" in b)

    async def run() -> list[list[tuple[int, int | None]]]:
        adapters = load_adapters()
        runtime = Runtime(adapters, clock=lambda: T0)
        await runtime.apply(compile_snapshot(_documents(config), adapters))
        limiter = RateLimiter(runtime, lambda: T0)
        answers = []
        try:
            for descriptors, hits, _ in rows:
                requests = [DescriptorRequest(_descriptor(d), int(hits)) for d in descriptors.split(" + ")]
                decision = await limiter.decide("edge", requests, 1.0)
                answers.append(
                    [(s.code, s.remaining if s.current or s.remaining else None) for s in decision.statuses]
                )
        finally:
            await runtime.close()
        return answers

    expected = [[_status(s) for s in statuses.split(" + ")] for _, _, statuses in rows]
    assert asyncio.run(run()) == expected


def test_the_field_tables_name_the_fields_the_loader_reads() -> None:
    section = _section("## The resource")
    tables = re.findall(r"(\| field \| type \| meaning \|\n\|---\|---\|---\|\n(?:\|.*\n)+)", section)
    spec, descriptor, limit = ([row[0].strip("`") for row in _table(t, "field")] for t in tables)
    assert spec == list(ratelimits._SPEC_FIELDS)
    assert sorted(descriptor) == sorted(ratelimit_reader.DESCRIPTOR_FIELDS)
    assert sorted(limit) == sorted(ratelimit_reader.LIMIT_FIELDS)
    assert camel("requests_per_unit") in section
    # a file is a spec without its handler
    assert [f for f in spec if f != "handler"] == list(ratelimit_files._ROOT_FIELDS)


def test_the_metric_table_names_every_metric() -> None:
    stats = RateLimitStats()
    stats.hits[("d", "k", "total_hits")] = 1
    families = {f.name for f in RateLimitCollector(stats).collect()}
    rows = _table(_section("## Stats"), "metric")
    documented = {row[0].strip("`").split("{")[0].removesuffix("_total") for row in rows}
    assert documented == families


def test_the_stat_table_names_every_stat() -> None:
    rows = _table(_section("## Stats"), "stat")
    assert sorted(row[0].strip("`") for row in rows) == sorted(name for name, _ in HIT_FAMILIES)


def test_the_quoted_errors_are_the_corpus() -> None:
    resources, files = [b for b in _blocks("") if "ratelimitconfig '" in b or "ratelimit/" in b]
    corpus = "\n".join(p.read_text() for p in BAD.glob("ratelimit_*/expected.txt")).splitlines()
    for line in resources.splitlines():
        assert line in corpus, line
    corpus = "\n".join(p.read_text() for p in BAD_FILES.glob("*/expected.txt")).splitlines()
    for line in files.splitlines():
        assert line in corpus, line
