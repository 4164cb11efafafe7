"""Latency a real Envoy adds when its filters call mixerd, against Envoy with no filters, in one run.

A steady open-loop load (default 500 requests/s, bench/_http_load.py) goes through one Envoy per
scenario to the same upstream:

  (a) no filters: the baseline;
  (b) ext_authz: every request is checked by mixerd's Authorization service (a denier rule that never
      triggers for the benchmark's users); most answers come from its verdict cache, since the users
      repeat, so (b') runs the same against a second mixerd with the cache off (--authz-cache-size 0);
  (c) ratelimit: every request asks mixerd's RateLimitService (limits far above the load);
  (d) ext_authz + ratelimit + the gRPC access logger streaming every request to mixerd, which turns the
      entries into a prometheus counter.

mixerd is a `mixerd serve` process on bench/configs/envoy/ (two for (b')). Rounds alternate the
scenarios so that drift on a shared machine hits them all. Printed, as medians over the rounds (a stall
of the machine spoils one round, not the figure): p50 / p99 / p99.9 per scenario and the p99 each adds
to the baseline's p99 of the same round, beside Envoy's default timeouts (200 ms ext_authz, 20 ms
ratelimit); then Envoy's own counts of the filters' outcomes (a filter whose call fails or times out is
counted there, and a failing ext_authz turns into 403s, counted as non-200).

A scenario whose mixerd service is missing (the server does not list it, or its config kind is not
known yet) is skipped with a message.

Usage: python bench/envoy_filters.py [--rate N] [--seconds S] [--rounds N] [--users N]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from _common import MIXERD_READY, MIXERD_SERVE, ServerProcess, server_process
from _http_load import LoadResult, get_request, open_loop, upstream_process
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from peers.envoy import AccessLog, EnvoyProxy, ExtAuthz, RateLimit, generic_key, request_header  # noqa: E402

CONFIG = HERE / "configs" / "envoy"
MIXERD = list(MIXERD_SERVE)

AUTHZ = "envoy.service.auth.v3.Authorization"
RLS = "envoy.service.ratelimit.v3.RateLimitService"
ALS = "envoy.service.accesslog.v3.AccessLogService"
DOMAIN = "bench"  # bench/configs/envoy/ratelimit.yaml's domain
DESCRIPTORS = [[generic_key("api"), request_header("x-user", "user")]]
STALL = 0.02  # a client that starts a request this late shows a machine too busy to measure on
DEFAULT_TIMEOUTS = {"ext_authz": "200 ms", "ratelimit": "20 ms"}


@dataclass
class Scenario:
    name: str
    needs: tuple[str, ...]  # mixerd services
    filters: Callable[[str], dict[str, Any]]  # mixerd address -> EnvoyProxy options
    uncached: bool = False  # call the mixerd whose ext_authz verdict cache is off
    proxy: EnvoyProxy | None = None
    mixer: ServerProcess | None = None  # the mixerd it calls, for its CPU use
    cpu_us: list[float] = field(default_factory=list)  # mixerd CPU per request, per round


SCENARIOS = [
    Scenario("no filters", (), lambda mixer: {}),
    Scenario("ext_authz", (AUTHZ,), lambda mixer: {"ext_authz": ExtAuthz(mixer)}),
    Scenario("ext_authz, verdict cache off", (AUTHZ,), lambda mixer: {"ext_authz": ExtAuthz(mixer)}, True),
    Scenario("ratelimit", (RLS,), lambda mixer: {"ratelimit": RateLimit(mixer, DOMAIN, DESCRIPTORS)}),
    Scenario(
        "ext_authz + ratelimit + access log",
        (AUTHZ, RLS, ALS),
        lambda mixer: {
            "ext_authz": ExtAuthz(mixer),
            "ratelimit": RateLimit(mixer, DOMAIN, DESCRIPTORS),
            "access_log": AccessLog(mixer, log_name="bench", request_headers=["x-user"]),
        },
    ),
]


def _config_folder(into: Path) -> tuple[Path, list[str]]:
    """bench/configs/envoy copied file by file, leaving out files mixerd does not accept yet (e.g. a
    config kind whose front-end is still being written); returns the folder and what was left out."""
    left_out = []
    into.mkdir()
    for source in sorted(CONFIG.glob("*.yaml")):
        trial = into.parent / "trial"
        shutil.rmtree(trial, ignore_errors=True)
        trial.mkdir()
        shutil.copy(source, trial)
        check = [sys.executable, "-m", "mixerd", "check-config", str(trial)]
        result = subprocess.run(check, capture_output=True, text=True, check=False)
        if result.returncode == 0:
            shutil.copy(source, into)
        else:
            left_out.append(f"{source.name}: {result.stdout.strip() or result.stderr.strip()}")
    shutil.rmtree(into.parent / "trial", ignore_errors=True)
    return into, left_out


def _services(address: str) -> set[str]:
    with grpc.insecure_channel(address) as channel:
        return set(ProtoReflectionDescriptorDatabase(channel).get_services())


def _request(users: int) -> Callable[[int], bytes]:
    requests = [get_request("/bench", {"x-user": f"user{u}"}) for u in range(users)]
    return lambda i: requests[i % users]


def _filter_counts(proxy: EnvoyProxy) -> dict[str, int]:
    """Envoy's non-zero counts of the filters' outcomes (ok, denied, error, failure_mode_allowed, ...)."""
    wanted = ("ext_authz.", "ratelimit.", "grpc_access_log.")
    return {
        name: value
        for name, value in proxy.stats().items()
        if value and any(w in name for w in wanted) and not name.startswith("cluster.mixerd.")
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=500.0, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each scenario's phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=100, help="distinct x-user values, in turn")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive client connections")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as temp:
        folder, left_out = _config_folder(Path(temp) / "config")
        for reason in left_out:
            print(f"config left out (mixerd does not accept it yet): {reason}")
        mixerd_args = [*MIXERD, "--config", str(folder), "--prometheus-port", "0", "--log-level", "warning"]
        with (
            upstream_process() as upstream,
            server_process(mixerd_args, MIXERD_READY) as mixer,
            server_process([*mixerd_args, "--authz-cache-size", "0"], MIXERD_READY) as uncached,
        ):
            services = _services(mixer.address)
            config_files = {p.name for p in folder.glob("*.yaml")}
            scenarios = []
            for scenario in SCENARIOS:
                missing = [s for s in scenario.needs if s not in services]
                if RLS in scenario.needs and "ratelimit.yaml" not in config_files:
                    missing.append("ratelimit.yaml (the ratelimitconfig kind)")
                if missing:
                    print(f"skipped '{scenario.name}': mixerd does not serve {', '.join(missing)} yet")
                    continue
                scenarios.append(scenario)
            try:
                for scenario in scenarios:
                    scenario.mixer = uncached if scenario.uncached else mixer
                    options = scenario.filters(scenario.mixer.address)
                    scenario.proxy = EnvoyProxy(Path(temp) / "envoy", upstream, **options).start()
                results = _run(scenarios, args)
                _print(scenarios, results, args)
            finally:
                for scenario in scenarios:
                    if scenario.proxy is not None:
                        scenario.proxy.stop()


def _run(scenarios: list[Scenario], args: argparse.Namespace) -> dict[str, list[LoadResult]]:
    request_for = _request(args.users)
    results: dict[str, list[LoadResult]] = {s.name: [] for s in scenarios}

    async def phase(proxy: EnvoyProxy, seconds: float) -> LoadResult:
        return await open_loop(
            "127.0.0.1",
            proxy.port,
            request_for,
            rate=args.rate,
            seconds=seconds,
            connections=args.connections,
        )

    for scenario in scenarios:  # warm-up: connections, mixerd's caches and code paths
        assert scenario.proxy is not None
        asyncio.run(phase(scenario.proxy, 2.0))
        scenario.proxy.reset_counters()  # Envoy's counts printed at the end are the measured rounds
    for _ in range(args.rounds):
        for scenario in scenarios:
            assert scenario.proxy is not None and scenario.mixer is not None
            cpu = scenario.mixer.cpu()
            result = asyncio.run(phase(scenario.proxy, args.seconds))
            scenario.cpu_us.append((scenario.mixer.cpu() - cpu) / len(result.latencies) * 1e6)
            results[scenario.name].append(result)
    return results


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f}"


def _print(scenarios: list[Scenario], results: dict[str, list[LoadResult]], args: argparse.Namespace) -> None:
    """Medians over rounds: a stall of the shared machine spoils one round, not the figure. The p99 added
    is, per round, the scenario's p99 minus the baseline's p99 of the same round."""
    print(
        f"{args.rate:.0f} requests/s open loop, {args.rounds} rounds x {args.seconds:.0f} s per scenario, "
        f"{args.users} users in turn; latencies in ms, median of the rounds"
    )
    header = f"{'p50':>6s} {'p99':>6s} {'p99.9':>6s} {'p99 added':>9s} {'mixerd CPU/req':>14s}"
    print(f"  {'scenario':36s} {header}  p99 of each round")
    base = [run.percentile(99) for run in results["no filters"]]
    for scenario in scenarios:
        runs = results[scenario.name]
        p99s = [run.percentile(99) for run in runs]
        added = "" if scenario.needs == () else _median_ms([p - b for p, b in zip(p99s, base, strict=True)])
        cpu = "" if scenario.needs == () else f"{statistics.median(scenario.cpu_us):.0f} us"
        p50, p999 = (
            _median_ms([r.percentile(50) for r in runs]),
            _median_ms([r.percentile(99.9) for r in runs]),
        )
        print(
            f"  {scenario.name:36s} {p50:>6s} {_median_ms(p99s):>6s} {p999:>6s} {added:>9s} {cpu:>14s}  "
            + " ".join(f"{p * 1000:.2f}" for p in p99s)
        )
    print(
        f"Envoy's default timeouts (the benchmark keeps them): ext_authz {DEFAULT_TIMEOUTS['ext_authz']}, "
        f"ratelimit {DEFAULT_TIMEOUTS['ratelimit']}"
    )
    disturbed = sum(r.max_start_lag > STALL for runs in results.values() for r in runs)
    if disturbed:
        print(
            f"WARNING: in {disturbed} of {sum(map(len, results.values()))} rounds the client itself started "
            f"a request over {STALL * 1000:.0f} ms late: the machine was busy; rerun on a quiet machine"
        )
    for scenario in scenarios:
        assert scenario.proxy is not None
        runs = results[scenario.name]
        bad = sum(n for r in runs for status, n in r.statuses.items() if status != 200)
        errors = sum(sum(r.errors.values()) for r in runs)
        lag = max(r.max_start_lag for r in runs) * 1000
        extra = sum(r.extra_connections for r in runs)
        print(
            f"  {scenario.name}: non-200 {bad}, client errors {errors}, client start lag max {lag:.1f} ms, "
            f"extra connections {extra}"
        )
        for stat, value in sorted(_filter_counts(scenario.proxy).items()):
            print(f"      {stat} = {value}")


if __name__ == "__main__":
    main()
