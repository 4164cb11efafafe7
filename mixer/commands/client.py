"""`mixerd check` and `mixerd report`: a Mixer test client in the manner of Istio's mixc.

Exit codes: 0 when every RPC completed (a denied precondition is still a completed RPC), 1 when any RPC
failed, 2 for usage errors (argparse's convention), 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..attribute import GLOBAL_WORDS
from ..client import attrs, calls
from ..client import explain as explain_client
from ..client.tls import ClientTls, TlsFlagError, client_tls
from .explain_text import print_explanation

_DEFAULT_MIXER = "localhost:9091"
_DEFAULT_TIMEOUT = 10.0


# -- parsing ------------------------------------------------------------------------------------------


class _AttributesAction(argparse.Action):
    """Parses one attribute flag value at once, so that a bad item is a usage error naming the flag as
    typed; all attribute flags share one dict, in command-line order (a later flag wins a name)."""

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        try:
            parsed = attrs.parse_attribute_flag(str(option), self.const, str(values))
        except attrs.AttributeFlagError as e:
            raise argparse.ArgumentError(None, str(e)) from None
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **parsed})


class _QuotasAction(argparse.Action):
    def __call__(
        self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option: Any = None
    ) -> None:
        try:
            parsed = attrs.parse_quotas(str(option), str(values))
        except attrs.AttributeFlagError as e:
            raise argparse.ArgumentError(None, str(e)) from None
        setattr(namespace, self.dest, {**(getattr(namespace, self.dest) or {}), **parsed})


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} is not a positive number")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{value} is not a positive number")
    return value


# argparse names the converter in its message ("invalid _positive_int value"); name the expectation.
_positive_int.__name__ = "positive integer"
_positive_float.__name__ = "positive number"


def add_attribute_flags(
    p: argparse.ArgumentParser, action: type[argparse.Action] = _AttributesAction
) -> None:
    """The typed attribute flags (-s, -i, ..., -a), collected into args.attribute_values by `action`."""
    group = p.add_argument_group("attributes", "each flag takes name=value,... and can be repeated")
    for kind in attrs.ATTRIBUTE_KINDS:
        group.add_argument(
            *kind.options,
            action=action,
            const=kind.name,
            dest="attribute_values",
            metavar="NAME=VALUE,...",
            help=kind.help,
        )
        if kind.mixc_option:  # so that mixc command lines work unchanged
            group.add_argument(
                kind.mixc_option,
                action=action,
                const=kind.name,
                dest="attribute_values",
                help=argparse.SUPPRESS,
            )
    p.set_defaults(attribute_values=None)


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-m",
        "--mixer",
        default=_DEFAULT_MIXER,
        metavar="HOST:PORT",
        help=f"Mixer address (default {_DEFAULT_MIXER})",
    )
    _add_tls(p)
    add_attribute_flags(p)
    run = p.add_argument_group("running")
    run.add_argument(
        "-r", "--repeat", type=_positive_int, default=1, metavar="N", help="calls to make (default 1)"
    )
    run.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=1,
        metavar="N",
        help="calls in flight at once (default 1)",
    )
    run.add_argument(
        "--timeout",
        type=_positive_float,
        default=_DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"deadline of each call (default {_DEFAULT_TIMEOUT:g})",
    )
    run.add_argument(
        "--use-global-dictionary",
        dest="global_dictionary",
        action="store_true",
        default=True,
        help=f"send global-dictionary indices for known words (global_word_count {len(GLOBAL_WORDS)})",
    )
    run.add_argument(
        "--no-global-dictionary",
        dest="global_dictionary",
        action="store_false",
        help="send every word in the message (global_word_count 0), as mixc does",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _add_tls(p: argparse.ArgumentParser) -> None:
    tls = p.add_argument_group("TLS", "for a server with --tls-cert-file; each file flag implies --tls")
    tls.add_argument("--tls", action="store_true", help="connect over TLS (plaintext by default)")
    tls.add_argument(
        "--tls-ca-file",
        metavar="FILE",
        help="PEM CA certificates to check the server's certificate with (default: the system's)",
    )
    tls.add_argument(
        "--tls-cert-file", metavar="FILE", help="PEM client certificate, for servers that ask for one (mTLS)"
    )
    tls.add_argument("--tls-key-file", metavar="FILE", help="PEM private key of --tls-cert-file")
    tls.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help="name the server's certificate must hold (and SNI), when not the --mixer host",
    )


def _client_tls(args: argparse.Namespace) -> ClientTls | None:
    return client_tls(args.tls, args.tls_ca_file, args.tls_cert_file, args.tls_key_file, args.tls_server_name)


def add_parser(subparsers: Any) -> None:
    check = subparsers.add_parser(
        "check",
        help="send Check requests (preconditions and quotas) to a Mixer server",
        usage="mixerd check [-m HOST:PORT] [ATTRIBUTE FLAGS] [-q NAME=AMOUNT,...] [OPTIONS]",
        description="Send istio.mixer.v1 Check requests built from the attribute flags and print the answer.",
    )
    _add_common(check)
    q = check.add_argument_group("quotas")
    q.add_argument(
        "-q",
        "--quotas",
        action=_QuotasAction,
        default=None,
        metavar="NAME=AMOUNT,...",
        help="quotas to allocate, e.g. requestcount=1",
    )
    q.add_argument("--best-effort", action="store_true", help="allow partial grants for every quota")
    q.add_argument(
        "--dedup-id",
        metavar="ID",
        help="deduplication_id for every call (default: <uuid><n>, new n per call)",
    )
    e = check.add_argument_group(
        "explain", "ask the server's admin page why, instead of calling Check (docs/admin.md)"
    )
    e.add_argument(
        "--explain",
        action="store_true",
        help="explain the decision rule by rule, as a dry run: no quota is charged, nothing reported",
    )
    e.add_argument(
        "--admin",
        default=explain_client.DEFAULT_ADMIN,
        metavar="HOST:PORT",
        help=f"the server's admin page, for --explain (default {explain_client.DEFAULT_ADMIN})",
    )
    check.set_defaults(run=run_check)

    report = subparsers.add_parser(
        "report",
        help="send Report requests (telemetry) to a Mixer server",
        usage="mixerd report [-m HOST:PORT] [ATTRIBUTE FLAGS] [--report-batch-size N] [--delta] [OPTIONS]",
        description="Send istio.mixer.v1 Report requests, each with a batch of the same attribute bag.",
    )
    _add_common(report)
    r = report.add_argument_group("batching")
    for options, help_text in (
        (("--report-batch-size",), "bags per ReportRequest, all the same attributes (default 1)"),
        (("--report_batch_size",), argparse.SUPPRESS),  # mixc's spelling
    ):
        r.add_argument(
            *options, dest="report_batch_size", type=_positive_int, default=1, metavar="N", help=help_text
        )
    r.add_argument(
        "--delta",
        action="store_true",
        help="DELTA_ENCODING (later bags carry only changes); default INDEPENDENT_ENCODING as proxies send",
    )
    report.set_defaults(run=run_report)


# -- running ------------------------------------------------------------------------------------------


def _global_word_count(args: argparse.Namespace) -> int:
    return len(GLOBAL_WORDS) if args.global_dictionary else 0


def run_check(args: argparse.Namespace) -> int:
    if args.explain:
        return run_explain(args)
    try:
        tls = _client_tls(args)
    except TlsFlagError as e:
        return _usage_error(args, e)
    values: dict[str, Any] = args.attribute_values or {}
    quotas: dict[str, int] = args.quotas or {}
    template = calls.build_check_request(values, _global_word_count(args), quotas, args.best_effort)
    dedup_ids = calls.DedupIds(args.dedup_id)

    def describe(response: Any) -> dict[str, Any]:
        return calls.check_result(response, calls.string_map_predicate(values))

    with calls.mixer_stub(args.mixer, tls) as stub:

        def one_call() -> Any:
            request = calls.CheckRequest()
            request.CopyFrom(template)
            request.deduplication_id = dedup_ids()
            return stub.Check(request, timeout=args.timeout)

        return _run(args, "Check", one_call, describe, _print_check, quotas)


def run_explain(args: argparse.Namespace) -> int:
    """`mixerd check --explain`: 0 explained, 1 the admin page could not be asked, 2 a usage error (the
    server refusing an attribute or its type is one)."""
    if args.repeat > 1:
        return _usage_error(args, ValueError("--explain makes one request: leave out --repeat"))
    try:
        body = explain_client.explain_body(
            args.attribute_values or {}, args.quotas or {}, args.best_effort, args.dedup_id
        )
        result = explain_client.ask(args.admin, body, args.timeout)
    except attrs.AttributeFlagError as e:
        return _usage_error(args, e)
    except explain_client.ExplainFailed as e:
        print(f"mixerd check: explain: {e}", file=sys.stderr)
        return 2 if e.usage else 1
    if args.json:
        print(json.dumps(result))
    else:
        print_explanation(result)
    return 0


def run_report(args: argparse.Namespace) -> int:
    try:
        tls = _client_tls(args)
    except TlsFlagError as e:
        return _usage_error(args, e)
    values: dict[str, Any] = args.attribute_values or {}
    request = calls.build_report_request(values, args.report_batch_size, _global_word_count(args), args.delta)
    bags = args.report_batch_size
    with calls.mixer_stub(args.mixer, tls) as stub:
        return _run(
            args,
            "Report",
            partial(stub.Report, request, timeout=args.timeout),
            lambda _response: calls.report_result(bags),
            _print_report,
            None,
        )


def _usage_error(args: argparse.Namespace, error: Exception) -> int:
    print(f"mixerd {args.command}: error: {error}", file=sys.stderr)
    return 2


def _run(
    args: argparse.Namespace,
    rpc: str,
    one_call: Callable[[], Any],
    describe: Callable[[Any], dict[str, Any]],
    print_result: Callable[[Mapping[str, Any]], None],
    quotas: Mapping[str, int] | None,
) -> int:
    """Make the calls, print the first answer (and a summary when repeated); the exit code."""
    tally = calls.Tally(quotas)
    elapsed, interrupted = calls.run_repeated(one_call, args.repeat, args.concurrency, tally)
    first = tally.first_response
    result: dict[str, Any] = describe(first) if first is not None else {}
    failures = list(tally.failures.values())
    if failures and first is None:
        result["error"] = calls.error_result(failures[0])
    if args.repeat > 1:
        result["summary"] = tally.summary(elapsed, args.concurrency)
        if interrupted:
            result["summary"]["interrupted"] = True

    for failure in failures:  # one line per distinct code, so a repeated failure does not flood stderr
        print(calls.rpc_error_line(failure), file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        if first is not None:
            print_result(result)
        if "summary" in result:
            _print_summary(rpc, result["summary"])
    if interrupted:
        print(f"interrupted after {tally.calls} of {args.repeat} calls", file=sys.stderr)
        return 130
    return 1 if failures else 0


# -- text output ----------------------------------------------------------------------------------------


def _status(code: str, message: str) -> str:
    return f"{code} ({message})" if message else code


def _print_check(result: Mapping[str, Any]) -> None:
    print(f"Check RPC completed successfully. Check status was {_status(result['code'], result['message'])}")
    print(f"  Valid use count: {result['valid_use_count']}, valid duration: {result['valid_duration']}")
    if result["referenced_attributes"]:
        print("  Referenced Attributes")
        for ref in result["referenced_attributes"]:
            name = f"{ref['name']}::{ref['key']}" if ref["key"] is not None else ref["name"]
            print(f"    {name} {ref['condition']}")
    if result["quotas"]:
        rows = [("Quota", "Granted Amount", "Duration", "Status")]
        rows += [
            (name, str(q["granted_amount"]), q["valid_duration"], _status(q["code"], q.get("message", "")))
            for name, q in result["quotas"].items()
        ]
        _print_table(rows, indent="  ")
    directive = result.get("route_directive")
    if directive:
        print("  Route Directive")
        for key, value in directive.items():
            print(f"    {key}: {json.dumps(value)}")


def _print_table(rows: list[tuple[str, ...]], indent: str) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(indent + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _print_report(result: Mapping[str, Any]) -> None:
    bags = result["bags"]
    print(f"Report RPC returned OK ({bags} bag{'s' if bags != 1 else ''})")  # mixc's wording


def _print_summary(rpc: str, s: Mapping[str, Any]) -> None:
    rate = f", {s['calls_per_second']} calls/s" if s["calls_per_second"] is not None else ""
    print(
        f"{rpc}: {s['calls']} calls in {s['elapsed_seconds']}s (concurrency {s['concurrency']}{rate}): "
        f"{s['ok']} OK, {s['errors']} failed"
    )
    print("  RPC codes: " + ", ".join(f"{code} {n}" for code, n in s["rpc_codes"].items()))
    if s.get("codes"):
        print("  Check status: " + ", ".join(f"{code} {n}" for code, n in s["codes"].items()))
    for name, q in s.get("quotas", {}).items():
        print(
            f"  Quota {name}: {q['granted_in_full']} granted in full, {q['short']} short "
            f"({q['granted_total']} granted in all)"
        )
    lat = s.get("latency_ms")
    if lat:
        print(
            f"  Latency: p50 {lat['p50']}ms, p99 {lat['p99']}ms "
            f"(min {lat['min']}ms, max {lat['max']}ms, mean {lat['mean']}ms)"
        )
