"""listchecker: the four entry types, white- and blacklists, exact messages, and a real HTTP provider
driven by direct `refresh()` calls on an injected clock."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mixerd.adapter import AdapterInfo, CheckResult, Code, Duration, Env
from mixerd.params import ParamsError, read_params
from mixerd.templates import ListEntryInstance
from mixerd_adapters import listchecker
from mixerd_adapters.listchecker import EntryType, ListChecker, ListUnavailable, Params, validate

S = 1_000_000_000
HANDLER = "list.handler.istio-system"
EMPTY_OK = CheckResult(valid_duration=Duration(0), valid_use_count=0)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000 * S

    def __call__(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += round(seconds * S)


class Provider:
    """A list served over real HTTP on 127.0.0.1, whose body and status the test changes."""

    def __init__(self) -> None:
        self.body = b""
        self.status = 200
        self.hits = 0
        self.url = ""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[list[Provider], int]]:
    """One server for the module (stopping one takes a poll interval); `provider` resets its state."""
    state = [Provider()]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            current = state[0]
            current.hits += 1
            body = current.body if current.status == 200 else b"oops"
            self.send_response(current.status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state, httpd.server_port
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@pytest.fixture
def provider(server: tuple[list[Provider], int]) -> Provider:
    state, port = server
    state[0] = Provider()
    state[0].url = f"http://127.0.0.1:{port}/list.txt"
    return state[0]


def make(params: dict, clock: Clock | None = None) -> ListChecker:
    env = Env(handler=HANDLER, adapter="listchecker", params=read_params(Params, params), instances={})
    if clock is not None:
        env.clock = clock
    return ListChecker(env.params, env)


def check(handler: ListChecker, value: object) -> CheckResult:
    return handler.handle_listentry(ListEntryInstance(name="src.instance.istio-system", value=value))


def verdict(handler: ListChecker, value: object) -> tuple[int, str]:
    result = check(handler, value)
    return result.status, result.message


def denied(message: str) -> tuple[int, str]:
    return Code.PERMISSION_DENIED, message


def invalid(message: str) -> tuple[int, str]:
    return Code.INVALID_ARGUMENT, message


OK = (Code.OK, "")


# --- params -----------------------------------------------------------------------------------------


def test_defaults_are_mixers() -> None:
    assert read_params(Params, None) == Params(
        provider_url="",
        refresh_interval=Duration(60 * S),
        ttl=Duration(300 * S),
        caching_interval=Duration(300 * S),
        caching_use_count=10000,
        overrides=[],
        entry_type=EntryType.STRINGS,
        blacklist=False,
    )
    info = listchecker.mixerd_adapter_info()
    assert isinstance(info, AdapterInfo)
    assert (info.name, info.templates, info.params, info.validate) == (
        "listchecker",
        ("listentry",),
        Params,
        validate,
    )


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        (
            {"providerUrl": "ftp://host/list"},
            [(".providerUrl", "'ftp://host/list' must use the http or https scheme")],
        ),
        ({"providerUrl": "http:///list"}, [(".providerUrl", "'http:///list' has no host")]),
        (
            {"providerUrl": "localhost:8080/list"},
            [
                (".providerUrl", "'localhost:8080/list' must use the http or https scheme"),
                (".providerUrl", "'localhost:8080/list' has no host"),
            ],
        ),
        (
            {"providerUrl": "http://[::1/x"},
            [(".providerUrl", "'http://[::1/x' is not a URL: Invalid IPv6 URL")],
        ),
        (
            {"refreshInterval": "500ms", "ttl": "400ms"},
            [
                (".refreshInterval", "must be at least 1s, got 500ms"),
                (".ttl", "must be longer than refreshInterval (500ms), got 400ms"),
            ],
        ),
        (
            {"refreshInterval": "1m", "ttl": "1m"},
            [(".ttl", "must be longer than refreshInterval (1m0s), got 1m0s")],
        ),
        (
            {"entryType": "IP_ADDRESSES", "overrides": ["10.0.0.0/8", "::1", "10.0.0.0/33", "host"]},
            [
                (".overrides[2]", "'10.0.0.0/33' is not an IP address or CIDR block"),
                (".overrides[3]", "'host' is not an IP address or CIDR block"),
            ],
        ),
        (
            {"entryType": "REGEX", "overrides": ["^a.*", "("]},
            [
                (
                    ".overrides[1]",
                    "'(': error parsing regexp: missing closing ): `(`",
                )
            ],
        ),
    ],
)
def test_params_problems(params: dict, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Params, params)
    assert e.value.problems == problems


def test_validate_reports_the_same_rules_for_params_made_in_code() -> None:
    assert validate(Params(provider_url="https://lists.example.com/ips.yaml"), {}) == []
    assert validate(Params(entry_type=EntryType.REGEX, overrides=["["]), {}) == [
        (".overrides[0]", "'[': error parsing regexp: missing closing ]: `[`")
    ]


# --- lookups from overrides ---------------------------------------------------------------------------


def test_strings_whitelist_and_cache_values() -> None:
    h = make({"overrides": ["alice", "bob"], "cachingInterval": "10s", "cachingUseCount": 7})
    assert check(h, "alice") == CheckResult(valid_duration=Duration(10 * S), valid_use_count=7)
    assert check(h, "Alice") == CheckResult(
        status=Code.PERMISSION_DENIED,
        message="Alice is not whitelisted",
        valid_duration=Duration(10 * S),
        valid_use_count=7,
    )
    assert check(h, 42) == CheckResult(
        status=Code.INVALID_ARGUMENT,
        message="a value of type int is neither a string nor an IP address",
        valid_duration=Duration(10 * S),
        valid_use_count=7,
    )


def test_strings_blacklist() -> None:
    h = make({"overrides": ["mallory"], "blacklist": True})
    assert verdict(h, "mallory") == denied("mallory is blacklisted")
    assert verdict(h, "alice") == OK
    assert verdict(h, "") == OK


def test_strings_mode_looks_an_ip_up_as_its_text() -> None:
    h = make({"overrides": ["10.0.0.1", "::1"]})
    assert verdict(h, bytes([10, 0, 0, 1])) == OK
    assert verdict(h, bytes(15) + b"\x01") == OK
    assert verdict(h, bytes([10, 0, 0, 2])) == denied("10.0.0.2 is not whitelisted")
    assert verdict(h, b"\x01\x02\x03") == invalid("3 bytes are not an IP address (expected 4 or 16)")
    assert verdict(h, None) == invalid("a value of type NoneType is neither a string nor an IP address")


def test_case_insensitive_strings() -> None:
    h = make({"entryType": "CASE_INSENSITIVE_STRINGS", "overrides": ["Alice", "straße"]})
    assert verdict(h, "ALICE") == OK
    assert verdict(h, "alice") == OK
    assert verdict(h, "STRASSE") == OK  # case folding, not just lower()
    assert verdict(h, "Bob") == denied("Bob is not whitelisted")
    h = make({"entryType": 1, "overrides": ["ALICE"], "blacklist": True})
    assert verdict(h, "aLiCe") == denied("aLiCe is blacklisted")


def test_ip_addresses_whitelist() -> None:
    h = make(
        {
            "entryType": "IP_ADDRESSES",
            "overrides": ["10.0.0.0/8", "192.168.1.1", "2001:db8::/32", "172.16.5.4/12"],
        }
    )
    assert verdict(h, bytes([10, 200, 3, 4])) == OK
    assert verdict(h, "10.0.0.1") == OK  # text that parses as an IP
    assert verdict(h, bytes([192, 168, 1, 1])) == OK  # a bare IP is a /32
    assert verdict(h, bytes([192, 168, 1, 2])) == denied("192.168.1.2 is not whitelisted")
    assert verdict(h, bytes([172, 31, 255, 255])) == OK  # host bits of an entry are masked off
    assert verdict(h, bytes([172, 32, 0, 0])) == denied("172.32.0.0 is not whitelisted")
    assert verdict(h, bytes.fromhex("20010db8000000000000000000000001")) == OK
    assert verdict(h, bytes.fromhex("20010db9000000000000000000000001")) == denied(
        "2001:db9::1 is not whitelisted"
    )
    assert verdict(h, bytes(10) + b"\xff\xff" + bytes([10, 1, 1, 1])) == OK  # v4-mapped counts as IPv4
    assert verdict(h, bytes(10) + b"\xff\xff" + bytes([11, 1, 1, 1])) == denied("11.1.1.1 is not whitelisted")
    assert verdict(h, "example.com") == invalid("'example.com' is not an IP address")
    assert verdict(h, b"\x0a\x00") == invalid("2 bytes are not an IP address (expected 4 or 16)")
    assert verdict(h, 3.5) == invalid("a value of type float is neither a string nor an IP address")


def test_ip_addresses_blacklist_with_v6_host() -> None:
    h = make({"entryType": "IP_ADDRESSES", "overrides": ["::1", "0.0.0.0/0"], "blacklist": True})
    assert verdict(h, bytes(15) + b"\x01") == denied("::1 is blacklisted")
    assert verdict(h, "8.8.8.8") == denied("8.8.8.8 is blacklisted")
    assert verdict(h, "::2") == OK


def test_regex_searches_and_any_entry_matches() -> None:
    h = make({"entryType": "REGEX", "overrides": [r"^api\.", "internal", r"\.svc$"]})
    assert verdict(h, "api.example.com") == OK
    assert verdict(h, "my-internal-host") == OK  # search, not a full match
    assert verdict(h, "ratings.default.svc") == OK
    assert verdict(h, "www.api.example.com") == denied("www.api.example.com is not whitelisted")
    h = make({"entryType": "REGEX", "overrides": ["^bad"], "blacklist": True})
    assert verdict(h, "bad-actor") == denied("bad-actor is blacklisted")
    assert verdict(h, "not-bad") == OK


def test_regex_entries_are_re2_as_in_go() -> None:
    """Linear time in the looked-up value, and Go's syntax: `$` is the end of the text, `\\d` is ASCII."""
    h = make({"entryType": "REGEX", "overrides": ["^(a+)+$", r"^\d+$"], "blacklist": True})
    assert verdict(h, "a" * 60_000 + "!") == OK  # a backtracking engine would not finish
    assert verdict(h, "a" * 60_000) == denied(f"{'a' * 60_000} is blacklisted")
    assert verdict(h, "12\n") == OK
    assert verdict(h, "١٢") == OK  # Arabic-Indic digits are not \d in Go


# --- the provider ----------------------------------------------------------------------------------


def test_provider_list_refresh_unchanged_failure_and_ttl(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    provider.body = b"alice\n\n  bob  \r\ncarol\n"
    h = make({"providerUrl": provider.url, "overrides": ["root"]}, clock)

    async def scenario() -> None:
        assert check(h, "alice") == EMPTY_OK  # nothing fetched, nothing failed: an uncacheable OK
        assert provider.hits == 0

        await h.refresh()
        assert [verdict(h, v) for v in ("alice", "bob", "carol", "root")] == [OK] * 4
        assert verdict(h, "dave") == denied("dave is not whitelisted")
        assert verdict(h, "") == denied(" is not whitelisted")

        clock.advance(200)  # the same body again: only the ttl starts over
        await h.refresh()
        assert provider.hits == 2

        provider.status = 500
        clock.advance(250)  # 250s after the last good fetch: within the ttl
        with caplog.at_level(logging.WARNING, logger="mixerd.adapter.listchecker"):
            await h.refresh()
        error = f"fetching {provider.url} failed: HTTP Error 500: Internal Server Error"
        assert caplog.messages == [f"{HANDLER}: {error}"]
        assert verdict(h, "alice") == OK  # a failed fetch keeps the list until the ttl

        clock.advance(51)  # 301s after the last good fetch: dropped
        with pytest.raises(ListUnavailable) as e:
            check(h, "alice")
        assert str(e.value) == f"no list loaded from {provider.url}: {error}"
        assert verdict(h, 7) == invalid("a value of type int is neither a string nor an IP address")

        provider.status = 200
        provider.body = b"dave\n"
        await h.refresh()
        assert verdict(h, "dave") == OK
        assert verdict(h, "root") == OK  # overrides are always in the list
        assert verdict(h, "alice") == denied("alice is not whitelisted")

    asyncio.run(scenario())


def test_unchanged_list_after_a_purge_is_loaded_again(provider: Provider) -> None:
    clock = Clock()
    provider.body = b"alice\n"
    h = make({"providerUrl": provider.url, "refreshInterval": "10s", "ttl": "30s", "blacklist": True}, clock)

    async def scenario() -> None:
        await h.refresh()
        assert verdict(h, "alice") == denied("alice is blacklisted")
        clock.advance(30)
        assert verdict(h, "alice") == denied("alice is blacklisted")  # exactly the ttl: still kept
        clock.advance(0.001)
        assert check(h, "alice") == EMPTY_OK  # dropped, and the last fetch had not failed
        await h.refresh()
        assert provider.hits == 2
        assert verdict(h, "alice") == denied("alice is blacklisted")

    asyncio.run(scenario())


def test_ip_provider_reads_yaml_whitelist(provider: Provider) -> None:
    clock = Clock()
    provider.body = b"whitelist:\n  - 10.0.0.0/8\n  - 1.2.3.4\n  - 2001:db8::/32\n"
    h = make({"providerUrl": provider.url, "entryType": "IP_ADDRESSES", "overrides": ["127.0.0.1"]}, clock)

    async def scenario() -> None:
        await h.refresh()
        assert verdict(h, bytes([10, 9, 8, 7])) == OK
        assert verdict(h, "1.2.3.4") == OK
        assert verdict(h, "127.0.0.1") == OK
        assert verdict(h, "2001:db8::5") == OK
        assert verdict(h, "1.2.3.5") == denied("1.2.3.5 is not whitelisted")

        provider.body = b"whitelist: [10.0.0.0/8, nope]\n"  # a bad list is an error; the old one stays
        await h.refresh()
        assert verdict(h, "1.2.3.4") == OK
        clock.advance(301)
        with pytest.raises(ListUnavailable) as e:
            check(h, "1.2.3.4")
        bad = f"the list from {provider.url} is bad"
        assert (
            str(e.value)
            == f"no list loaded from {provider.url}: {bad}: 'nope' is not an IP address or CIDR block"
        )

        provider.body = b"- 1.2.3.4\n"
        await h.refresh()
        with pytest.raises(ListUnavailable) as e:
            check(h, "1.2.3.4")
        assert str(e.value) == (
            f"no list loaded from {provider.url}: {bad}: "
            "expected a YAML mapping with a 'whitelist' list of IP addresses or CIDR blocks"
        )

        provider.body = b"whitelist:\n"  # an empty list: only the overrides
        await h.refresh()
        assert verdict(h, "127.0.0.1") == OK
        assert verdict(h, "1.2.3.4") == denied("1.2.3.4 is not whitelisted")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("entry_type", "body", "value", "expected"),
    [
        ("REGEX", b"^a\n\n[0-9]+$\n", "a1", OK),
        ("REGEX", b"^a\n\n[0-9]+$\n", "x12", OK),
        ("REGEX", b"^a\n\n[0-9]+$\n", "x1y", denied("x1y is not whitelisted")),
        ("CASE_INSENSITIVE_STRINGS", b"Alice\nBOB\n", "bob", OK),
        ("CASE_INSENSITIVE_STRINGS", b"Alice\nBOB\n", "carol", denied("carol is not whitelisted")),
        ("STRINGS", b"Alice\n", "alice", denied("alice is not whitelisted")),
    ],
)
def test_line_providers(
    provider: Provider, entry_type: str, body: bytes, value: str, expected: tuple
) -> None:
    provider.body = body
    h = make({"providerUrl": provider.url, "entryType": entry_type}, Clock())
    asyncio.run(h.refresh())
    assert verdict(h, value) == expected


def test_bad_regex_from_provider_is_a_fetch_error(provider: Provider) -> None:
    provider.body = b"ok\n(\n"
    h = make({"providerUrl": provider.url, "entryType": "REGEX"}, Clock())
    asyncio.run(h.refresh())
    with pytest.raises(ListUnavailable, match=r"is bad: '\(': error parsing regexp"):
        check(h, "ok")


def test_unreachable_provider_is_an_error_once_it_failed() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/list"
    h = make({"providerUrl": url}, Clock())
    assert check(h, "x") == EMPTY_OK
    asyncio.run(h.refresh())
    with pytest.raises(ListUnavailable) as e:
        check(h, "x")
    assert str(e.value).startswith(f"no list loaded from {url}: fetching {url} failed: <urlopen error ")


class RecordingEnv(Env):
    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.periodic: list[tuple[float, object]] = []

    def every(self, interval_s, work, *, name=""):  # type: ignore[no-untyped-def]
        self.periodic.append((interval_s, work))
        return super().every(interval_s, work, name=name)


def test_build_fetches_in_the_background_and_schedules_refreshes(provider: Provider) -> None:
    provider.body = b"alice\n"

    async def scenario() -> None:
        params = read_params(Params, {"providerUrl": provider.url, "refreshInterval": "90s", "ttl": "10m"})
        env = RecordingEnv(handler=HANDLER, adapter="listchecker", params=params, instances={})
        h = listchecker.build(env)
        assert check(h, "alice") == EMPTY_OK  # build did not wait for the fetch
        assert env.periodic == [(90.0, h.refresh)]
        for _ in range(200):
            if check(h, "alice").valid_use_count:
                break
            await asyncio.sleep(0.01)
        assert verdict(h, "alice") == OK
        assert provider.hits == 1
        h.close()
        h.close()
        await h.refresh()  # closed: no more fetches
        assert provider.hits == 1
        await env.cancel_background()

    asyncio.run(scenario())


def test_build_without_provider_starts_nothing() -> None:
    async def scenario() -> None:
        env = RecordingEnv(
            handler=HANDLER, adapter="listchecker", params=Params(overrides=["a"]), instances={}
        )
        h = listchecker.build(env)
        assert env.periodic == []
        assert env._tasks == set()
        await h.refresh()  # nothing to fetch
        assert verdict(h, "a") == OK

    asyncio.run(scenario())
