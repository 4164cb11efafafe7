"""The kubernetesenv adapter against a real wire peer: a small local HTTP server speaking the Kubernetes
API's list and watch (plain HTTP + JSON, chunked watch streams) for pods, ReplicaSets and Jobs, reached
by the official client through a kubeconfig file that points at it.

- the adapter alone: it lists, follows watch events (a pod added, a pod deleted), authenticates as the
  kubeconfig says, and its watcher threads end at close;
- Istio 1.4's default telemetry config, unchanged, with this adapter (KUBECONFIG points at the fake
  API server): a Report of a typical inbound bag gives istio_requests_total with the workloads, apps
  and versions of the pods behind the request;
- the same config outside a cluster: it loads, Reports succeed, and the workloads are "unknown".
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mixerd.adapter import Env
from mixerd.api.mixer.v1 import mixer_pb2_grpc
from mixerd.attribute import encode_report
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.templates import KubernetesInstance
from mixerd.testing import typical_http_bag
from mixerd.testing_scenarios import run_mixer
from mixerd_adapters import prometheus
from mixerd_adapters.kubernetesenv import KubernetesEnvHandler, Params, build, mixerd_adapter_info

pytestmark = pytest.mark.integration

ISTIO = Path(__file__).resolve().parents[1] / "data" / "config" / "istio"
TOKEN = "fake-api-token"
PODS = "/api/v1/pods"
REPLICASETS = "/apis/apps/v1/replicasets"
JOBS = "/apis/batch/v1/jobs"
_LISTS = {PODS: ("PodList", "v1"), REPLICASETS: ("ReplicaSetList", "apps/v1"), JOBS: ("JobList", "batch/v1")}


# -- the fake API server ---------------------------------------------------------------------------


class FakeApiServer:
    """List (with limit/continue) and watch (from a resourceVersion, until timeoutSeconds) of three
    collections, each change numbered by one resourceVersion counter, as the API server does."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._version = 1
        self._objects: dict[str, dict[str, dict[str, Any]]] = {path: {} for path in _LISTS}
        self._events: dict[str, list[tuple[int, str, dict[str, Any]]]] = {path: [] for path in _LISTS}
        self._stopping = False
        self.requests: list[tuple[str, dict[str, list[str]], str]] = []  # path, query, Authorization
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-apiserver", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def put(self, path: str, obj: dict[str, Any]) -> None:
        with self._changed:
            self._version += 1
            meta = obj["metadata"]
            obj = {**obj, "metadata": {**meta, "resourceVersion": str(self._version)}}
            key = f"{meta['namespace']}/{meta['name']}"
            kind = "MODIFIED" if key in self._objects[path] else "ADDED"
            self._objects[path][key] = obj
            self._events[path].append((self._version, kind, obj))
            self._changed.notify_all()

    def delete(self, path: str, namespace: str, name: str) -> None:
        with self._changed:
            self._version += 1
            obj = self._objects[path].pop(f"{namespace}/{name}")
            obj = {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(self._version)}}
            self._events[path].append((self._version, "DELETED", obj))
            self._changed.notify_all()

    def stop(self) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()

    def _list(self, path: str, query: dict[str, list[str]]) -> dict[str, Any]:
        with self._changed:
            items = list(self._objects[path].values())
            version = self._version
        start = int(query.get("continue", ["0"])[0])
        limit = int(query.get("limit", [str(len(items) or 1)])[0])
        page = items[start : start + limit]
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if start + limit < len(items):
            meta["continue"] = str(start + limit)
        kind, api_version = _LISTS[path]
        return {"kind": kind, "apiVersion": api_version, "metadata": meta, "items": page}

    def _watch(self, path: str, query: dict[str, list[str]], send: Callable[[bytes], None]) -> None:
        seen = int(query.get("resourceVersion", ["0"])[0] or 0)
        deadline = time.monotonic() + int(query.get("timeoutSeconds", ["60"])[0])
        while True:
            with self._changed:
                fresh = [e for e in self._events[path] if e[0] > seen]
                if not fresh:
                    remaining = deadline - time.monotonic()
                    if self._stopping or remaining <= 0:
                        return
                    self._changed.wait(min(remaining, 0.1))
                    continue
            for version, kind, obj in fresh:
                send(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                seen = version

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked watch streams, as the API server sends them

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                server.requests.append((parts.path, query, self.headers.get("Authorization", "")))
                if parts.path not in _LISTS:
                    self._json(404, {"kind": "Status", "code": 404, "reason": "NotFound", "message": "no"})
                    return
                if query.get("watch", [""])[0].lower() != "true":
                    self._json(200, server._list(parts.path, query))
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    server._watch(parts.path, query, self._chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the client went away
                self.close_connection = True

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler


def pod_json(
    name: str, ip: str, labels: dict[str, str], owner: tuple[str, str, str] | None, port: int, account: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "default", "labels": labels, "uid": f"uid-{name}"}
    if owner is not None:
        api_version, kind, owner_name = owner
        meta["ownerReferences"] = [
            {
                "apiVersion": api_version,
                "kind": kind,
                "name": owner_name,
                "uid": f"uid-{owner_name}",
                "controller": True,
            }
        ]
    app = labels["app"]
    return {
        "metadata": meta,
        "spec": {
            "serviceAccountName": account,
            "containers": [
                {"name": app, "ports": [{"containerPort": port}]},
                {"name": "istio-proxy", "ports": [{"containerPort": 15090}]},
            ],
        },
        "status": {"phase": "Running", "podIP": ip, "hostIP": "192.168.1.10"},
    }


def replicaset_json(name: str, deployment: str) -> dict[str, Any]:
    owner = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment,
        "uid": "d",
        "controller": True,
    }
    return {
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [owner]},
        "spec": {"selector": {"matchLabels": {"app": deployment}}},
    }


# The pods behind mixerd.testing.typical_http_bag: productpage-v1 calls reviews-v2.
PRODUCTPAGE = pod_json(
    "productpage-v1-6b746f74dc-9stvs",
    "10.44.0.12",
    {"app": "productpage", "version": "v1", "pod-template-hash": "6b746f74dc"},
    ("apps/v1", "ReplicaSet", "productpage-v1-6b746f74dc"),
    9080,
    "bookinfo-productpage",
)
REVIEWS = pod_json(
    "reviews-v2-7bf8c9648f-xcvd4",
    "10.44.0.17",
    {"app": "reviews", "version": "v2", "pod-template-hash": "7bf8c9648f"},
    ("apps/v1", "ReplicaSet", "reviews-v2-7bf8c9648f"),
    9080,
    "bookinfo-reviews",
)


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    server = FakeApiServer()
    server.put(PODS, PRODUCTPAGE)
    server.put(PODS, REVIEWS)
    # the productpage ReplicaSet is left out: its Deployment is found from the pod-template-hash
    server.put(REPLICASETS, replicaset_json("reviews-v2-7bf8c9648f", "reviews-v2"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {{server: "{api_server.url}"}}
users:
- name: mixer
  user: {{token: {TOKEN}}}
contexts:
- name: fake
  context: {{cluster: fake, user: mixer}}
current-context: fake
"""
    )
    return path


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


async def async_wait_for(condition: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


# -- the adapter alone -----------------------------------------------------------------------------


def test_the_client_lists_and_watches_the_api_server(api_server: FakeApiServer, kubeconfig: Path) -> None:
    uid = "kubernetes://reviews-v2-7bf8c9648f-xcvd4.default"
    ratings = pod_json(
        "ratings-v1-5c8d6f9b7-qx2lp",
        "10.44.0.20",
        {"app": "ratings", "version": "v1"},
        None,
        9080,
        "bookinfo-ratings",
    )

    async def scenario() -> None:
        env = Env(
            handler="kubernetesenv.handler.istio-system",
            adapter="kubernetesenv",
            params=Params(kubeconfig_path=str(kubeconfig)),
            instances={},
        )
        handler = build(env)
        assert isinstance(handler, KubernetesEnvHandler) and handler.available
        try:
            await async_wait_for(
                lambda: handler.synced and handler.cache.is_synced("replicasets"), "the lists"
            )
            out = handler.handle_kubernetes(
                KubernetesInstance(
                    source_uid="kubernetes://productpage-v1-6b746f74dc-9stvs.default",
                    destination_uid=uid,
                    destination_port=9080,
                )
            )
            assert [out[k] for k in ("source_workload_name", "destination_workload_name")] == [
                "productpage-v1",
                "reviews-v2",
            ]
            assert (
                out["destination_owner"]
                == "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2"
            )
            assert out["destination_container_name"] == "reviews"

            api_server.put(PODS, ratings)  # arrives through the watch
            await async_wait_for(
                lambda: handler.cache.by_ip(bytes([10, 44, 0, 20])) is not None, "the new pod"
            )
            by_ip = handler.handle_kubernetes(KubernetesInstance(source_ip=bytes([10, 44, 0, 20])))
            assert by_ip["source_workload_name"] == "ratings-v1-5c8d6f9b7-qx2lp"  # a bare pod

            api_server.delete(PODS, "default", "reviews-v2-7bf8c9648f-xcvd4")
            await async_wait_for(lambda: handler.cache.by_uid(uid) is None, "the deletion")
            assert handler.generation_stats() == {"hits": 3, "misses": 0, "skipped": 0, "sync_failures": 0}
            # Each kind's watch starts after its list: on a busy machine the jobs watch may not have yet.
            await async_wait_for(
                lambda: {path for path, query, _ in api_server.requests if "watch" in query} >= set(_LISTS),
                "a watch of every kind",
            )
        finally:
            handler.close()
            await env.cancel_background()
        await async_wait_for(lambda: not handler.watcher_threads(), "the watcher threads to end", 2.0)

    asyncio.run(scenario())
    lists = sorted({path for path, query, _ in api_server.requests if "watch" not in query})
    watches = sorted({path for path, query, _ in api_server.requests if "watch" in query})
    assert lists == watches == sorted(_LISTS)
    assert {auth for _, _, auth in api_server.requests} == {f"Bearer {TOKEN}"}
    assert {query["limit"][0] for path, query, _ in api_server.requests if "watch" not in query} == {"500"}


# -- Istio's default telemetry config --------------------------------------------------------------

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(name: str) -> Samples:
    """The samples of metric `name` on the shared prometheus endpoint: (name, labels) -> value."""
    exporter = prometheus.current()
    assert exporter is not None, "no prometheus endpoint is running"
    with urllib.request.urlopen(f"http://127.0.0.1:{exporter.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


def report(address: str, bags: list[dict[str, Any]]) -> None:
    with grpc.insecure_channel(address) as channel:
        mixer_pb2_grpc.MixerStub(channel).Report(encode_report(bags), timeout=10)


def istio_runtime() -> Runtime:
    return Runtime({**load_adapters(), "kubernetesenv": mixerd_adapter_info()}, folder=ISTIO)


def kubernetesenv_of(runtime: Runtime) -> KubernetesEnvHandler:
    handler = runtime.table.handlers["kubernetesenv.handler.istio-system"].handler
    assert isinstance(handler, KubernetesEnvHandler)
    return handler


# typical_http_bag(), inbound, as the config's requestcount instance labels it (see
# tests/integration/test_prometheus.py for each expression): everything but the generated attributes.
SENT_LABELS = {
    "reporter": "destination",
    "source_principal": "cluster.local/ns/default/sa/bookinfo-productpage",
    "destination_principal": "cluster.local/ns/default/sa/bookinfo-reviews",
    "destination_service": "reviews.default.svc.cluster.local",
    "destination_service_name": "reviews",
    "destination_service_namespace": "default",
    "request_protocol": "http",
    "response_code": "200",
    "response_flags": "-",
    "permissive_response_code": "none",
    "permissive_response_policyid": "none",
    "connection_security_policy": "mutual_tls",
}


def test_istio_config_labels_requests_with_the_pods_workloads(
    kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # the config's handler has no kubeconfig_path
    runtime = istio_runtime()
    with run_mixer(runtime, prometheus_port=0) as mixer:
        handler = kubernetesenv_of(runtime)
        wait_for(lambda: handler.synced, "the pod list")
        report(mixer.address, [typical_http_bag(0), typical_http_bag(1)])
        samples = scrape("istio_requests_total")
        stats = handler.generation_stats()
    labels = {
        **SENT_LABELS,
        # source.workload.* and source.labels: generated from the productpage pod
        "source_workload": "productpage-v1",
        "source_workload_namespace": "default",
        "source_app": "productpage",
        "source_version": "v1",
        # destination.*: from the reviews pod
        "destination_workload": "reviews-v2",
        "destination_workload_namespace": "default",
        "destination_app": "reviews",
        "destination_version": "v2",
    }
    assert samples == {("istio_requests_total", frozenset(labels.items())): 2.0}
    assert stats == {"hits": 4, "misses": 0, "skipped": 0, "sync_failures": 0}


def test_istio_config_outside_a_cluster_reports_unknown_workloads(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
        monkeypatch.delenv(name, raising=False)
    caplog.set_level(logging.WARNING, logger="mixerd.adapter.kubernetesenv")
    runtime = istio_runtime()
    with run_mixer(runtime, prometheus_port=0) as mixer:
        handler = kubernetesenv_of(runtime)
        report(mixer.address, [typical_http_bag(0)])
        samples = scrape("istio_requests_total")
        stats = handler.generation_stats()
    assert handler.unavailable is not None and handler.unavailable.startswith("not running in a Kubernetes")
    unknown = dict.fromkeys(
        [
            "source_workload",
            "source_workload_namespace",
            "source_app",
            "source_version",
            "destination_workload",
            "destination_workload_namespace",
            "destination_app",
            "destination_version",
        ],
        "unknown",
    )
    assert samples == {("istio_requests_total", frozenset({**SENT_LABELS, **unknown}.items())): 1.0}
    assert stats == {"hits": 0, "misses": 0, "skipped": 2, "sync_failures": 0}
    assert [r.getMessage() for r in caplog.records if r.name == "mixerd.adapter.kubernetesenv"] == [
        "kubernetesenv.handler.istio-system: unavailable, no attributes will be generated: "
        + handler.unavailable
    ]
