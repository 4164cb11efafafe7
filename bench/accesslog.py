"""Server CPU per Envoy access-log entry (ALS v3 StreamAccessLogs) against Report of the same requests as
Mixer bags, through Istio's default telemetry config and through no rules, in one run.

The entries are what Envoy 1.40 sends for an inbound HTTP request on an Istio sidecar (its fields and
sizes as a real Envoy filled them: addresses, timings, three logged request headers, the Istio cluster
name), from a stream whose identifier carries an Istio node. The equivalent Mixer bags are exactly the
bags mixerd makes of those entries (accesslog_attributes), sent in 100-bag Reports. Each ALS message
carries 100 entries, so both sides dispatch 100 bags per pipeline run; a client process keeps one ALS
stream open for the whole round, as Envoy does.

Two servers: rules/istio (prometheus with Istio's eight metrics, kubernetesenv as the attribute generator,
unavailable outside a cluster) and an empty config (the cost of decoding and mapping alone). Rounds
alternate servers and protocols; server CPU comes from /proc; medians and ratios are printed.

Usage: python bench/accesslog.py [--batches N] [--rounds N] [--clients N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from _common import MIXERD_READY, MIXERD_SERVE, drive, per_call_us, same_body, server_process
from google.protobuf import json_format
from rpc import REPORT

from mixerd.api.envoy.config.core.v3 import base_pb2
from mixerd.api.envoy.data.accesslog.v3 import accesslog_pb2
from mixerd.api.envoy.service.accesslog.v3 import als_pb2
from mixerd.attribute import encode_report
from mixerd.bundled import rules_folder
from mixerd.server.envoy.accesslog_attributes import http_attributes, reporter_from_node

ALS = "/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs"
MIXERD = list(MIXERD_SERVE)
ENTRIES = 100
Message = als_pb2.StreamAccessLogsMessage

NODE = base_pb2.Node(
    id="sidecar~10.44.0.17~reviews-v2-7bf8c9648f-xcvd4.default~default.svc.cluster.local",
    cluster="reviews.default",
)


def http_entry(n: int) -> accesslog_pb2.HTTPAccessLogEntry:
    """An inbound request to reviews as Envoy logs it; `n` varies path, ids, ports and times."""
    start = f"2026-11-20T10:00:{n // 1000 % 60:02d}.{345213 + n:09d}Z"
    return json_format.ParseDict(
        {
            "common_properties": {
                "downstream_remote_address": {
                    "socket_address": {"address": "10.44.0.12", "port_value": 40000 + n}
                },
                "downstream_local_address": {"socket_address": {"address": "10.44.0.17", "port_value": 9080}},
                "start_time": start,
                "time_to_last_rx_byte": "0.000022373s",
                "time_to_first_upstream_tx_byte": "0.000320007s",
                "time_to_last_upstream_tx_byte": "0.000320107s",
                "time_to_first_upstream_rx_byte": "0.004062880s",
                "time_to_last_upstream_rx_byte": "0.004135018s",
                "time_to_first_downstream_tx_byte": "0.004124322s",
                "time_to_last_downstream_tx_byte": "0.004210000s",
                "upstream_remote_address": {"socket_address": {"address": "10.44.0.17", "port_value": 9080}},
                "upstream_local_address": {
                    "socket_address": {"address": "10.44.0.17", "port_value": 50000 + n}
                },
                "upstream_cluster": "inbound|9080|http|reviews.default.svc.cluster.local",
                "downstream_direct_remote_address": {
                    "socket_address": {"address": "10.44.0.12", "port_value": 40000 + n}
                },
                "duration": "0.004300000s",
                "upstream_request_attempt_count": 1,
                "stream_id": f"282d1877-ed13-4cdd-9d3c-{n:012d}",
                "downstream_wire_bytes_sent": 157,
                "downstream_wire_bytes_received": 179,
                "upstream_wire_bytes_sent": 276,
                "upstream_wire_bytes_received": 125,
                "access_log_type": "DownstreamEnd",
            },
            "protocol_version": "HTTP11",
            "request": {
                "request_method": "GET",
                "scheme": "http",
                "authority": "reviews:9080",
                "path": f"/reviews/{n}",
                "user_agent": "python-requests/2.31.0",
                "request_id": f"282d1877-ed13-4cdd-9d3c-{n:012d}",
                "request_headers_bytes": 255,
                "request_headers": {"x-user": "jason", "content-type": "text/plain", "x-b3-sampled": "0"},
                "upstream_header_bytes_sent": 245,
                "downstream_header_bytes_received": 141,
            },
            "response": {
                "response_code": 200,
                "response_headers_bytes": 119,
                "response_body_bytes": 295,
                "response_headers": {"content-type": "application/json"},
                "response_code_details": "via_upstream",
                "upstream_header_bytes_received": 97,
                "downstream_header_bytes_sent": 133,
            },
        },
        accesslog_pb2.HTTPAccessLogEntry(),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=100, help="100-entry messages (or Reports) per client")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()

    entries = [http_entry(n) for n in range(ENTRIES)]
    logs = Message.HTTPAccessLogEntries(log_entry=entries)
    first = Message(identifier=Message.Identifier(node=NODE, log_name="mixerd"), http_logs=logs)
    body = Message(http_logs=logs).SerializeToString()
    reporter = reporter_from_node(NODE)
    bags = [http_attributes(e, reporter) for e in entries]
    report = encode_report(bags).SerializeToString()
    print(
        f"one entry: {len(body) / ENTRIES:.0f} bytes in an ALS message, "
        f"{len(report) / ENTRIES:.0f} bytes as a Mixer bag in a Report; {len(bags[0])} attributes"
    )

    parse_us = per_call_us(lambda: Message.FromString(body)) / ENTRIES
    map_us = per_call_us(lambda: [http_attributes(e, reporter) for e in logs.log_entry]) / ENTRIES
    print(f"in process: parsing {parse_us:.1f} us per entry, mapping to a bag {map_us:.1f} us per entry")

    # Each client keeps one stream open for the whole round, as Envoy does, after a two-message stream to
    # warm up; a stream's first message carries the identifier.
    opening = first.SerializeToString()
    warm_up = [opening] * 2
    streams = [[*warm_up, opening] + [body] * (args.batches - 1)] * args.clients
    per: dict[str, list[float]] = {}
    work = args.batches * args.clients * ENTRIES
    with (
        tempfile.TemporaryDirectory() as empty,
        server_process([*MIXERD, "--config", empty], MIXERD_READY) as norules,
        server_process(
            [*MIXERD, "--config", str(rules_folder("istio")), "--prometheus-port", "0"], MIXERD_READY
        ) as istio,
    ):
        for _ in range(args.rounds):
            for name, server in (("no rules", norules), ("Istio telemetry", istio)):
                cpu = drive(server, ALS, streams, warm_up=len(warm_up), stream=True).cpu
                per.setdefault(f"{name}: ALS entry", []).append(cpu / work * 1e6)
                cpu = drive(server, REPORT, same_body(report, args.batches, args.clients)).cpu
                per.setdefault(f"{name}: Report bag", []).append(cpu / work * 1e6)

    med = {key: statistics.median(values) for key, values in per.items()}
    print(
        f"{args.rounds} rounds, {args.clients} client processes, {ENTRIES} entries per message / bags per "
        "Report; server CPU per request (median of rounds)"
    )
    for key, us in med.items():
        print(f"  {key:32s} {us:7.1f} us")
    for name in ("no rules", "Istio telemetry"):
        als, mixer = med[f"{name}: ALS entry"], med[f"{name}: Report bag"]
        print(f"  {name}: ALS / Report {als / mixer:.2f}x ({als - mixer:+.1f} us per entry)")
    print(f"  (rounds: {'; '.join(f'{k}: ' + ' '.join(f'{x:.1f}' for x in v) for k, v in per.items())})")


if __name__ == "__main__":
    sys.exit(main())
