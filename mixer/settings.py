"""Every server setting, declared once (in `Settings`): name, type, default, environment variable, help.

The CLI builds its `serve` flags from this declaration, docs/settings.md documents it (a test keeps the
two in agreement), and each flag can also come from the environment as MIXERD_<NAME>.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ENV_PREFIX = "MIXERD_"


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is outside 0..65535")
    return value


def _port_or_off(text: str) -> int:
    value = int(text)
    if not -1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 0..65535 (or -1 for none)")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    return value


def _optional_str(text: str) -> str | None:
    return text or None


def _switch(text: str) -> bool:
    """true or false, in the words Go's strconv.ParseBool takes (envoyproxy/ratelimit's variables)."""
    value = text.strip().lower()
    if value in ("1", "t", "true"):
        return True
    if value in ("0", "f", "false"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _interval(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"{value} must be more than 0")
    return value


def _ratio(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{value} is not between 0 and 1")
    return value


def _optional_address(text: str) -> str | None:
    """host:port (or [IPv6]:port), or empty for none."""
    if not text:
        return None
    host, sep, port = text.rpartition(":")
    bare_ipv6 = ":" in host and not host.startswith("[")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536 or bare_ipv6:
        raise ValueError(f"expected host:port (an IPv6 host in brackets), got {text!r}")
    return text


def _decision_log(text: str) -> str:
    """off, stdout, or the path of a file (rotated); empty means off."""
    value = text.strip()
    if value.lower() in ("", "off"):
        return "off"
    if value.lower() == "stdout":
        return "stdout"
    if value.endswith(("/", os.sep)):
        raise ValueError(f"{text!r} is a folder; name a file in it, or use off or stdout")
    return value


def _name_list(text: str) -> str:
    """Comma-separated names, lower-cased and without blanks (matching is case-insensitive)."""
    names = [n.strip().lower() for n in text.split(",")]
    return ",".join(n for n in names if n)


def _setting(default: Any, parse: Callable[[str], Any], help: str, metavar: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help, "metavar": metavar})


@dataclass(frozen=True, slots=True)
class Settings:
    """The server's settings; each field is one flag `--name-with-dashes` and one MIXERD_NAME variable."""

    port: int = _setting(
        9091, _port, "gRPC port for the Mixer API; 0 picks a free port and prints it", "PORT"
    )
    address: str = _setting("0.0.0.0", str, "address the gRPC and monitoring servers bind to", "HOST")
    # -- TLS (docs/settings.md, "TLS and mTLS"); files are re-read when they change --
    tls_cert_file: str | None = _setting(
        None, _optional_str, "PEM certificate chain: the gRPC port serves TLS (needs --tls-key-file)", "FILE"
    )
    tls_key_file: str | None = _setting(None, _optional_str, "PEM private key of --tls-cert-file", "FILE")
    tls_client_ca_file: str | None = _setting(
        None,
        _optional_str,
        "PEM CA certificates: the gRPC port requires client certificates they sign",
        "FILE",
    )
    monitoring_tls_cert_file: str | None = _setting(
        None, _optional_str, "PEM certificate chain: the monitoring port serves HTTPS", "FILE"
    )
    monitoring_tls_key_file: str | None = _setting(
        None, _optional_str, "PEM private key of --monitoring-tls-cert-file", "FILE"
    )
    # -- end of TLS --
    config: str | None = _setting(
        None, _optional_str, "folder of rule YAML files; unset: the embedded default rules", "DIR"
    )
    config_default_namespace: str = _setting(
        "istio-system",
        str,
        "config namespace whose rules apply to every request (Mixer's default)",
        "NAMESPACE",
    )
    config_poll_interval: float = _setting(
        0.5,
        _seconds,
        "seconds between checks of the --config folder for changes; 0 turns reloading off",
        "SECONDS",
    )
    handler_retry_interval: float = _setting(
        1.0,
        _seconds,
        "seconds before a handler whose build failed is built again (doubling up to 60 s while it still "
        "fails); 0 turns retrying off",
        "SECONDS",
    )
    config_max_file_bytes: int = _setting(
        4 * 1024 * 1024,
        _positive,
        "largest config file read, in bytes; a larger one is a config error",
        "BYTES",
    )
    config_max_total_bytes: int = _setting(
        32 * 1024 * 1024,
        _positive,
        "most bytes read from all config files together; beyond it the config is rejected",
        "BYTES",
    )
    adapter_timeout: float = _setting(
        5.0, _seconds, "longest wait on an adapter when the caller set no shorter deadline", "SECONDS"
    )
    monitoring_port: int = _setting(
        15014, _port, "HTTP port for mixerd's own /metrics, /version, /healthz, /readyz; 0 picks one", "PORT"
    )
    # -- admin: the introspection page (docs/admin.md) --
    admin_port: int = _setting(
        9876,
        _port_or_off,
        "HTTP port of the admin page (config in force, routes, handlers, quotas; ControlZ's port); "
        "0 picks a free port, -1 turns it off",
        "PORT",
    )
    admin_address: str = _setting(
        "127.0.0.1",
        str,
        "address the admin page binds to: it shows the config and internals, so local unless opened",
        "HOST",
    )
    # -- end of admin --
    prometheus_port: int = _setting(
        42422,
        _port,
        "HTTP port of the /metrics endpoint all prometheus adapter handlers share; 0 picks one",
        "PORT",
    )
    shutdown_grace: float = _setting(
        10.0, _seconds, "seconds in-flight calls get to finish after SIGTERM/SIGINT", "SECONDS"
    )
    max_message_size: int = _setting(4 * 1024 * 1024, int, "largest gRPC message accepted, in bytes", "BYTES")
    max_concurrent_streams: int = _setting(
        1024, _positive, "most calls and streams one gRPC connection may have open at once", "STREAMS"
    )
    shed_latency: float = _setting(
        0.05,
        _seconds,
        "queueing delay past which calls are answered UNAVAILABLE at once (load shedding); 0 turns it off",
        "SECONDS",
    )
    authz_cache_size: int = _setting(
        10000,
        _count,
        "ext_authz verdicts kept in the verdict cache (least recently used dropped first); 0 turns it off",
        "ENTRIES",
    )
    authz_cache_bytes: int = _setting(
        64 * 1024 * 1024,
        _count,
        "bytes the ext_authz verdict cache may hold (keys and answers; least recently used dropped first); "
        "an entry over 1/64 of it is not cached; 0 turns the cache off",
        "BYTES",
    )
    # -- Envoy's rate limit service (docs/envoy/ratelimit.md); envoyproxy/ratelimit's variable in brackets --
    ratelimit_config: str | None = _setting(
        None,
        _optional_str,
        "folder of envoyproxy/ratelimit config files (*.yaml, as they are), reloaded like --config",
        "DIR",
    )
    ratelimit_handler: str | None = _setting(
        None,
        _optional_str,
        "memquota or redisquota handler of --config (name or FQN) counting --ratelimit-config's domains; "
        "unset: in memory",
        "HANDLER",
    )
    ratelimit_merge_domain_config: bool = _setting(
        False, _switch, "let several --ratelimit-config files add to one domain [MERGE_DOMAIN_CONFIG]", "BOOL"
    )
    ratelimit_shadow_mode: bool = _setting(
        False, _switch, "answer OK overall whatever the limits say, and count it [SHADOW_MODE]", "BOOL"
    )
    ratelimit_quota_mode: bool = _setting(
        False, _switch, "every descriptor in quota mode [QUOTA_MODE]", "BOOL"
    )
    ratelimit_stop_cache_key_increment_when_overlimit: bool = _setting(
        False,
        _switch,
        "a request over one limit is counted by none [STOP_CACHE_KEY_INCREMENT_WHEN_OVERLIMIT]",
        "BOOL",
    )
    ratelimit_near_limit_ratio: float = _setting(
        0.8, _ratio, "share of a limit past which hits count as near_limit [NEAR_LIMIT_RATIO]", "RATIO"
    )
    ratelimit_limit_response_headers_enabled: bool = _setting(
        False,
        _switch,
        "answers carry RateLimit-Limit/Remaining/Reset headers [LIMIT_RESPONSE_HEADERS_ENABLED]",
        "BOOL",
    )
    ratelimit_limit_limit_header: str = _setting(
        "RateLimit-Limit", str, "name of the limit header [LIMIT_LIMIT_HEADER]", "NAME"
    )
    ratelimit_limit_remaining_header: str = _setting(
        "RateLimit-Remaining", str, "name of the remaining header [LIMIT_REMAINING_HEADER]", "NAME"
    )
    ratelimit_limit_reset_header: str = _setting(
        "RateLimit-Reset", str, "name of the reset header [LIMIT_RESET_HEADER]", "NAME"
    )
    ratelimit_response_dynamic_metadata: bool = _setting(
        False,
        _switch,
        "answers carry the request and passed descriptors' metadata as dynamic metadata "
        "[RESPONSE_DYNAMIC_METADATA]",
        "BOOL",
    )
    ratelimit_statsd_address: str | None = _setting(
        None,
        _optional_address,
        "host:port of a statsd server to send envoyproxy/ratelimit's stats to [STATSD_HOST, STATSD_PORT]",
        "ADDRESS",
    )
    ratelimit_stats_flush_interval: float = _setting(
        10.0, _interval, "seconds between statsd sends [STATS_FLUSH_INTERVAL]", "SECONDS"
    )
    # -- end of Envoy's rate limit service --
    # -- decision logs (docs/decision-logs.md) --
    decision_log: str = _setting(
        "off",
        _decision_log,
        "where each Check, ext_authz and rate-limit decision is written as one JSON line: off, stdout, "
        "or a file (rotated)",
        "off|stdout|FILE",
    )
    decision_log_sample: float = _setting(
        1.0, _ratio, "share of decisions written to the decision log, 0..1 (1: every one)", "RATIO"
    )
    decision_log_max_bytes: int = _setting(
        64 * 1024 * 1024, _positive, "size past which the decision log file is rotated", "BYTES"
    )
    decision_log_backups: int = _setting(
        3, _count, "rotated decision log files kept (FILE.1 ... FILE.N); 0 keeps none", "FILES"
    )
    decision_log_redact: str = _setting(
        "authorization,cookie,set-cookie,proxy-authorization,x-api-key",
        _name_list,
        "attribute names and string-map keys (headers) whose values the decision log writes as <redacted>",
        "NAMES",
    )
    # -- end of decision logs --
    log_level: str = _setting("info", str, "log level: debug, info, warning or error", "LEVEL")
    log_level_grpc: str = _setting(
        "warning", str, "log level of the libraries under mixerd (gRPC, asyncio, clients)", "LEVEL"
    )
    log_format: str = _setting("text", str, "log line format: text, or json (one object per line)", "FORMAT")


@dataclass(frozen=True, slots=True)
class Setting:
    """One declared setting, as the CLI and the docs see it."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.name, f.metadata["parse"], f.default, f.metadata["help"], f.metadata["metavar"])
    for f in fields(Settings)
)


def add_arguments(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str] | None = None,
    only: Collection[str] | None = None,
) -> None:
    """Add one flag per setting (or per setting named in `only`); a MIXERD_<NAME> environment variable
    replaces the default."""
    env = os.environ if environ is None else environ
    for s in SETTINGS:
        if only is not None and s.name not in only:
            continue
        default = s.default
        if s.env_var in env:
            try:
                default = s.parse(env[s.env_var])
            except ValueError as e:
                parser.error(f"{s.env_var}={env[s.env_var]!r}: {e}")
        parser.add_argument(
            s.flag,
            dest=s.name,
            type=s.parse,
            default=default,
            metavar=s.metavar,
            help=f"{s.help} (env {s.env_var}; default {s.default})",
        )


def from_namespace(ns: argparse.Namespace) -> Settings:
    """Settings from parsed arguments (those added by add_arguments)."""
    return Settings(**{s.name: getattr(ns, s.name) for s in SETTINGS})
