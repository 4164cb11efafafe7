"""The admin page's views: each JSON twin's data against a runtime serving tests/data/admin, the HTML made
from it escaping what users wrote, secrets left out, and the app's routing and guards (called as WSGI,
no server: tests/integration/test_admin.py has the real one)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mixerd.adapter import AdapterInfo, CheckResult, Env, RateLimit, RateLimitCall
from mixerd.attribute import AttributeBag
from mixerd.dispatch import QuotaRequest
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime, RuntimeDispatcher
from mixerd.server.admin import AdminApp, AdminContext
from mixerd.server.admin.style import csp
from mixerd.server.admin.views import TWINS, VIEWS
from mixerd.server.envoy.accesslog_streams import StreamRegistry
from mixerd.settings import Settings
from mixerd.testing_scenarios.server import LoopThread

DATA = Path(__file__).resolve().parents[2] / "data" / "admin"
HOSTILE_RULE = "<img src=x onerror=alert(1)>"
HOSTILE_MATCH = "<script>alert(2)</script>"
JAN_1_2026 = 1_767_225_600 * 10**9
SECOND = 10**9
NOTHING = ["nothing.instance.istio-system"]


@dataclass
class _Params:
    pass


class _Queue:
    """A telemetry handler of a plugin adapter: delivery counters and state, a failed send."""

    def handle_checknothing(self, instance: Any) -> CheckResult:
        return CheckResult()

    def delivery_stats(self) -> dict[str, int]:
        return {"queued": 7, "sent": 4, "dropped": 1, "failed": 2}

    def delivery_state(self) -> dict[str, Any]:
        return {"depth": 2, "capacity": 10, "last_error": "OSError: <b>down</b>", "last_error_at": JAN_1_2026}


PLUGIN = AdapterInfo("queued", ("checknothing",), _Params, lambda env: _Queue(), description="a plugin")
PLUGIN_CONFIG = """
apiVersion: config.istio.io/v1alpha2
kind: handler
metadata: {name: sink, namespace: istio-system}
spec: {compiledAdapter: queued}
---
apiVersion: config.istio.io/v1alpha2
kind: rule
metadata: {name: to-sink, namespace: istio-system}
spec:
  actions: [{handler: sink, instances: [nothing]}]
"""


class Served:
    """A runtime on its own event loop (as in the server), read by the views from the test's thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.now = JAN_1_2026
        self.loop = LoopThread()
        self.runtime = Runtime({**load_adapters(), "queued": PLUGIN}, folder=folder, clock=lambda: self.now)
        self.loop.run(self._load())
        self.streams = StreamRegistry()
        self.context = AdminContext(self.runtime, Settings(), self.streams, started_at=JAN_1_2026)
        self.dispatcher = RuntimeDispatcher(self.runtime, self.runtime.stats)
        self.checks = 0

    async def _load(self) -> None:
        await self.runtime.apply(self.runtime.compile())

    def twin(self, name: str) -> dict[str, Any]:
        data = TWINS[name].data(self.context)
        return json.loads(json.dumps(data))  # what /debug/<name> sends

    def check(self, user: str, quota: int = 0) -> Any:
        bag = AttributeBag({"request.headers": {"x-user": user}})
        quotas = {"requestcount": QuotaRequest(quota)} if quota else {}
        self.checks += 1  # each Check its own deduplication id, as a proxy sends
        return self.loop.run(self.dispatcher.check(bag, quotas, f"check-{self.checks}", None))

    def handler(self, name: str) -> Any:
        return self.runtime.table.handlers[name].handler

    def get(
        self, path: str, host: str = "localhost:9876", settings: Settings | None = None
    ) -> tuple[str, dict[str, str], str]:
        context = self.context if settings is None else replace(self.context, settings=settings)
        answer: list[Any] = []
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "HTTP_HOST": host}
        body = b"".join(AdminApp(context)(environ, lambda status, headers: answer.extend((status, headers))))
        return answer[0], dict(answer[1]), body.decode()

    def close(self) -> None:
        self.loop.run(self.runtime.close())
        self.loop.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    folder = tmp_path / "config"
    shutil.copytree(DATA, folder)
    (folder / "plugin.yaml").write_text(PLUGIN_CONFIG)
    served = Served(folder)
    try:
        yield served
    finally:
        served.close()


# -- the JSON twins -------------------------------------------------------------------------------


def test_the_config_twin_lists_every_file_and_resource_as_written(served: Served) -> None:
    config = served.twin("config")
    assert (config["generation"], config["folder"], config["default_namespace"]) == (
        1,
        str(served.folder),
        "istio-system",
    )
    assert config["loaded_at"] == "2026-01-01T00:00:00.000Z"
    files = {f["path"]: f for f in config["files"]}
    assert set(files) == {"plugin.yaml", "policy.yaml", "quota.yaml", "shared.yaml"}
    policy = files["policy.yaml"]
    assert (policy["size"], policy["resources"]) == ((served.folder / "policy.yaml").stat().st_size, 3)
    assert policy["modified"].endswith("Z")
    resources = {(r["kind"], r["name"], r["namespace"]): r for r in config["resources"]}
    assert len(resources) == 12
    rule = resources[("rule", HOSTILE_RULE, "istio-system")]
    assert (rule["file"], rule["document"], rule["fqn"]) == (
        "policy.yaml",
        3,
        f"{HOSTILE_RULE}.rule.istio-system",
    )
    # As written: the text of the file's third document (its comments too), not a re-dump of the data.
    written = (served.folder / "policy.yaml").read_text().split("---\n")[2]
    assert rule["yaml"] == written
    assert resources[("ratelimitconfig", "edge", "istio-system")]["yaml"].startswith("apiVersion:")
    assert config["resources_by_kind"] == {"handler": 4, "instance": 3, "ratelimitconfig": 1, "rule": 4}
    assert config["last_rejection"] is None


def test_a_secret_in_the_config_never_reaches_a_twin(served: Served) -> None:
    shared = next(r for r in served.twin("config")["resources"] if r["name"] == "shared")
    assert "redisServerUrl: redis://:***@127.0.0.1:1/0" in shared["yaml"]
    for name in TWINS:
        assert "hunter2" not in json.dumps(served.twin(name)), name


def test_a_rejected_change_is_shown_with_each_error_file_path_and_time(served: Served) -> None:
    (served.folder / "broken.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: rule\n"
        "metadata: {name: broken, namespace: istio-system}\n"
        "spec:\n  match: request.size > 'big'\n  actions: [{handler: nowhere, instances: [nothing]}]\n"
    )
    served.now += 90 * SECOND
    assert served.loop.run(served.runtime.reload()) is False
    config = served.twin("config")
    assert config["generation"] == 1  # the previous config keeps serving
    rejection = config["last_rejection"]
    assert rejection["at"] == "2026-01-01T00:01:30.000Z"
    where = {(e["file"], e["document"], e["resource"], e["path"]) for e in rejection["errors"]}
    assert where == {
        ("broken.yaml", 1, "broken.rule.istio-system", ".spec.match"),
        ("broken.yaml", 1, "broken.rule.istio-system", ".spec.actions[0].handler"),
    }
    assert all(
        e["message"].startswith("broken.yaml: rule 'broken.rule.istio-system' .spec.")
        for e in rejection["errors"]
    )


def test_the_routes_twin_has_each_namespace_by_variety(served: Served) -> None:
    routes = served.twin("routes")
    default, bookinfo = routes["namespaces"]
    assert (default["namespace"], default["inherits"]) == ("istio-system", None)
    assert (bookinfo["namespace"], bookinfo["inherits"]) == ("bookinfo", "istio-system")
    check = default["varieties"]["check"]
    rows = [(r["rule"], r["match"], r["handler"], r["adapter"], r["template"], r["instances"]) for r in check]
    assert rows == [  # in the order of the files, then of the documents
        ("to-sink.rule.istio-system", "true", "sink.handler.istio-system", "queued", "checknothing", NOTHING),
        (
            f"{HOSTILE_RULE}.rule.istio-system",
            f'request.headers["x-user"] == "{HOSTILE_MATCH}"',
            "deny-blocked.handler.istio-system",
            "denier",
            "checknothing",
            NOTHING,
        ),
    ]
    [quota] = default["varieties"]["quota"]
    assert (quota["rule"], quota["handler"], quota["instances"]) == (
        "rate-limit-users.rule.istio-system",
        "per-user.handler.istio-system",
        ["requestcount.instance.istio-system"],
    )
    [shared] = bookinfo["varieties"]["quota"]
    assert (shared["rule"], shared["match"], shared["adapter"], shared["available"]) == (
        "limit-bookings.rule.bookinfo",
        'destination.service.host == "bookings"',
        "redisquota",
        True,
    )
    assert default["varieties"]["report"] == bookinfo["varieties"]["check"] == []


def test_the_handlers_twin_counts_calls_by_outcome_and_shows_delivery(served: Served) -> None:
    served.check("alice", quota=1)
    served.check("bob", quota=1)
    handlers = {h["name"]: h for h in served.twin("handlers")["handlers"]}
    assert set(handlers) == {
        "deny-blocked.handler.istio-system",
        "per-user.handler.istio-system",
        "shared.handler.bookinfo",
        "sink.handler.istio-system",
    }
    denier = handlers["deny-blocked.handler.istio-system"]
    assert (denier["state"], denier["failure"], denier["outcomes"]) == ("available", "", {})  # match false
    assert handlers["per-user.handler.istio-system"]["calls"] == {"quota": {"ok": 2}}
    timed = handlers["per-user.handler.istio-system"]["durations"]["quota"]
    assert timed["calls"] == 2 and 0 <= timed["mean_ms"] <= timed["p99_ms_at_most"]
    assert timed["p50_ms_at_most"] <= timed["p99_ms_at_most"]
    assert handlers["deny-blocked.handler.istio-system"]["durations"] == {}  # never called
    # The routes twin has each rule's counts: the quota rule held for both Checks, the denier's never.
    rules = served.twin("routes")["rules"]
    assert rules["rate-limit-users.rule.istio-system"] == {"matched": 2, "errors": 0}
    assert rules[f"{HOSTILE_RULE}.rule.istio-system"] == {"matched": 0, "errors": 0}
    sink = handlers["sink.handler.istio-system"]
    assert (sink["adapter"], sink["outcomes"]) == ("queued", {"ok": 2})
    assert sink["delivery_stats"] == {"queued": 7, "sent": 4, "dropped": 1, "failed": 2}
    assert sink["delivery_state"] == {
        "depth": 2,
        "capacity": 10,
        "last_error": "OSError: <b>down</b>",
        "last_error_at": "2026-01-01T00:00:00.000Z",
    }
    assert handlers["shared.handler.bookinfo"]["instances"] == {"bookings.instance.bookinfo": "quota"}


def test_an_unavailable_handler_shows_why(served: Served, tmp_path: Path) -> None:
    def fail(env: Env) -> Any:
        raise OSError("port 4242 taken")

    served.runtime.adapters = {**served.runtime.adapters, "queued": replace(PLUGIN, build=fail)}
    (served.folder / "plugin.yaml").write_text(PLUGIN_CONFIG.replace("sink", "sink2"))
    assert served.loop.run(served.runtime.reload())
    sink = next(h for h in served.twin("handlers")["handlers"] if h["name"] == "sink2.handler.istio-system")
    assert (sink["state"], sink["failure"]) == ("unavailable", "build failed: OSError: port 4242 taken")


def test_the_adapters_twin_says_where_each_adapter_comes_from(served: Served) -> None:
    adapters = {a["name"]: a for a in served.twin("adapters")["adapters"]}
    assert set(load_adapters()) < set(adapters)
    memquota = adapters["memquota"]
    assert (memquota["builtin"], memquota["package"], memquota["templates"], memquota["handlers"]) == (
        True,
        "mixerd",
        ["quota"],
        1,
    )
    assert memquota["rate_limits"] is True
    assert adapters["fluentd"]["handlers"] == 0
    plugin = adapters["queued"]  # handed to the runtime, installed by no package
    assert (plugin["builtin"], plugin["package"], plugin["description"]) == (False, "", "a plugin")


def test_the_quotas_twin_has_the_busiest_counters_and_the_backends(served: Served) -> None:
    for user, times in (("bob", 3), ("alice", 1), ("vip", 5)):
        for _ in range(times):
            served.check(user, quota=1)
    handler = served.handler("per-user.handler.istio-system")
    limit = RateLimit(10, 60 * SECOND)
    handler.handle_rate_limits([RateLimitCall("edge", (("remote_address", "10.0.0.1"),), limit, 4)])
    quotas = served.twin("quotas")
    [memory] = quotas["counters"]
    assert (memory["handler"], memory["quota_counters"], memory["rate_limit_counters"]) == (
        "per-user.handler.istio-system",
        3,
        1,
    )
    assert [(q["dimensions"], q["used"], q["max_amount"], q["valid_duration"]) for q in memory["quota"]] == [
        ({"user": "vip"}, 5, 5, "1s"),
        ({"user": "bob"}, 3, 5, "1s"),
        ({"user": "alice"}, 1, 5, "1s"),
    ]
    assert memory["rate_limit"] == [
        {"domain": "edge", "entries": [["remote_address", "10.0.0.1"]], "used": 4, "window": "1m0s"}
    ]
    served.now += 2 * SECOND  # the quota window has passed: nothing is held now
    assert served.twin("quotas")["counters"][0]["quota"] == []
    [backend] = quotas["backends"]
    assert (backend["handler"], backend["adapter"], backend["connected"]) == (
        "shared.handler.bookinfo",
        "redisquota",
        False,
    )
    assert (backend["address"], backend["fail_policy"]) == ("redis://:***@127.0.0.1:1/0", "open")
    assert backend["last_error"]  # the refused connection, in words
    assert set(backend["stats"]) == {"redis_calls", "cached_denials", "cached_answers", "failed"}


def test_the_ratelimits_twin_has_each_domain_tree(served: Served) -> None:
    [edge] = served.twin("ratelimits")["domains"]
    assert (edge["domain"], edge["resource"], edge["handler"], edge["adapter"], edge["available"]) == (
        "edge",
        "edge.ratelimitconfig.istio-system",
        "per-user.handler.istio-system",
        "memquota",
        True,
    )
    api, address = sorted(edge["descriptors"], key=lambda d: d["key"])
    assert (address["key"], address["value"], address["descriptors"]) == ("remote_address", None, [])
    assert address["limits"] == [
        {
            "requests_per_unit": 10,
            "unit": "SECOND",
            "name": "per-ip",
            "replaces": [],
            "algorithm": "FIXED_WINDOW",
            "window": "1s",
        }
    ]
    assert (api["key"], api["value"], api["limits"]) == ("generic_key", "api", [])
    [user] = api["descriptors"]
    assert (user["key"], user["shadow_mode"], user["stat_name"]) == ("user", True, "generic_key_api.user")
    assert user["limits"][0] | {} == {
        "requests_per_unit": 100,
        "unit": "MINUTE",
        "name": "",
        "replaces": [],
        "algorithm": "ROLLING_WINDOW",
        "window": "1m0s",
        "bucket": "1s",
    }


def test_the_accesslog_twin_lists_the_open_streams(served: Served) -> None:
    assert served.twin("accesslog") == {"serving": True, "open": 0, "opened": 0, "listed": 0, "streams": []}
    stream = served.streams.open("ipv4:127.0.0.1:5000", JAN_1_2026 - 60 * SECOND)
    stream.identify("sidecar~10.0.0.1~<b>pod</b>.ns~svc", "reviews", "x" * 1000)
    stream.messages, stream.http_entries = 3, 12
    served.streams.open("ipv4:127.0.0.1:5001", JAN_1_2026)
    accesslog = served.twin("accesslog")
    assert (accesslog["open"], accesslog["opened"]) == (2, 2)
    first = accesslog["streams"][0]
    assert first["node_id"] == "sidecar~10.0.0.1~<b>pod</b>.ns~svc"
    assert len(first["log_name"]) == 256  # what a proxy names itself is cut
    assert (first["since"], first["messages"], first["entries"], first["tcp_entries"]) == (
        "2025-12-31T23:59:00.000Z",
        3,
        12,
        0,
    )
    served.streams.close(stream)
    assert [s["peer"] for s in served.twin("accesslog")["streams"]] == ["ipv4:127.0.0.1:5001"]


def test_without_a_rule_engine_every_twin_still_answers() -> None:
    context = AdminContext(None)
    for name, twin in TWINS.items():
        assert json.dumps(twin.data(context)), name


# -- the HTML -------------------------------------------------------------------------------------


def test_every_view_escapes_what_users_wrote(served: Served) -> None:
    served.streams.open("ipv4:127.0.0.1:5000", JAN_1_2026).identify("<script>alert(3)</script>", "", "")
    (served.folder / "broken.yaml").write_text("kind: <script>alert(4)</script>\n")
    served.loop.run(served.runtime.reload())
    for view in VIEWS:
        status, headers, page = served.get(f"/{view.slug}")
        assert status == "200 OK", view.slug
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        for hostile in (HOSTILE_RULE, HOSTILE_MATCH, "<script>alert(3)", "<script>alert(4)", "<b>down"):
            assert hostile not in page, (view.slug, hostile)
        assert "hunter2" not in page
        assert "&lt;code&gt;" not in page and "&amp;lt;" not in page, view.slug  # nothing escaped twice
    assert "&lt;img src=x onerror=alert(1)&gt;" in served.get("/routes")[2]
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in served.get("/accesslog")[2]
    assert "OSError: &lt;b&gt;down&lt;/b&gt;" in served.get("/adapters")[2]


def test_the_page_has_a_nav_to_every_view_and_links_its_twins(served: Served) -> None:
    _, _, page = served.get("/")
    for view in VIEWS:
        assert f'href="/{view.slug}"' in page
    assert 'class="here" data-key="1" aria-current="page"' in page  # `/` is the first view, Config
    for twin in VIEWS[2].twins:
        assert f'href="/debug/{twin.name}"' in served.get("/adapters")[2]


def test_the_last_rejection_is_on_the_config_view(served: Served) -> None:
    (served.folder / "broken.yaml").write_text(
        "apiVersion: config.istio.io/v1alpha2\nkind: rule\nmetadata: {name: broken}\n"
        "spec:\n  actions: [{handler: nowhere, instances: [nothing]}]\n"
    )
    served.loop.run(served.runtime.reload())
    page = served.get("/config")[2]
    assert 'id="last-rejection"' in page
    assert (
        '<code class="strong">broken.yaml</code>' in page and "<code>.spec.actions[0].handler</code>" in page
    )


def test_only_the_page_s_own_style_and_script_may_run(served: Served) -> None:
    _, headers, page = served.get("/quotas")
    assert headers["Content-Security-Policy"] == csp()
    assert "default-src 'none'" in csp() and "'unsafe-inline'" not in csp()
    assert page.count("<script>") == 1 and page.count("<style>") == 1 and " style=" not in page
    assert (headers["Cache-Control"], headers["X-Content-Type-Options"]) == ("no-store", "nosniff")


# -- routing and guards ---------------------------------------------------------------------------


def test_json_twins_and_their_index(served: Served) -> None:
    status, headers, body = served.get("/debug/routes")
    assert (status, headers["Content-Type"]) == ("200 OK", "application/json")
    assert json.loads(body) == served.twin("routes")
    index = json.loads(served.get("/debug/")[2])
    assert [t["path"] for t in index["twins"]] == [f"/debug/{name}" for name in TWINS]
    assert served.get("/debug/nothing")[0] == "404 Not Found"
    assert served.get("/nothing")[0] == "404 Not Found"


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("localhost:9876", True),
        ("127.0.0.1:9876", True),
        ("[::1]:9876", True),
        ("127.0.0.1", True),
        ("evil.example:9876", False),
        ("evil.example", False),
        ("10.0.0.1:9876", False),
    ],
)
def test_on_loopback_only_a_local_host_name_is_served(served: Served, host: str, allowed: bool) -> None:
    status = served.get("/debug/config", host=host)[0]
    assert status == ("200 OK" if allowed else "403 Forbidden")
    opened = Settings(admin_address="0.0.0.0")
    assert served.get("/debug/config", host=host, settings=opened)[0] == "200 OK"
