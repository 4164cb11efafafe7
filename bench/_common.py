"""Shared helpers for the benchmarks: timing loops, server processes and their CPU use."""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK")


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
