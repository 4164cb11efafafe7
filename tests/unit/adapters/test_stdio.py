"""stdio: exact output lines (JSON and console), severity mapping, level filtering, value formatting,
background flushing, file rotation and params validation."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import time
from pathlib import Path

import pytest
import yaml

from mixerd.adapter import Env, InstanceInfo, ValueType
from mixerd.attribute.values import Duration, Timestamp
from mixerd.params import ParamsError, params_to_dict, read_params
from mixerd.plugins import collect_adapters, make_plugin_manager
from mixerd.templates import LogEntryInstance, MetricInstance
from mixerd_adapters.stdio import Level, Params, build
from mixerd_adapters.stdio import handler as handler_module
from mixerd_adapters.stdio.encode import format_time, value_json
from mixerd_adapters.stdio.sinks import RotatingFile, rotation_bytes

HANDLER = "h.handler.istio-system"
ACCESS = "accesslog.instance.istio-system"
COUNT = "requestcount.instance.istio-system"
T0 = Timestamp.parse("2026-11-20T10:00:00.123456789Z")
NOW = int(Timestamp.parse("2026-11-20T11:00:00.5Z"))
DAY = 86_400 * 1_000_000_000


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def make_env(params: dict, *, instances=None, clock=lambda: NOW) -> Env:
    return Env(
        handler=HANDLER,
        adapter="stdio",
        params=read_params(Params, params),
        instances=instances or {},
        clock=clock,
    )


def run(params: dict, calls, **env_args):
    """Build a handler in a running loop, make the calls, close it; the handler is returned."""

    async def main():
        env = make_env(params, **env_args)
        h = build(env)
        calls(h)
        await h.close()
        await env.cancel_background()
        return h

    return asyncio.run(main())


def file_params(path, **more) -> dict:
    return {"logStream": "FILE", "outputPath": str(path), **more}


def entry(severity="INFO", **variables) -> LogEntryInstance:
    return LogEntryInstance(name=ACCESS, variables=variables, timestamp=T0, severity=severity)


def test_file_appends_exact_json_lines(tmp_path):
    out = tmp_path / "mixer.log"
    out.write_text("earlier line\n")
    instances = {ACCESS: InstanceInfo(ACCESS, "logentry", {"variables": {"sourceIp": ValueType.IP_ADDRESS}})}

    def calls(h):
        h.handle_logentry(
            [
                entry(
                    "WARNING",
                    user="jason",
                    responseCode=200,
                    latency=Duration(1_500_000_000),
                    mtls=True,
                    ratio=0.25,
                    sourceIp=ip("10.44.0.12"),
                    headers={"x-b": "2", "x-a": "1"},
                    requestTime=Timestamp.parse("2026-11-20T09:59:59.999999999Z"),
                ),
                entry("ERROR"),
            ]
        )
        h.handle_metric(
            [MetricInstance(name=COUNT, value=1, dimensions={"reporter": "destination", "code": 200})]
        )

    run(file_params(out), calls, instances=instances)
    assert out.read_text().splitlines() == [
        "earlier line",
        '{"level":"warn","time":"2026-11-20T10:00:00.123456Z","instance":"accesslog.instance.istio-system",'
        '"headers":{"x-a":"1","x-b":"2"},"latency":"1.5s","mtls":true,"ratio":0.25,'
        '"requestTime":"2026-11-20T09:59:59.999999Z","responseCode":200,"sourceIp":"10.44.0.12","user":"jason"}',
        '{"level":"error","time":"2026-11-20T10:00:00.123456Z","instance":"accesslog.instance.istio-system"}',
        '{"level":"info","time":"2026-11-20T11:00:00.500000Z","instance":"requestcount.instance.istio-system",'
        '"value":1,"code":200,"reporter":"destination"}',
    ]


def test_console_format_is_tab_separated_with_json_fields(tmp_path):
    out = tmp_path / "mixer.log"

    def calls(h):
        h.handle_logentry([entry("warn", user="jason", path="/a b"), entry("info")])
        h.handle_metric([MetricInstance(name=COUNT, value=2.5)])

    run(file_params(out, outputAsJson=False), calls)
    assert out.read_text().splitlines() == [
        '2026-11-20T10:00:00.123456Z\twarn\taccesslog.instance.istio-system\t{"path":"/a b","user":"jason"}',
        "2026-11-20T10:00:00.123456Z\tinfo\taccesslog.instance.istio-system",
        '2026-11-20T11:00:00.500000Z\tinfo\trequestcount.instance.istio-system\t{"value":2.5}',
    ]


def levels_written(tmp_path, params: dict, severities: list[str]) -> list[str]:
    out = tmp_path / "levels.log"
    run(file_params(out, **params), lambda h: h.handle_logentry([entry(s, s=s) for s in severities]))
    return [
        line.split('"')[3] + " " + line.split('"s":')[1].rstrip("}") for line in out.read_text().splitlines()
    ]


def test_default_severity_map_is_matched_exactly_then_ignoring_case(tmp_path):
    severities = ["INFO", "Warning", "warn", "ERROR", "err", "Fatal", "informational", "DEBUG", ""]
    assert levels_written(tmp_path, {}, severities) == [
        'info "INFO"',
        'warn "Warning"',
        'warn "warn"',
        'error "ERROR"',
        'error "err"',
        'error "Fatal"',
        'info "informational"',
        'info "DEBUG"',  # unknown -> INFO
        'info ""',
    ]


def test_custom_severity_map_replaces_the_default_and_exact_case_wins(tmp_path):
    params = {"severityLevels": {"notice": "WARNING", "warn": "ERROR", "WARN": "INFO"}}
    assert levels_written(tmp_path, params, ["NOTICE", "warn", "WARN", "Warn", "ERROR"]) == [
        'warn "NOTICE"',
        'error "warn"',
        'info "WARN"',
        'info "Warn"',  # no exact match; "WARN" sorts before "warn", so its level is the case-insensitive one
        'info "ERROR"',  # not in the replaced map
    ]


def test_output_level_drops_entries_below_it(tmp_path):
    out = tmp_path / "filtered.log"

    def calls(h):
        h.handle_logentry([entry("INFO"), entry("WARNING"), entry("ERROR")])
        h.handle_metric([MetricInstance(name=COUNT, value=1)])

    def written():
        return [(d["instance"], d["level"]) for d in map(json.loads, out.read_text().splitlines())]

    run(file_params(out, outputLevel="WARNING"), calls)  # the metric (at metricLevel INFO) is dropped too
    assert written() == [(ACCESS, "warn"), (ACCESS, "error")]
    out.unlink()
    run(file_params(out, outputLevel="ERROR", metricLevel="ERROR"), calls)
    assert written() == [(ACCESS, "error"), (COUNT, "error")]


def test_metric_time_is_the_clock_per_instance_and_level_is_metric_level(tmp_path):
    out = tmp_path / "metrics.log"
    times = iter([NOW, NOW + 1_000, NOW + 2_000_000_000])
    instances = {COUNT: InstanceInfo(COUNT, "metric", {"value": ValueType.IP_ADDRESS, "dimensions": {}})}

    def calls(h):
        h.handle_metric(
            [
                MetricInstance(name=COUNT, value=ip("::1"), dimensions={"b": Duration(0), "a": None}),
                MetricInstance(name=COUNT, value=b""),
            ]
        )
        h.handle_metric([MetricInstance(name="other.instance.ns", value=-3.0)])

    run(file_params(out, metricLevel="ERROR"), calls, instances=instances, clock=lambda: next(times))
    assert out.read_text().splitlines() == [
        '{"level":"error","time":"2026-11-20T11:00:00.500000Z","instance":"requestcount.instance.istio-system",'
        '"value":"::1","a":null,"b":"0s"}',
        '{"level":"error","time":"2026-11-20T11:00:00.500001Z","instance":"requestcount.instance.istio-system",'
        '"value":""}',
        '{"level":"error","time":"2026-11-20T11:00:02.500000Z","instance":"other.instance.ns","value":-3}',
    ]


@pytest.mark.parametrize(
    ("value", "is_ip", "text"),
    [
        ('caf\u00e9 "q"\n', False, '"caf\u00e9 \\"q\\"\\n"'),
        (True, False, "true"),
        (-(2**63), False, "-9223372036854775808"),
        (1.0, False, "1"),
        (1e21, False, "1000000000000000000000"),
        (1.5e-7, False, "0.00000015"),
        (float("nan"), False, '"NaN"'),
        (float("-inf"), False, '"-Inf"'),
        (ip("10.0.0.1"), False, '"10.0.0.1"'),
        (ip("2001:db8::1"), False, '"2001:db8::1"'),
        (ip("::ffff:10.0.0.1"), False, '"10.0.0.1"'),  # Go prints IPv4-mapped addresses dotted
        (b"\x01\x02", True, '"?0102"'),
        (b"\x01\x02", False, '"AQI="'),  # bytes that are not an IP: base64
        (Timestamp(0), False, '"1970-01-01T00:00:00.000000Z"'),
        (Timestamp.parse("0099-01-02T03:04:05.000006Z"), False, '"0099-01-02T03:04:05.000006Z"'),
        (Duration(3_723_000_000_000), False, '"1h2m3s"'),
        (Duration(-1_500_000), False, '"-1.5ms"'),
        ({"b": "2", "a": "1"}, False, '{"a":"1","b":"2"}'),
        ({}, False, "{}"),
        (None, False, "null"),
    ],
)
def test_value_formatting(value, is_ip, text):
    assert value_json(value, is_ip) == text


def test_time_format_truncates_to_microseconds():
    assert format_time(Timestamp.parse("2026-01-02T03:04:05.999999999Z")) == "2026-01-02T03:04:05.999999Z"


def test_stdout_and_stderr(capsys):
    run({}, lambda h: h.handle_logentry([entry(a=1)]))
    run(
        {"logStream": "STDERR", "outputAsJson": False},
        lambda h: h.handle_metric([MetricInstance(name=COUNT)]),
    )
    captured = capsys.readouterr()
    assert captured.out == (
        '{"level":"info","time":"2026-11-20T10:00:00.123456Z","instance":"accesslog.instance.istio-system","a":1}\n'
    )
    assert (
        captured.err
        == '2026-11-20T11:00:00.500000Z\tinfo\trequestcount.instance.istio-system\t{"value":null}\n'
    )


def test_handler_calls_only_queue_and_the_background_job_writes(tmp_path):
    out = tmp_path / "bg.log"

    async def main():
        env = make_env(file_params(out))
        h = build(env)
        h.handle_logentry([entry(n=1)])
        assert out.read_text() == ""  # nothing written on the request path
        deadline = time.monotonic() + 2
        while out.read_text() == "" and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        written = out.read_text()
        await h.close()
        await h.close()  # idempotent
        h.handle_logentry([entry(n=2)])  # after close: dropped
        await env.cancel_background()
        return written

    written = asyncio.run(main())
    assert written.endswith('"n":1}\n')
    assert out.read_text() == written


def test_a_full_queue_drops_and_warns(tmp_path, monkeypatch, caplog):
    out = tmp_path / "full.log"
    monkeypatch.setattr(handler_module, "MAX_QUEUED_LINES", 2)

    async def main():
        env = make_env(file_params(out))
        h = build(env)
        h.handle_logentry([entry(n=i) for i in range(5)])
        with caplog.at_level(logging.WARNING, logger="mixerd.adapter.stdio"):
            await h.flush()
        h.handle_logentry([entry(n=9)])
        await h.close()
        await env.cancel_background()

    asyncio.run(main())
    assert [r.getMessage() for r in caplog.records] == [f"{HANDLER}: output fell behind; dropped 3 entries"]
    assert [json.loads(line)["n"] for line in out.read_text().splitlines()] == [0, 1, 9]


def test_rotating_file_by_size_keeps_the_newest_files(tmp_path):
    path = str(tmp_path / "r.log")
    sink = RotatingFile(path, max_bytes=10, backups=2, max_age_ns=0, clock=lambda: 0)
    sink.write(["aaaa\n", "bbbb\n", "cccc\n"])  # 10 bytes fit; the third starts a new file
    sink.write(["dddd\n", "eeeeeeeeeeeeeeee\n", "ffff\n"])  # an oversized line gets a file of its own
    sink.close()
    assert (tmp_path / "r.log").read_text() == "ffff\n"
    assert (tmp_path / "r.log.1").read_text() == "eeeeeeeeeeeeeeee\n"
    assert (tmp_path / "r.log.2").read_text() == "cccc\ndddd\n"
    assert sorted(os.listdir(tmp_path)) == ["r.log", "r.log.1", "r.log.2"]


def test_rotating_file_by_age_and_without_backups(tmp_path):
    now = [0]
    path = str(tmp_path / "a.log")
    (tmp_path / "a.log").write_text("old\n")
    sink = RotatingFile(path, max_bytes=1000, backups=0, max_age_ns=2 * DAY, clock=lambda: now[0])
    sink.write(["one\n"])
    now[0] = 2 * DAY - 1
    sink.write(["two\n"])
    now[0] = 2 * DAY
    sink.write(["three\n", "four\n"])  # too old: rotated once, old content discarded (no backups)
    sink.close()
    assert (tmp_path / "a.log").read_text() == "three\nfour\n"
    assert os.listdir(tmp_path) == ["a.log"]


def test_rotated_file_handler_rotates_at_the_megabyte_limit(tmp_path):
    out = tmp_path / "big.log"
    padding = "x" * 1000
    params = {"logStream": "ROTATED_FILE", "outputPath": str(out), "maxMegabytesBeforeRotation": 1}
    run(params, lambda h: h.handle_logentry([entry(p=padding, n=i) for i in range(1100)]))
    first, second = (tmp_path / "big.log.1").read_text(), out.read_text()
    assert len(first.encode()) <= 1024 * 1024 < len(first.encode()) + len(second.splitlines()[0]) + 1
    lines = first.splitlines() + second.splitlines()
    assert [line.split('"n":')[1].split(",")[0] for line in lines] == [str(i) for i in range(1100)]


def test_rotation_megabytes_are_capped():
    assert rotation_bytes(1) == 1024 * 1024
    assert rotation_bytes(0) == 100 * 1024 * 1024
    assert rotation_bytes(104857600) == 1024 * 1024 * 1024


def test_an_unopenable_file_fails_the_build(tmp_path):
    async def main():
        build(make_env(file_params(tmp_path / "missing" / "x.log")))

    with pytest.raises(FileNotFoundError):
        asyncio.run(main())


def test_defaults_are_mixers():
    assert params_to_dict(read_params(Params, None)) == {
        "logStream": "STDOUT",
        "severityLevels": {
            "INFORMATIONAL": "INFO",
            "INFO": "INFO",
            "WARNING": "WARNING",
            "WARN": "WARNING",
            "ERROR": "ERROR",
            "ERR": "ERROR",
            "FATAL": "ERROR",
        },
        "metricLevel": "INFO",
        "outputAsJson": True,
        "outputLevel": "INFO",
        "outputPath": "",
        "maxMegabytesBeforeRotation": 104857600,
        "maxDaysBeforeRotation": 30,
        "maxRotatedFiles": 1000,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"logStream": "FILE"},
            [(".outputPath", "need a valid output path when using a FILE or ROTATED_FILE log stream")],
        ),
        (
            {"logStream": 3, "maxRotatedFiles": -1, "maxDaysBeforeRotation": -2},
            [
                (".outputPath", "need a valid output path when using a FILE or ROTATED_FILE log stream"),
                (".maxDaysBeforeRotation", "must not be negative, got -2"),
                (".maxRotatedFiles", "must not be negative, got -1"),
            ],
        ),
        (
            {"outputPath": "/tmp/x.log", "max_megabytes_before_rotation": -1},
            [
                (".outputPath", "cannot specify an output path when using a STDOUT or STDERR log stream"),
                (".maxMegabytesBeforeRotation", "must not be negative, got -1"),
            ],
        ),
        (
            {"logStream": "SYSLOG", "outputLevel": "DEBUG", "severityLevels": {"notice": "NOTICE"}},
            [
                (".logStream", "expected one of STDOUT, STDERR, FILE, ROTATED_FILE, got 'SYSLOG'"),
                (".outputLevel", "expected one of INFO, WARNING, ERROR, got 'DEBUG'"),
                (".severityLevels['notice']", "expected one of INFO, WARNING, ERROR, got 'NOTICE'"),
            ],
        ),
    ],
)
def test_validation_problems(params, expected):
    with pytest.raises(ParamsError) as e:
        read_params(Params, params)
    assert e.value.problems == expected


def test_registered_as_a_builtin_adapter():
    info = collect_adapters(make_plugin_manager(entry_points=False))["stdio"]
    assert info.templates == ("logentry", "metric")
    assert info.params is Params
    assert Level.WARNING > Level.INFO


def test_the_docs_example_is_a_valid_handler():
    text = (Path(__file__).parents[3] / "docs" / "adapters" / "stdio.md").read_text()
    (example,) = re.findall(r"```yaml\n(.*?)```", text, re.S)
    doc = yaml.safe_load(example)
    assert (doc["kind"], doc["apiVersion"], doc["spec"]["compiledAdapter"]) == (
        "handler",
        "config.istio.io/v1alpha2",
        "stdio",
    )
    read_params(Params, doc["spec"].get("params"))


def test_long_map_keys_are_encoded_without_being_cached() -> None:
    from mixerd_adapters.stdio import encode

    before = encode._cached_key.cache_info().currsize
    key = "k" * 10_000
    assert value_json({key: "v"}) == json.dumps({key: "v"}, separators=(",", ":"))
    assert encode._cached_key.cache_info().currsize == before
