"""Shared helpers for the benchmarks: timing loops, server processes and their CPU use, a local
redis-server, the client processes that load a server over gRPC (`drive`), and the tables the scripts
print."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import redis

_TICKS = os.sysconf("SC_CLK_TCK")

#: `mixerd serve`'s gRPC ready line (it names every API served on the port); group 1 is host:port.
MIXERD_READY = r"^mixerd: serving istio\.mixer\.v1\.Mixer(?:, \S+)* on (\S+)$"
#: `mixerd serve` on free ports of the loopback (gRPC, monitoring, admin page), so that a mixerd already
#: running on the machine's default ports never stops a benchmark; MIXERD_SERVE runs it as `python -m`.
SERVE = ["serve", "--port", "0", "--monitoring-port", "0", "--admin-port", "0", "--address", "127.0.0.1"]
MIXERD_SERVE = ["-m", "mixerd", *SERVE]


def per_call_us(fn: Callable[[], object], *, seconds: float = 0.5, repeats: int = 5) -> float:
    """Median microseconds per call of `fn` over `repeats` timed loops of about `seconds` each."""
    n = 1
    while True:  # calibrate the loop count to the time budget
        start = time.perf_counter()
        for _ in range(n):
            fn()
        if time.perf_counter() - start > seconds / 10:
            break
        n *= 2
    n = max(1, int(n * 10 * seconds / max(time.perf_counter() - start, 1e-9) / 10))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    address: str

    def cpu(self) -> float:
        return process_cpu_seconds(self.proc.pid)


@contextmanager
def server_process(args: list[str], ready: str) -> Iterator[ServerProcess]:
    """Start `python args...`, wait for a stdout line matching `ready` (with a host:port group)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = re.search(ready, line)
            if match:
                break
        else:
            raise RuntimeError(f"{args} exited before it was ready")
        yield ServerProcess(proc, match.group(1))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass
class RedisProcess:
    """A running redis-server (`redis_process`): its process, a client to it, and its URL for configs."""

    proc: subprocess.Popen[bytes]
    client: redis.Redis
    url: str

    def script_calls(self) -> int:
        """Lua script calls (EVALSHA and EVAL) since the start or `client.config_resetstat()`."""
        stats = self.client.info("commandstats")
        return sum(stats.get(f"cmdstat_{c}", {}).get("calls", 0) for c in ("evalsha", "eval"))


@contextmanager
def redis_process(folder: Path) -> Iterator[RedisProcess]:
    """A redis-server on a free loopback port, without persistence, its files in `folder`; once it answers
    PING. Exits the script with a hint when redis-server is not installed."""
    if shutil.which("redis-server") is None:
        sys.exit("redis-server is not installed: run tests/peers/install.sh")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    proc = subprocess.Popen(
        [
            *("redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(folder), "--logfile", str(folder / "redis.log")),
        ]
    )
    client = redis.Redis(port=port)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.02)
        yield RedisProcess(proc, client, f"redis://127.0.0.1:{port}")
    finally:
        client.close()
        proc.terminate()
        proc.wait(10)


#: Calls (or stream messages) each client sends before the measured phase: channel set-up and the
#: server's first-call costs stay out of the figures.
WARM_UP = 20


class Driven(NamedTuple):
    """What one `drive` measured."""

    cpu: float  #: the server's CPU seconds during the measured phase
    latencies: list[float]  #: seconds per measured call (per stream with `stream=True`), all clients
    also_cpu: list[float]  #: CPU seconds of each of `also_pids`, in their order, over the same phase


def drive(
    server: ServerProcess,
    method: str,
    bodies_per_client: Sequence[Sequence[bytes]],
    *,
    warm_up: int = WARM_UP,
    stream: bool = False,
    also_pids: Sequence[int] = (),
) -> Driven:
    """Load `server`'s gRPC `method` from one client process per entry of `bodies_per_client`.

    Each client sends its first `warm_up` bodies unmeasured, then waits at a barrier with the others and
    this process, then sends the rest one call at a time (sync, one call in flight), timing each (a call
    shed by the server's load shedding is counted, reported, and left out of the latencies). With
    `stream=True` the method is client-streaming: the warm-up bodies go on one stream and the rest on a
    second one, timed as a whole. Bodies are raw bytes both ways, so clients do no protobuf work.

    The server's CPU (and that of `also_pids`, e.g. a redis-server it calls) is read from /proc when all
    clients have passed the barrier and again when the last has finished, so neither client start-up nor
    the warm-up counts. Repeating one bytes object in a list is cheap: it is pickled to a client once.
    """
    ctx = mp.get_context("spawn")
    start, done = ctx.Barrier(len(bodies_per_client) + 1), ctx.Queue()
    client = _stream_client if stream else _unary_client
    procs = [
        ctx.Process(target=client, args=(server.address, method, bodies, warm_up, start, done))
        for bodies in bodies_per_client
    ]
    for p in procs:
        p.start()
    start.wait()
    cpu0 = server.cpu()
    also0 = [process_cpu_seconds(pid) for pid in also_pids]
    latencies: list[float] = []
    shed = 0
    for _ in procs:
        answer = done.get()
        if isinstance(answer, str):  # the client failed: say why rather than wait for it forever
            raise RuntimeError(f"a client process failed: {answer}")
        latencies.extend(answer[0])
        shed += answer[1]
    cpu = server.cpu() - cpu0
    also = [process_cpu_seconds(pid) - used for pid, used in zip(also_pids, also0, strict=True)]
    for p in procs:
        p.join()
    if shed:
        print(
            f"  ({shed} calls were shed with UNAVAILABLE: the server saw a queue past --shed-latency, "
            "e.g. while the machine was busy; they count as calls but not in the latencies)",
            file=sys.stderr,
        )
    return Driven(cpu, latencies, also)


def same_body(body: bytes, calls: int, clients: int) -> list[list[bytes]]:
    """`drive`'s bodies when every client sends `body` `calls` times (after `WARM_UP` more)."""
    return [[body] * (WARM_UP + calls)] * clients


def _shed(error: grpc.RpcError) -> bool:
    return error.code() == grpc.StatusCode.UNAVAILABLE and "overloaded" in (error.details() or "")


def _unary_client(
    address: str, method: str, bodies: Sequence[bytes], warm_up: int, start: Any, done: Any
) -> None:
    try:
        with grpc.insecure_channel(address) as channel:
            call = channel.unary_unary(method)
            for body in bodies[:warm_up]:
                try:
                    call(body, timeout=30)
                except grpc.RpcError as e:
                    if not _shed(e):
                        raise
            start.wait()
            latencies, shed = [], 0
            for body in bodies[warm_up:]:
                t = time.perf_counter()
                try:
                    call(body, timeout=30)
                except grpc.RpcError as e:
                    if not _shed(e):
                        raise
                    shed += 1
                    continue
                latencies.append(time.perf_counter() - t)
            done.put((latencies, shed))
    except BaseException as e:
        start.abort()  # nobody waits at the barrier for a client that is gone
        done.put(repr(e))
        raise


def _stream_client(
    address: str, method: str, bodies: Sequence[bytes], warm_up: int, start: Any, done: Any
) -> None:
    try:
        with grpc.insecure_channel(address) as channel:
            call = channel.stream_unary(method)
            if warm_up:
                call(iter(bodies[:warm_up]), timeout=600)
            start.wait()
            t = time.perf_counter()
            call(iter(bodies[warm_up:]), timeout=600)
            done.put(([time.perf_counter() - t], 0))
    except BaseException as e:
        start.abort()  # nobody waits at the barrier for a client that is gone
        done.put(repr(e))
        raise


class RedisRounds(NamedTuple):
    """What `rounds_beside_redis` measured: one figure per round unless said otherwise."""

    us_per_call: dict[str, list[float]]  #: server CPU per measured call, by run name
    latencies: dict[str, list[float]]  #: every measured call's latency (s), by run name
    redis_us_per_call: list[float]  #: redis-server's own CPU per call of the Redis run
    script_calls: list[float]  #: Lua script calls per call of the Redis run, warm-up calls included

    def print(self, call: str) -> None:
        """The medians against the floor, redis-server's own CPU, the script calls per `call` (what a
        call is called) and the latencies."""
        print_against_floor(self.us_per_call, 10)
        print(f"  redis-server {statistics.median(self.redis_us_per_call):5.1f} us/call (its own process)")
        trips = ", ".join(f"{r:.3f}" for r in self.script_calls)
        print(f"Redis script calls per {call} (INFO commandstats): {trips}")
        print_latencies(self.latencies, 10)


def rounds_beside_redis(
    runs: Sequence[tuple[str, ServerProcess]],
    redis_run: str,
    store: RedisProcess,
    method: str,
    bodies: Callable[[], list[list[bytes]]],
    rounds: int,
) -> RedisRounds:
    """`rounds` rounds of `drive` on each of `runs` in turn (fresh `bodies()` each time, so ids stay
    unique); for the run named `redis_run`, also redis-server's CPU and its Lua script calls, the
    commandstats reset before each of its phases."""
    out = RedisRounds({}, {}, [], [])
    for _ in range(rounds):
        for name, server in runs:
            on_redis = name == redis_run
            if on_redis:
                store.client.config_resetstat()
            per_client = bodies()
            used, lat, also = drive(
                server, method, per_client, also_pids=[store.proc.pid] if on_redis else []
            )
            out.us_per_call.setdefault(name, []).append(used / len(lat) * 1e6)
            out.latencies.setdefault(name, []).extend(lat)
            if on_redis:
                out.redis_us_per_call.append(also[0] / len(lat) * 1e6)
                # The warm-up calls reach Redis too.
                out.script_calls.append(store.script_calls() / (len(lat) + WARM_UP * len(per_client)))
    return out


def print_against_floor(us_per_call: Mapping[str, list[float]], width: int) -> None:
    """One line per server: the median of its rounds (us/call) and its ratio to the "floor" entry's."""
    floor_us = statistics.median(us_per_call["floor"])
    for name, samples in us_per_call.items():
        us = statistics.median(samples)
        print(f"  {name:{width}s} {us:7.1f} us/call   ratio {us / floor_us:.2f}x floor")


def print_latencies(latencies: Mapping[str, list[float]], width: int) -> None:
    """Client-side p50 and p99 of each set of latencies (seconds), in milliseconds."""
    print("client-side latency p50 / p99 (ms)")
    for name, values in latencies.items():
        q = statistics.quantiles(values, n=100)
        print(f"  {name:{width}s} {q[49] * 1e3:6.2f} / {q[98] * 1e3:6.2f}")
