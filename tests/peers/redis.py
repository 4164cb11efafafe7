"""Real Redis for tests: `redis-server` (Debian's package, PEERS.md section 1) as subprocesses on free
loopback ports, without persistence, in a folder of the test's own, always stopped.

- `RedisServer(folder)`: one server; `stop()` (SIGTERM), `kill()` (SIGKILL), `pause()` (SIGSTOP) and
  `start()` again on the same port, for fault tests; `client()` is a sync redis-py client;
  `commandstats()` reads `INFO commandstats` (calls per command). `password=` makes it require one,
  `tls=make_tls_files(folder)` makes it speak TLS only.
- `RedisCluster(folder, nodes=3)`: a Redis Cluster of `nodes` masters, created with `redis-cli --cluster`.
- `RedisSentinel(folder, master)`: one Sentinel watching `master` under the name `mymaster`.

Each is a context manager. `install.sh` installs redis-server when it is missing; `ensure_redis()` runs
it, so a plain `pytest` works the first time. Tests import it as `from peers import redis`; free ports
and polling come from receivers.py.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from .receivers import free_port, wait_until

HERE = Path(__file__).resolve().parent

_installed = False


def ensure_redis() -> None:
    """Install redis-server (once per process) if it is not on the PATH."""
    global _installed
    if _installed or shutil.which("redis-server"):
        _installed = True
        return
    result = subprocess.run(
        [str(HERE / "install.sh")], capture_output=True, text=True, timeout=600, check=False
    )
    if result.returncode != 0 or not shutil.which("redis-server"):
        raise RuntimeError(f"tests/peers/install.sh failed ({result.returncode}):\n{result.stderr}")
    _installed = True


@dataclass(frozen=True)
class TlsFiles:
    """A private CA and a server certificate for 127.0.0.1 that it signed (PEM files)."""

    ca: Path
    cert: Path
    key: Path


def make_tls_files(folder: Path) -> TlsFiles:
    """A CA and a server certificate (subjectAltName IP:127.0.0.1), made with the openssl command."""
    folder.mkdir(parents=True, exist_ok=True)
    ca, ca_key = folder / "ca.crt", folder / "ca.key"
    cert, key, csr, ext = folder / "server.crt", folder / "server.key", folder / "server.csr", folder / "ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    signing = ["-days", "2", "-extfile", ext]
    for command in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=mixerd test CA"],
        ["req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert, *signing],
    ):
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True, timeout=30)
    return TlsFiles(ca, cert, key)


class RedisServer:
    """One redis-server on 127.0.0.1:`port` (chosen once, kept across restarts)."""

    def __init__(
        self,
        folder: Path,
        *,
        args: Sequence[str] = (),
        name: str = "redis",
        password: str | None = None,
        tls: TlsFiles | None = None,
    ) -> None:
        ensure_redis()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.name = name
        self.password = password
        self.tls = tls
        self.args = list(args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self.folder / f"{name}-{self.port}.log"
        self._stats_client: redis.Redis | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """redis://[:password@]127.0.0.1:port (rediss:// with the CA to trust, for a TLS server)."""
        auth = f":{self.password}@" if self.password else ""
        if self.tls is not None:
            return f"rediss://{auth}127.0.0.1:{self.port}?ssl_ca_certs={self.tls.ca}"
        return f"redis://{auth}127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        ports = ["--port", str(self.port)]
        if self.tls is not None:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            ports += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            ports += ["--tls-ca-cert-file", str(self.tls.ca)]
        if self.password:
            ports += ["--requirepass", self.password]
        return [
            "redis-server",
            *ports,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--logfile",
            str(self._log),
            *self.args,
        ]

    def start(self) -> None:
        """Start (again) and wait until it answers PING."""
        if self.running:
            return
        self._proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(self._answers, 10, f"{self.name} on port {self.port} to answer")

    def _answers(self) -> bool:
        if self._proc is not None and self._proc.poll() is not None:
            log = self._log.read_text() if self._log.exists() else ""
            raise RuntimeError(f"{self.name} exited ({self._proc.returncode}):\n{log[-2000:]}")
        try:
            with self.client(timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        """SIGTERM (nothing is saved) and wait."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL: the server is gone at once, as in a crash."""
        self._end(signal.SIGKILL)

    def pause(self) -> None:
        """SIGSTOP: the port stays open but nothing answers (a hung server)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def _end(self, sig: signal.Signals) -> None:
        if self._stats_client is not None:
            self._stats_client.close()
            self._stats_client = None
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)  # a paused server must be able to act on the signal
        proc.send_signal(sig)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def client(self, timeout: float = 5.0, db: int = 0) -> redis.Redis:
        tls: dict[str, Any] = {}
        if self.tls is not None:
            tls = {"ssl": True, "ssl_ca_certs": str(self.tls.ca)}
        return redis.Redis(
            host="127.0.0.1", port=self.port, socket_timeout=timeout, password=self.password, db=db, **tls
        )

    def commandstats(self) -> dict[str, int]:
        """Calls per command since the last `reset_stats()`, e.g. {"evalsha": 10, "ping": 1}, leaving out
        the INFO and CONFIG RESETSTAT calls that read and reset them (made on one connection of their
        own, so they add no HELLO either)."""
        info = self._stats().info("commandstats")
        calls = {name.removeprefix("cmdstat_"): int(stat["calls"]) for name, stat in info.items()}
        return {name: n for name, n in calls.items() if name not in ("info", "config|resetstat")}

    def reset_stats(self) -> None:
        self._stats().config_resetstat()

    def _stats(self) -> redis.Redis:
        if self._stats_client is None:
            self._stats_client = self.client()
        return self._stats_client

    def __enter__(self) -> RedisServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RedisCluster:
    """A Redis Cluster of `nodes` masters (no replicas), all slots assigned."""

    def __init__(self, folder: Path, nodes: int = 3) -> None:
        self.nodes = [
            RedisServer(
                folder / f"node{i}",
                name=f"cluster node {i}",
                # A free bus port too: the default (port + 10000) may be out of range or taken.
                args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "2000",
                    "--cluster-port",
                    str(free_port()),
                ],
            )
            for i in range(nodes)
        ]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def __enter__(self) -> RedisCluster:
        try:
            for node in self.nodes:
                node.start()
            subprocess.run(
                ["redis-cli", "--cluster", "create", *(n.address for n in self.nodes), "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=30,
            )
            wait_until(self._ready, 20, "the cluster to be ok")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _ready(self) -> bool:
        for node in self.nodes:
            with node.client() as client:
                if client.cluster("info").get("cluster_state") != "ok":
                    return False
        return True

    def keys(self) -> dict[str, list[str]]:
        """Every key, by the node (address) that holds it."""
        out = {}
        for node in self.nodes:
            with node.client() as client:
                out[node.address] = sorted(k.decode() for k in client.keys("*"))
        return out

    def commandstats(self) -> dict[str, dict[str, int]]:
        return {node.address: node.commandstats() for node in self.nodes}

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()


class RedisSentinel:
    """One Sentinel on a free port watching `master` as `mymaster` (it needs one vote to fail over)."""

    MASTER_NAME = "mymaster"

    def __init__(self, folder: Path, master: RedisServer) -> None:
        ensure_redis()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.master = master
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RedisSentinel:
        config = self.folder / f"sentinel-{self.port}.conf"  # Sentinel rewrites its config file
        config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.folder}\n"
            f"logfile {self.folder / f'sentinel-{self.port}.log'}\n"
            f"sentinel monitor {self.MASTER_NAME} 127.0.0.1 {self.master.port} 1\n"
            f"sentinel down-after-milliseconds {self.MASTER_NAME} 1000\n"
        )
        self._proc = subprocess.Popen(
            ["redis-server", str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        try:
            wait_until(self._knows_master, 10, "the sentinel to know its master")
        except BaseException:
            self.__exit__()
            raise
        return self

    def _knows_master(self) -> bool:
        try:
            with redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5) as client:
                answer = client.execute_command("SENTINEL", "get-master-addr-by-name", self.MASTER_NAME)
        except redis.RedisError:
            return False
        return bool(answer) and int(answer[1]) == self.master.port

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
