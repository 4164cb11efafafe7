"""Live config changes on a running mixerd (MIXER.md 5.5, DESIGN.md decision 5).

The server watches its folder (config_poll_interval 0.05 s); a change is applied as a whole or
rejected as a whole, handlers that did not change are kept, replaced ones are closed once no request
uses them, and requests never fail because a change is under way.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from peers.kubelet import write_configmap

from mixerd.adapter import AdapterInfo, CheckResult, Env
from mixerd.api.mixer.v1 import mixer_pb2, mixer_pb2_grpc
from mixerd.attribute import GLOBAL_WORDS, encode_attributes
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.testing_scenarios import RunningMixer, SpyRecorder, run_mixer, spy_adapter

pytestmark = pytest.mark.integration

_GWC = len(GLOBAL_WORDS)
_HEAD = "apiVersion: config.istio.io/v1alpha2\n"
_LOADS = "mixerd_config_loads_total"
_REJECTIONS = "mixerd_config_rejections_total"


def _deny_rule(match: str, message: str = "denied", handler: str = "deny") -> str:
    return (
        f"{_HEAD}kind: handler\nmetadata: {{name: {handler}}}\n"
        f"spec: {{compiledAdapter: denier, params: {{status: {{code: 7, message: {message}}}}}}}\n---\n"
        f"{_HEAD}kind: instance\nmetadata: {{name: nothing}}\nspec: {{compiledTemplate: checknothing}}\n---\n"
        f"{_HEAD}kind: rule\nmetadata: {{name: r-{handler}}}\n"
        f"spec: {{match: '{match}', actions: [{{handler: {handler}, instances: [nothing]}}]}}\n"
    )


_BROKEN = f"{_HEAD}kind: rule\nmetadata: {{name: bad}}\nspec: {{match: 'source.user ==', actions: []}}\n"


def _verdict(stub: mixer_pb2_grpc.MixerStub, user: str) -> tuple[str, str]:
    request = mixer_pb2.CheckRequest(
        attributes=encode_attributes({"source.user": user}, _GWC), global_word_count=_GWC
    )
    status = stub.Check(request, timeout=5).precondition.status
    return ("OK" if status.code == 0 else "DENIED", status.message)


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the config change"
        time.sleep(0.02)


@contextmanager
def _serve(
    folder: Path, adapters: dict[str, AdapterInfo] | None = None, watch: bool = True, **settings: Any
) -> Iterator[tuple[RunningMixer, mixer_pb2_grpc.MixerStub]]:
    runtime = Runtime(adapters or load_adapters(), folder=folder)
    with (
        run_mixer(runtime, config_poll_interval=0.05 if watch else 0.0, **settings) as mixer,
        grpc.insecure_channel(mixer.address) as channel,
    ):
        yield mixer, mixer_pb2_grpc.MixerStub(channel)


def test_editing_a_rule_file_changes_the_verdicts(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(_deny_rule('source.user == "bob"'))
    with _serve(tmp_path) as (mixer, stub):
        assert _verdict(stub, "bob") == ("DENIED", "deny.handler.istio-system:denied")
        assert _verdict(stub, "alice") == ("OK", "")
        assert mixer.metric(_LOADS) == 1
        rules.write_text(_deny_rule('source.user == "alice"', "alice is out"))
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        assert _verdict(stub, "bob") == ("OK", "")
        assert _verdict(stub, "alice") == ("DENIED", "deny.handler.istio-system:alice is out")
        assert mixer.metric(_REJECTIONS) == 0


def test_a_broken_edit_is_rejected_and_the_previous_config_keeps_serving(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(_deny_rule('source.user == "bob"'))
    with _serve(tmp_path) as (mixer, stub):
        rules.write_text(_deny_rule('source.user == "alice"') + "---\n" + _BROKEN)
        _wait_for(lambda: mixer.metric(_REJECTIONS) == 1)
        assert mixer.metric(_LOADS) == 1
        rejection = mixer.runtime.last_rejection
        assert rejection is not None
        assert mixer.metric("mixerd_config_last_rejection_errors") == len(rejection.errors)
        assert str(rejection.errors[0]) == (
            "rules.yaml: rule 'bad.rule.istio-system' .spec.match: "
            "unable to parse expression 'source.user ==': 1:15: expected operand, found 'EOF'"
        )
        assert _verdict(stub, "bob") == ("DENIED", "deny.handler.istio-system:denied")
        assert _verdict(stub, "alice") == ("OK", "")
        rules.write_text(_deny_rule('source.user == "alice"'))  # fixed
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        assert _verdict(stub, "bob") == ("OK", "")
        assert _verdict(stub, "alice") == ("DENIED", "deny.handler.istio-system:denied")
        assert mixer.metric(_REJECTIONS) == 1
        assert mixer.runtime.last_rejection is None


def test_an_edit_with_a_pattern_re2_rejects_is_rejected(tmp_path: Path) -> None:
    """A constant `.matches()` pattern is compiled at load: Mixer took this config and failed the match on
    every request; mixerd keeps the previous config and says why."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(_deny_rule('source.user == "bob"'))
    with _serve(tmp_path) as (mixer, stub):
        rules.write_text(_deny_rule('"^(al|bo)(?=b)".matches(source.user)'))
        _wait_for(lambda: mixer.metric(_REJECTIONS) == 1)
        rejection = mixer.runtime.last_rejection
        assert rejection is not None
        assert [str(e) for e in rejection.errors] == [
            "rules.yaml: rule 'r-deny.rule.istio-system' .spec.match: "
            "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"
        ]
        assert _verdict(stub, "bob") == ("DENIED", "deny.handler.istio-system:denied")
        rules.write_text(_deny_rule('"^(al|bo)b$".matches(source.user)'))
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        assert _verdict(stub, "bob") == ("DENIED", "deny.handler.istio-system:denied")
        assert _verdict(stub, "alice") == ("OK", "")


def test_a_removed_config_folder_is_rejected_not_taken_for_no_rules(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rules.yaml").write_text(_deny_rule("true"))
    with _serve(folder) as (mixer, stub):
        (folder / "rules.yaml").unlink()
        folder.rmdir()
        _wait_for(lambda: mixer.metric(_REJECTIONS) == 1)
        assert _verdict(stub, "anyone") == ("DENIED", "deny.handler.istio-system:denied")
        assert str(mixer.runtime.last_rejection).endswith(f"{folder}: the config folder does not exist")


def _configmap_version(folder: Path, n: int, text: str) -> None:
    """Write version n the way the kubelet updates a ConfigMap volume."""
    write_configmap(folder, f"2024_01_01_00_00_0{n}.00000000{n}", {"rules.yaml": text})


def test_a_configmap_volume_update_is_picked_up(tmp_path: Path) -> None:
    _configmap_version(tmp_path, 1, _deny_rule('source.user == "bob"'))
    with _serve(tmp_path) as (mixer, stub):
        assert _verdict(stub, "bob")[0] == "DENIED"
        _configmap_version(tmp_path, 2, _deny_rule('source.user == "alice"'))
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        assert _verdict(stub, "bob")[0] == "OK"
        assert _verdict(stub, "alice")[0] == "DENIED"
        assert mixer.metric(_REJECTIONS) == 0


def _handler(name: str, adapter: str, params: str) -> str:
    spec = f"{{compiledAdapter: {adapter}, params: {params}}}"
    return f"kind: handler\nmetadata: {{name: {name}}}\nspec: {spec}"


def _spies(first: str, second: str) -> str:
    docs = [
        _handler("one", "spy", f"{{checkMessage: {first}}}"),
        _handler("two", "spy", f"{{checkMessage: {second}}}"),
        "kind: instance\nmetadata: {name: nothing}\nspec: {compiledTemplate: checknothing}",
        "kind: rule\nmetadata: {name: r}\nspec: {actions: [{handler: one, instances: [nothing]}, "
        "{handler: two, instances: [nothing]}]}",
    ]
    return "---\n".join(_HEAD + d + "\n" for d in docs)


def test_unchanged_handlers_are_kept_and_replaced_ones_are_closed(tmp_path: Path) -> None:
    recorder = SpyRecorder()
    rules = tmp_path / "rules.yaml"
    rules.write_text(_spies("a", "b"))
    with _serve(tmp_path, {**load_adapters(), "spy": spy_adapter(recorder)}) as (mixer, _):
        before = dict(mixer.runtime.table.handlers)
        rules.write_text(_spies("a", "b-changed"))
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        after = mixer.runtime.table.handlers
        assert after["one.handler.istio-system"] is before["one.handler.istio-system"]
        assert after["two.handler.istio-system"] is not before["two.handler.istio-system"]
        _wait_for(lambda: recorder.closed == ["two.handler.istio-system"])
        assert mixer.metric("mixerd_handler_reuses_total") == 1
        assert mixer.metric("mixerd_handler_closes_total") == 1
        assert mixer.metric("mixerd_handler_builds_total") == 3
    assert sorted(recorder.closed) == [
        "one.handler.istio-system",
        "two.handler.istio-system",
        "two.handler.istio-system",
    ]


def test_two_handlers_with_equal_params_stay_two_across_a_reload(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(_two_deniers())
    with _serve(tmp_path, watch=False) as (mixer, stub):
        expected = ("DENIED", "first.handler.istio-system:same, second.handler.istio-system:same")
        assert _verdict(stub, "x") == expected
        assert mixer.run(mixer.runtime.reload()) is True
        assert _verdict(stub, "x") == expected
        handlers = mixer.runtime.table.handlers
        assert handlers["first.handler.istio-system"].fqn == "first.handler.istio-system"
        assert handlers["second.handler.istio-system"].fqn == "second.handler.istio-system"


def _two_deniers() -> str:
    docs = [
        "kind: instance\nmetadata: {name: nothing}\nspec: {compiledTemplate: checknothing}",
        *(
            f"kind: handler\nmetadata: {{name: {h}}}\n"
            "spec: {compiledAdapter: denier, params: {status: {code: 7, message: same}}}"
            for h in ("first", "second")
        ),
        "kind: rule\nmetadata: {name: r}\nspec: {actions: [{handler: first, instances: [nothing]}, "
        "{handler: second, instances: [nothing]}]}",
    ]
    return "---\n".join(_HEAD + d + "\n" for d in docs)


# -- draining: a replaced handler is closed only after the requests that use it ---------------------------


@dataclass
class GateParams:
    tag: str = ""


class Gate:
    def __init__(self) -> None:
        self.open = threading.Event()
        self.entered = threading.Event()
        self.closed: list[str] = []


class GatedHandler:
    """Answers a check only once the test opens the gate."""

    def __init__(self, env: Env, gate: Gate) -> None:
        self.env = env
        self.gate = gate

    async def handle_checknothing(self, instance: Any) -> CheckResult:
        self.gate.entered.set()
        while not self.gate.open.is_set():
            await asyncio.sleep(0.005)
        return CheckResult()

    def close(self) -> None:
        self.gate.closed.append(f"{self.env.handler} {self.env.params.tag}")


def _gated(gate_tag: str, other_tag: str) -> str:
    docs = [
        _handler("gated", "gated", f"{{tag: {gate_tag}}}"),
        _handler("other", "gated", f"{{tag: {other_tag}}}"),
        "kind: instance\nmetadata: {name: nothing}\nspec: {compiledTemplate: checknothing}",
        'kind: rule\nmetadata: {name: g}\nspec: {match: source.user == "slow", '
        "actions: [{handler: gated, instances: [nothing]}]}",
        'kind: rule\nmetadata: {name: o}\nspec: {match: source.user == "other", '
        "actions: [{handler: other, instances: [nothing]}]}",
    ]
    return "---\n".join(_HEAD + d + "\n" for d in docs)


def test_a_replaced_handler_is_closed_after_its_last_request_even_two_changes_later(tmp_path: Path) -> None:
    gate = Gate()
    adapters = {
        **load_adapters(),
        "gated": AdapterInfo("gated", ("checknothing",), GateParams, lambda env: GatedHandler(env, gate)),
    }
    rules = tmp_path / "rules.yaml"
    rules.write_text(_gated("v1", "x1"))
    with _serve(tmp_path, adapters, watch=False) as (mixer, stub):
        result: list[Any] = []
        slow = threading.Thread(target=lambda: result.append(_verdict(stub, "slow")))
        slow.start()
        assert gate.entered.wait(3)
        # Change 1 keeps `gated` (only `other` changes); change 2 replaces it. The slow request still
        # runs on the first table, so `gated v1` must stay open until it ends.
        rules.write_text(_gated("v1", "x2"))
        assert mixer.run(mixer.runtime.reload())
        rules.write_text(_gated("v2", "x2"))
        assert mixer.run(mixer.runtime.reload())
        time.sleep(0.2)
        assert gate.closed == []  # `other x1` was in the first table too
        gate.open.set()
        slow.join(3)
        assert result == [("OK", "")]
        _wait_for(lambda: len(gate.closed) == 2)
        assert sorted(gate.closed) == ["gated.handler.istio-system v1", "other.handler.istio-system x1"]


# -- under load ------------------------------------------------------------------------------------------


def _spy_deny(message: str) -> str:
    return _deny_rule("true", message).replace(
        f"compiledAdapter: denier, params: {{status: {{code: 7, message: {message}}}}}",
        f"compiledAdapter: spy, params: {{checkStatus: 7, checkMessage: {message}, delay: 1ms}}",
    )


def test_reloads_under_load_never_fail_a_request(tmp_path: Path) -> None:
    # The spy handler answers after 1 ms (so requests are in flight across changes) and raises when
    # called after close(): a handler closed under a running request would show up as a failed RPC.
    configs = [_spy_deny("config-a"), _spy_deny("config-b")]
    verdicts = {("DENIED", f"deny.handler.istio-system:config-{v}") for v in "ab"}
    recorder = SpyRecorder()
    rules = tmp_path / "rules.yaml"
    rules.write_text(configs[0])
    seen: Counter[tuple[str, str]] = Counter()
    errors: list[str] = []
    stop = threading.Event()
    lock = threading.Lock()

    def worker(stub: mixer_pb2_grpc.MixerStub) -> None:
        while not stop.is_set():
            try:
                verdict = _verdict(stub, "anyone")
            except grpc.RpcError as e:
                with lock:
                    errors.append(f"{e.code().name}: {e.details()}")
                continue
            with lock:
                seen[verdict] += 1

    adapters = {**load_adapters(), "spy": spy_adapter(recorder)}
    with _serve(tmp_path, adapters, watch=False) as (mixer, stub):
        threads = [threading.Thread(target=worker, args=(stub,)) for _ in range(4)]
        for t in threads:
            t.start()
        outcomes = []
        try:
            for i in range(10):
                time.sleep(0.02)
                rules.write_text(_BROKEN if i == 5 else configs[(i + 1) % 2])
                outcomes.append(mixer.run(mixer.runtime.reload()))
        finally:
            stop.set()
            for t in threads:
                t.join(5)
        assert outcomes == [True] * 5 + [False] + [True] * 4
        assert mixer.metric(_LOADS) == 10
        assert mixer.metric(_REJECTIONS) == 1
        # Change 6 brings back the config in force before the broken one, so its handler is kept;
        # every other change replaced it, and each old one is closed once its requests are done.
        assert mixer.metric("mixerd_handler_reuses_total") == 1
        _wait_for(lambda: mixer.metric("mixerd_handler_closes_total") == 8)
    assert errors == []
    assert set(seen) <= verdicts, seen
    assert set(seen) == verdicts
    assert sum(seen.values()) > 50


# -- hostile folders: what cannot be read is refused at the next poll, and nothing wedges -----------------

_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)


_HOSTILE: dict[str, tuple[Callable[[Path], object], str]] = {
    "fifo": (lambda p: os.mkfifo(p), "not a regular file (a FIFO); only regular files are read"),
    "dev-zero": (lambda p: p.symlink_to("/dev/zero"), "not a regular file (a character device); only "),
    "folder": (lambda p: p.mkdir(), "not a regular file (a folder); only regular files are read"),
    "dangling-symlink": (
        lambda p: p.symlink_to("gone.yaml"),
        "a broken symlink: nothing exists at its target ",
    ),
    "looping-symlink": (lambda p: p.symlink_to(p.name), "a symlink loop (via 'hostile.yaml'): following it "),
    "oversize": (lambda p: p.write_text("#" * 2000), "2000 bytes, more than the 1000-byte limit "),
    "alias-bomb": (lambda p: p.write_text(_LAUGHS), "(document 1): YAML aliases expand this document by "),
}


@pytest.mark.parametrize("case", _HOSTILE, ids=str)
def test_a_hostile_entry_is_refused_at_the_next_poll_and_the_folder_keeps_being_watched(
    tmp_path: Path, case: str
) -> None:
    make, reason = _HOSTILE[case]
    rules = tmp_path / "rules.yaml"
    rules.write_text(_deny_rule('source.user == "bob"'))
    with _serve(tmp_path, config_max_file_bytes=1000) as (mixer, stub):
        hostile = tmp_path / "hostile.yaml"
        make(hostile)
        _wait_for(lambda: mixer.metric(_REJECTIONS) == 1)
        rejection = mixer.runtime.last_rejection
        assert rejection is not None
        [error] = rejection.errors
        assert str(error).startswith("hostile.yaml") and reason in str(error), str(error)
        assert _verdict(stub, "bob") == ("DENIED", "deny.handler.istio-system:denied")  # the last good config
        # the watcher is not stuck on it: removing it, then an edit, are both taken
        if hostile.is_dir() and not hostile.is_symlink():
            hostile.rmdir()
        else:
            hostile.unlink()
        _wait_for(lambda: mixer.metric(_LOADS) == 2)
        rules.write_text(_deny_rule('source.user == "alice"'))
        _wait_for(lambda: mixer.metric(_LOADS) == 3)
        assert _verdict(stub, "bob") == ("OK", "")
        assert mixer.metric(_REJECTIONS) == 1


def _mixerd_serve(
    *args: str, stuck_read_fifo: Path | None = None, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[str]:
    """A real `mixerd serve` on free ports. With `stuck_read_fifo`, reading any file named stuck.yaml
    blocks in the kernel (an open of a FIFO no one writes), the way a hung filesystem would."""
    inject = (
        "import sys\n"
        "from mixerd.config import loader\n"
        "real = loader.read_config_file\n"
        "def read(path, max_bytes):\n"
        "    if path.name != 'stuck.yaml':\n"
        "        return real(path, max_bytes)\n"
        "    print('mixerd-test: reading stuck.yaml', file=sys.stderr, flush=True)\n"
        f"    return open({str(stuck_read_fifo)!r}, 'rb').read()\n"
        "loader.read_config_file = read\n"
        if stuck_read_fifo is not None
        else ""
    )
    code = f"{inject}import sys\nfrom mixerd.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIXERD_")}
    serve = [
        "serve",
        "--address",
        "127.0.0.1",
        "--port",
        "0",
        "--monitoring-port",
        "0",
        "--admin-port",
        "0",
        *args,
    ]
    return subprocess.Popen(
        [sys.executable, "-c", code, *serve],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )


@contextmanager
def _killed_at_exit(proc: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()


def test_serve_on_a_folder_with_broken_entries_lists_them_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(_deny_rule("true"))
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "dangling.yaml").symlink_to("gone.yaml")
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    with _killed_at_exit(_mixerd_serve("--config", str(tmp_path))) as proc:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 1, stderr
        assert stderr.splitlines()[-3:] == [
            "  dangling.yaml: a broken symlink: nothing exists at its target 'gone.yaml'",
            "  loop.yaml: a symlink loop (via 'loop.yaml'): following it never reaches a file",
            "  pipe.yaml: not a regular file (a FIFO); only regular files are read",
        ]


def test_sigterm_ends_serve_within_the_grace_while_a_config_read_is_stuck(tmp_path: Path) -> None:
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "rules.yaml").write_text(_deny_rule("true"))
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    grace = 5.0
    args = ("--config", str(folder), "--config-poll-interval", "0.05", "--shutdown-grace", str(grace))
    log = tmp_path / "stderr.log"
    with (
        log.open("w") as stderr,
        _killed_at_exit(_mixerd_serve(*args, stuck_read_fifo=fifo, stderr=stderr)) as proc,
    ):
        assert proc.stdout is not None
        address = proc.stdout.readline().rsplit(" ", 1)[-1].strip()
        proc.stdout.readline()
        (folder / "stuck.yaml").write_text(_deny_rule("false", handler="later"))
        _wait_for(lambda: "mixerd-test: reading stuck.yaml" in log.read_text(), timeout=30)
        with grpc.insecure_channel(address) as channel:  # still serving, on the config in force
            assert _verdict(mixer_pb2_grpc.MixerStub(channel), "anyone")[0] == "DENIED"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=grace) == 0, log.read_text()


def test_sigterm_during_the_first_load_stops_serve_at_once(tmp_path: Path) -> None:
    """The signal handlers are in place before the config is first read: a start-up stuck on a read
    ends with exit code 0 on SIGTERM, like a running server, instead of the signal's default death."""
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "stuck.yaml").write_text(_deny_rule("true"))
    fifo = tmp_path / "never-written"
    os.mkfifo(fifo)
    log = tmp_path / "stderr.log"
    with (
        log.open("w") as stderr,
        _killed_at_exit(_mixerd_serve("--config", str(folder), stuck_read_fifo=fifo, stderr=stderr)) as proc,
    ):
        _wait_for(lambda: "mixerd-test: reading stuck.yaml" in log.read_text(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()
        assert proc.stdout is not None and proc.stdout.read() == ""  # it never said it was serving
    assert "stopped while starting" in log.read_text()
