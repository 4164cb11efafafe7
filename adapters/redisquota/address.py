"""Reading `redisServerUrl` and `sentinels`, purely (config validation may not touch the network).

Accepted forms: `host:port` (Mixer's), `redis://[[user]:password@]host[:port][/db]`, `rediss://...` (TLS)
and `unix:///path/to/socket[?db=N]`. TLS options come as URL query parameters, as redis-py reads them.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from typing import Any

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379

#: URL query parameters mixerd understands, and how each is read.
_TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")
_CERT_REQS = ("none", "optional", "required")
_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class Address:
    """A parsed redisServerUrl."""

    scheme: str  # redis, rediss or unix
    host: str = ""
    port: int = DEFAULT_PORT
    path: str = ""  # the unix socket
    username: str | None = None
    password: str | None = None
    db: int = 0
    tls: dict[str, Any] = field(default_factory=dict)  # ssl_* options for redis-py

    def connection_kwargs(self) -> dict[str, Any]:
        """The keyword arguments redis-py's clients take for this address (host and port aside)."""
        kwargs: dict[str, Any] = {"username": self.username, "password": self.password, "db": self.db}
        if self.scheme == "rediss":
            kwargs["ssl"] = True
            kwargs.update(self.tls)
        return kwargs

    def redacted(self) -> str:
        """The address for log messages: never the password."""
        if self.scheme == "unix":
            return f"unix://{self.path}"
        user = self.username or ""
        auth = f"{user}:***@" if self.password else (f"{user}@" if user else "")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{auth}{host}:{self.port}/{self.db}"


class AddressError(ValueError):
    pass


def parse_address(text: str) -> Address:
    """The address in `text`; AddressError saying what is wrong."""
    text = text.strip()
    if not text:
        raise AddressError("must name the Redis server, e.g. redis://redis:6379 or redis:6379")
    if "://" not in text:
        text = "redis://" + text  # Mixer's host:port
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError as e:
        raise AddressError(f"is not a Redis URL: {e}") from None
    scheme = url.scheme.lower()
    if scheme not in ("redis", "rediss", "unix"):
        raise AddressError(f"has scheme {url.scheme!r}; use redis://, rediss:// (TLS) or unix://")
    if url.fragment:
        raise AddressError("must not have a #fragment")
    query = _query(url.query)
    username = urllib.parse.unquote(url.username) if url.username else None
    password = urllib.parse.unquote(url.password) if url.password is not None else None
    if scheme == "unix":
        if not url.path:
            raise AddressError("unix:// needs the socket's path, e.g. unix:///run/redis/redis.sock")
        db = _db(query.pop("db", "0"))
        _no_options(query, allowed=())
        return Address("unix", path=url.path, username=username, password=password, db=db)
    if not url.hostname:
        raise AddressError("has no host")
    if any(c.isspace() for c in url.hostname):
        raise AddressError(f"has a space in its host {url.hostname!r}")
    path = url.path.strip("/")
    if path and "db" in query:
        raise AddressError("names the database twice (path and ?db=)")
    db = _db(query.pop("db", path or "0"))
    tls = _tls(query) if scheme == "rediss" else {}
    _no_options(query, allowed=_TLS_OPTIONS if scheme == "rediss" else ())
    return Address(
        scheme,
        host=url.hostname,
        port=port or DEFAULT_PORT,
        username=username,
        password=password,
        db=db,
        tls=tls,
    )


def address_problems(text: str, *, cluster: bool = False, sentinel: bool = False) -> list[str]:
    """Why `text` is not a usable redisServerUrl (for the mode chosen), or nothing."""
    try:
        address = parse_address(text)
    except AddressError as e:
        return [str(e)]
    problems = []
    if address.scheme == "unix" and (cluster or sentinel):
        mode = "a Redis Cluster" if cluster else "Sentinel"
        problems.append(f"{mode} is reached over TCP, not a unix socket")
    if cluster and address.db != 0:
        problems.append(f"a Redis Cluster has only database 0, got {address.db}")
    return problems


def parse_sentinel(text: str) -> tuple[str, int]:
    """(host, port) of a Sentinel written `host[:port]`."""
    try:
        url = urllib.parse.urlsplit("//" + text.strip())
        port = url.port
    except ValueError as e:
        raise AddressError(f"is not host:port: {e}") from None
    bad = not url.hostname or any(c.isspace() for c in url.hostname)
    if bad or url.path or url.query or url.username or url.password:
        raise AddressError(f"expected host:port, got {text!r}")
    return url.hostname, port or DEFAULT_SENTINEL_PORT


def sentinel_problems(text: str) -> list[str]:
    try:
        parse_sentinel(text)
    except AddressError as e:
        return [str(e)]
    return []


def _query(text: str) -> dict[str, str]:
    try:
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
    except ValueError as e:
        raise AddressError(f"has a bad query: {e}") from None
    out: dict[str, str] = {}
    for name, value in pairs:
        if name in out:
            raise AddressError(f"sets {name} twice")
        out[name] = value
    return out


def _db(text: str) -> int:
    if not text.isdigit():
        raise AddressError(f"the database must be a number, got {text!r}")
    return int(text)


def _tls(query: dict[str, str]) -> dict[str, Any]:
    tls: dict[str, Any] = {}
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if name in query:
            tls[name] = query.pop(name)
    if "ssl_cert_reqs" in query:
        reqs = query.pop("ssl_cert_reqs").lower()
        if reqs not in _CERT_REQS:
            raise AddressError(f"ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, got {reqs!r}")
        tls["ssl_cert_reqs"] = reqs
    if "ssl_check_hostname" in query:
        flag = query.pop("ssl_check_hostname").lower()
        if flag not in _BOOLEANS:
            raise AddressError(f"ssl_check_hostname must be true or false, got {flag!r}")
        tls["ssl_check_hostname"] = _BOOLEANS[flag]
    return tls


def _no_options(query: dict[str, str], allowed: tuple[str, ...]) -> None:
    if query:
        known = f" (known: db, {', '.join(allowed)})" if allowed else " (known: db)"
        raise AddressError(f"has unknown option {', '.join(sorted(query))}{known}")
