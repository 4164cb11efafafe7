"""The kubernetesenv adapter without an API server: its params, the records read from the client's model
objects, the pod cache and its workload rules fed directly, the handler's output and counters, the
unavailable handler outside a cluster, and the watcher's list/watch loop driven by a scripted API
function (the real `kubernetes.watch.Watch` parses the scripted event stream)."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import (
    V1Container,
    V1ContainerPort,
    V1Job,
    V1LabelSelector,
    V1ListMeta,
    V1ObjectMeta,
    V1OwnerReference,
    V1Pod,
    V1PodIP,
    V1PodList,
    V1PodSpec,
    V1PodStatus,
    V1ReplicaSet,
    V1ReplicaSetSpec,
)
from kubernetes.client.exceptions import ApiException

from mixerd.adapter import Duration, Env
from mixerd.params import ParamsError, read_params
from mixerd.templates import TEMPLATES, KubernetesInstance
from mixerd_adapters.kubernetesenv import KubernetesEnvHandler, Params, build, mixerd_adapter_info
from mixerd_adapters.kubernetesenv.cache import JOBS, PODS, REPLICASETS, PodCache
from mixerd_adapters.kubernetesenv.params import kubeconfig_path, registries_namespace
from mixerd_adapters.kubernetesenv.records import OwnerRef, PodRecord, key_from_uid, pod_record
from mixerd_adapters.kubernetesenv.watcher import Resource, Watcher

HANDLER = "kubernetesenv.handler.istio-system"
SECOND = 1_000_000_000


def ip(text: str) -> bytes:
    return ipaddress.ip_address(text).packed


def owner(api_version: str, kind: str, name: str, controller: bool | None = True) -> V1OwnerReference:
    return V1OwnerReference(
        api_version=api_version, kind=kind, name=name, uid=f"uid-{name}", controller=controller
    )


def pod(
    name: str,
    namespace: str = "default",
    *,
    pod_ip: str | None = None,
    labels: dict[str, str] | None = None,
    owners: list[V1OwnerReference] | None = None,
    ports: dict[str, list[int]] | None = None,
    host_ip: str | None = "192.168.1.10",
    service_account: str | None = "default",
    phase: str = "Running",
    host_network: bool | None = None,
    pod_ips: list[str] | None = None,
) -> V1Pod:
    containers = [
        V1Container(name=c, ports=[V1ContainerPort(container_port=p) for p in numbers] or None)
        for c, numbers in (ports or {"app": []}).items()
    ]
    return V1Pod(
        metadata=V1ObjectMeta(name=name, namespace=namespace, labels=labels, owner_references=owners),
        spec=V1PodSpec(
            containers=containers, service_account_name=service_account, host_network=host_network
        ),
        status=V1PodStatus(
            pod_ip=pod_ip,
            pod_ips=[V1PodIP(ip=a) for a in pod_ips] if pod_ips else None,
            host_ip=host_ip,
            phase=phase,
        ),
    )


def replicaset(
    name: str, namespace: str = "default", owners: list[V1OwnerReference] | None = None
) -> V1ReplicaSet:
    return V1ReplicaSet(
        metadata=V1ObjectMeta(name=name, namespace=namespace, owner_references=owners),
        spec=V1ReplicaSetSpec(selector=V1LabelSelector()),
    )


def job(name: str, namespace: str = "default", owners: list[V1OwnerReference] | None = None) -> V1Job:
    return V1Job(metadata=V1ObjectMeta(name=name, namespace=namespace, owner_references=owners))


# The bookinfo pods of mixerd.testing.typical_http_bag, as Deployments make them.
PRODUCTPAGE = pod(
    "productpage-v1-6b746f74dc-9stvs",
    pod_ip="10.44.0.12",
    labels={"app": "productpage", "version": "v1", "pod-template-hash": "6b746f74dc"},
    owners=[owner("apps/v1", "ReplicaSet", "productpage-v1-6b746f74dc")],
    ports={"productpage": [9080], "istio-proxy": [15090]},
    service_account="bookinfo-productpage",
)
REVIEWS = pod(
    "reviews-v2-7bf8c9648f-xcvd4",
    pod_ip="10.44.0.17",
    labels={"app": "reviews", "version": "v2", "pod-template-hash": "7bf8c9648f"},
    owners=[owner("apps/v1", "ReplicaSet", "reviews-v2-7bf8c9648f")],
    ports={"reviews": [9080], "istio-proxy": [15090]},
    host_ip="192.168.1.11",
    service_account="bookinfo-reviews",
)
REPLICASETS_OF_BOOKINFO = [
    replicaset("productpage-v1-6b746f74dc", owners=[owner("apps/v1", "Deployment", "productpage-v1")]),
    replicaset("reviews-v2-7bf8c9648f", owners=[owner("apps/v1", "Deployment", "reviews-v2")]),
]


def env(params: Params | None = None) -> Env:
    return Env(
        handler=HANDLER,
        adapter="kubernetesenv",
        params=params or Params(),
        instances={},
        logger=logging.getLogger("mixerd.adapter.kubernetesenv"),
    )


def handler_with(
    pods: list[V1Pod], replicasets: list[V1ReplicaSet] | None = None, jobs: list[V1Job] | None = None
) -> Any:
    """A handler whose cache was fed directly (no cluster, no watchers)."""
    handler = KubernetesEnvHandler(env())
    handler.cache.replace(PODS, pods)
    handler.cache.replace(REPLICASETS, replicasets or [])
    handler.cache.replace(JOBS, jobs or [])
    return handler


def instance(**fields: Any) -> KubernetesInstance:
    return KubernetesInstance(name="attributes.instance.istio-system", **fields)


def source_of(uid: str) -> KubernetesInstance:
    return instance(source_uid=uid, source_ip=ip("0.0.0.0"))


@pytest.fixture
def outside_a_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT", "POD_NAMESPACE"):
        monkeypatch.delenv(name, raising=False)


# -- params ----------------------------------------------------------------------------------------


def test_adapter_info() -> None:
    info = mixerd_adapter_info()
    assert (info.name, info.templates, info.params, info.build) == (
        "kubernetesenv",
        ("kubernetes",),
        Params,
        build,
    )


def test_params_defaults_are_mixers_and_camel_case_is_read() -> None:
    assert read_params(Params, None) == Params("", Duration(300 * SECOND), "")
    params = read_params(
        Params,
        {
            "kubeconfigPath": "/etc/kube/config",
            "cacheRefreshDuration": "30s",
            "clusterRegistriesNamespace": "x",
        },
    )
    assert params == Params("/etc/kube/config", Duration(30 * SECOND), "x")


def test_a_refresh_that_is_not_positive_is_a_config_error() -> None:
    with pytest.raises(ParamsError) as e:
        read_params(Params, {"cacheRefreshDuration": "0s"})
    assert e.value.problems == [(".cacheRefreshDuration", "must be positive, got 0s")]


def test_kubeconfig_env_wins_and_registries_namespace_falls_back() -> None:
    params = Params(kubeconfig_path="/from/params")
    assert kubeconfig_path(params, {}) == "/from/params"
    assert kubeconfig_path(params, {"KUBECONFIG": "/from/env"}) == "/from/env"
    assert kubeconfig_path(Params(), {}) == ""
    assert registries_namespace(Params(), {}) == "istio-system"
    assert registries_namespace(Params(), {"POD_NAMESPACE": "mesh"}) == "mesh"
    assert (
        registries_namespace(Params(cluster_registries_namespace="own"), {"POD_NAMESPACE": "mesh"}) == "own"
    )


# -- records ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uid", "key"),
    [
        ("kubernetes://reviews-v2-7bf8c9648f-xcvd4.default", "default/reviews-v2-7bf8c9648f-xcvd4"),
        ("kubernetes://web.v1.shop", "shop/web.v1"),  # a pod name may have dots, a namespace may not
        ("kubernetes://no-namespace", None),
        ("kubernetes://.default", None),
        ("kubernetes://pod.", None),
        ("istio://default/workloads/reviews-v2", None),
        ("reviews-v2.default", None),
    ],
)
def test_key_from_uid(uid: str, key: str | None) -> None:
    assert key_from_uid(uid) == key


def test_a_pod_record_keeps_what_lookups_need() -> None:
    record = pod_record(
        pod(
            "web-0",
            "shop",
            pod_ip="10.1.0.5",
            pod_ips=["10.1.0.5", "fd00::5"],
            labels={"app": "web"},
            owners=[owner("v1", "Service", "x", controller=None), owner("apps/v1", "StatefulSet", "web")],
            ports={"web": [8080, 8443], "istio-proxy": [15090, 8080]},
            service_account="web",
        )
    )
    assert record == PodRecord(
        name="web-0",
        namespace="shop",
        labels={"app": "web"},
        ip=ip("10.1.0.5"),
        ips=(ip("10.1.0.5"), ip("fd00::5")),
        host_ip=ip("192.168.1.10"),
        service_account="web",
        controller=OwnerRef("apps/v1", "StatefulSet", "web"),
        ports={8080: "web", 8443: "web", 15090: "istio-proxy"},  # 8080: the first container declaring it
        host_network=False,
        finished=False,
    )


def test_a_partial_pod_gives_a_record_with_blanks_and_a_nameless_one_none() -> None:
    record = pod_record(V1Pod(metadata=V1ObjectMeta(name="new", namespace="default")))
    assert record == PodRecord("new", "default", {}, b"", (), b"", "", None, {}, False, False)
    assert pod_record(V1Pod(metadata=V1ObjectMeta(name="x"))) is None
    assert pod_record(V1Pod()) is None
    assert pod_record(pod("bad-ip", pod_ip="not-an-ip")).ip == b""


# -- the output fields -----------------------------------------------------------------------------


def test_a_typical_request_gets_both_pods_their_workloads_and_the_serving_container() -> None:
    handler = handler_with([PRODUCTPAGE, REVIEWS], REPLICASETS_OF_BOOKINFO)
    out = handler.handle_kubernetes(
        instance(
            source_uid="kubernetes://productpage-v1-6b746f74dc-9stvs.default",
            source_ip=ip("10.44.0.12"),
            destination_uid="kubernetes://reviews-v2-7bf8c9648f-xcvd4.default",
            destination_port=9080,
        )
    )
    assert out == {
        "source_pod_uid": "kubernetes://productpage-v1-6b746f74dc-9stvs.default",
        "source_pod_ip": ip("10.44.0.12"),
        "source_pod_name": "productpage-v1-6b746f74dc-9stvs",
        "source_labels": {"app": "productpage", "version": "v1", "pod-template-hash": "6b746f74dc"},
        "source_namespace": "default",
        "source_service_account_name": "bookinfo-productpage",
        "source_host_ip": ip("192.168.1.10"),
        "source_workload_uid": "istio://default/workloads/productpage-v1",
        "source_workload_name": "productpage-v1",
        "source_workload_namespace": "default",
        "source_owner": "kubernetes://apis/apps/v1/namespaces/default/deployments/productpage-v1",
        "destination_pod_uid": "kubernetes://reviews-v2-7bf8c9648f-xcvd4.default",
        "destination_pod_ip": ip("10.44.0.17"),
        "destination_pod_name": "reviews-v2-7bf8c9648f-xcvd4",
        "destination_container_name": "reviews",
        "destination_labels": {"app": "reviews", "version": "v2", "pod-template-hash": "7bf8c9648f"},
        "destination_namespace": "default",
        "destination_service_account_name": "bookinfo-reviews",
        "destination_host_ip": ip("192.168.1.11"),
        "destination_workload_uid": "istio://default/workloads/reviews-v2",
        "destination_workload_name": "reviews-v2",
        "destination_workload_namespace": "default",
        "destination_owner": "kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2",
    }
    assert handler.generation_stats() == {"hits": 2, "misses": 0, "skipped": 0, "sync_failures": 0}
    assert set(out) == {f.name for f in TEMPLATES["kubernetes"].output}  # every output field


def test_empty_values_are_left_out_so_the_bindings_fallbacks_apply() -> None:
    handler = handler_with([V1Pod(metadata=V1ObjectMeta(name="new", namespace="default"))])
    assert handler.handle_kubernetes(source_of("kubernetes://new.default")) == {
        "source_pod_uid": "kubernetes://new.default",
        "source_pod_name": "new",
        "source_labels": {},
        "source_namespace": "default",
        "source_workload_uid": "istio://default/workloads/new",
        "source_workload_name": "new",
        "source_workload_namespace": "default",
        "source_owner": "kubernetes://apis/v1/namespaces/default/pods/new",
    }


WORKLOAD_CASES = {
    "a Deployment's pod, through its ReplicaSet": (
        [owner("apps/v1", "ReplicaSet", "rs-1")],
        {},
        [replicaset("rs-1", owners=[owner("apps/v1", "Deployment", "shop")])],
        [],
        ("shop", "kubernetes://apis/apps/v1/namespaces/default/deployments/shop"),
    ),
    "a ReplicaSet of its own": (
        [owner("apps/v1", "ReplicaSet", "rs-1")],
        {},
        [replicaset("rs-1")],
        [],
        ("rs-1", "kubernetes://apis/apps/v1/namespaces/default/replicasets/rs-1"),
    ),
    "a ReplicaSet not in the cache, named after the pod-template-hash": (
        [owner("apps/v1", "ReplicaSet", "shop-5d9f8c7b6")],
        {"pod-template-hash": "5d9f8c7b6"},
        [],
        [],
        ("shop", "kubernetes://apis/apps/v1/namespaces/default/deployments/shop"),
    ),
    "a ReplicaSet not in the cache, named otherwise": (
        [owner("apps/v1", "ReplicaSet", "rs-1")],
        {"pod-template-hash": "5d9f8c7b6"},
        [],
        [],
        ("rs-1", "kubernetes://apis/apps/v1/namespaces/default/replicasets/rs-1"),
    ),
    "a CronJob's pod, through its Job": (
        [owner("batch/v1", "Job", "backup-28800")],
        {},
        [],
        [job("backup-28800", owners=[owner("batch/v1", "CronJob", "backup")])],
        ("backup", "kubernetes://apis/batch/v1/namespaces/default/cronjobs/backup"),
    ),
    "a Job of its own": (
        [owner("batch/v1", "Job", "migrate")],
        {},
        [],
        [job("migrate")],
        ("migrate", "kubernetes://apis/batch/v1/namespaces/default/jobs/migrate"),
    ),
    "a Job not in the cache": (
        [owner("batch/v1", "Job", "backup-28800")],
        {},
        [],
        [],
        ("backup-28800", "kubernetes://apis/batch/v1/namespaces/default/jobs/backup-28800"),
    ),
    "a StatefulSet's pod": (
        [owner("apps/v1", "StatefulSet", "db")],
        {},
        [],
        [],
        ("db", "kubernetes://apis/apps/v1/namespaces/default/statefulsets/db"),
    ),
    "a DaemonSet's pod": (
        [owner("apps/v1", "DaemonSet", "agent")],
        {},
        [],
        [],
        ("agent", "kubernetes://apis/apps/v1/namespaces/default/daemonsets/agent"),
    ),
    "a bare pod": ([], {}, [], [], ("p", "kubernetes://apis/v1/namespaces/default/pods/p")),
    "a pod whose only owner is no controller": (
        [owner("apps/v1", "ReplicaSet", "rs-1", controller=False)],
        {},
        [replicaset("rs-1", owners=[owner("apps/v1", "Deployment", "shop")])],
        [],
        ("p", "kubernetes://apis/v1/namespaces/default/pods/p"),
    ),
}


@pytest.mark.parametrize("case", list(WORKLOAD_CASES))
def test_the_workload_is_the_top_controller(case: str) -> None:
    owners, labels, replicasets, jobs, (name, owner_uid) = WORKLOAD_CASES[case]
    handler = handler_with([pod("p", owners=owners, labels=labels)], replicasets, jobs)
    out = handler.handle_kubernetes(source_of("kubernetes://p.default"))
    assert (out["source_workload_name"], out["source_owner"], out["source_workload_uid"]) == (
        name,
        owner_uid,
        f"istio://default/workloads/{name}",
    )


def test_the_container_is_the_one_declaring_the_destination_port() -> None:
    handler = handler_with([REVIEWS])
    uid = "kubernetes://reviews-v2-7bf8c9648f-xcvd4.default"
    by_port = {
        port: handler.handle_kubernetes(instance(destination_uid=uid, destination_port=port)).get(
            "destination_container_name"
        )
        for port in (9080, 15090, 8080, 0)
    }
    assert by_port == {9080: "reviews", 15090: "istio-proxy", 8080: None, 0: None}


# -- lookups ---------------------------------------------------------------------------------------


def test_by_ip_only_when_the_uid_is_empty_and_the_ip_is_specified() -> None:
    handler = handler_with([PRODUCTPAGE, REVIEWS, pod("v6", pod_ip="fd00::7")])

    def names(**fields: Any) -> tuple[Any, Any]:
        out = handler.handle_kubernetes(instance(**fields))
        return out.get("source_pod_name"), out.get("destination_pod_name")

    assert names(source_ip=ip("10.44.0.12"), destination_ip=ip("10.44.0.17")) == (
        "productpage-v1-6b746f74dc-9stvs",
        "reviews-v2-7bf8c9648f-xcvd4",
    )
    assert handler.generation_stats()["hits"] == 2
    # an IPv4 address in its IPv4-mapped IPv6 form, and an IPv6 pod
    assert names(source_ip=ip("::ffff:10.44.0.12"), destination_ip=ip("fd00::7")) == (
        "productpage-v1-6b746f74dc-9stvs",
        "v6",
    )
    # a uid wins, and one that is not found is a miss even when the address would be found
    assert names(source_uid="kubernetes://gone.default", source_ip=ip("10.44.0.12")) == (None, None)
    assert handler.generation_stats() == {"hits": 4, "misses": 1, "skipped": 0, "sync_failures": 0}
    # nothing to look up: not counted
    assert names(source_ip=ip("0.0.0.0"), destination_ip=ip("::")) == (None, None)
    assert names(source_ip=ip("::ffff:0.0.0.0")) == (None, None)  # what ip("0.0.0.0") gives in a rule
    assert names() == (None, None)
    assert handler.generation_stats() == {"hits": 4, "misses": 1, "skipped": 0, "sync_failures": 0}
    assert names(source_ip=ip("10.9.9.9")) == (None, None)
    assert handler.generation_stats()["misses"] == 2


def test_host_network_and_finished_pods_are_found_by_uid_only() -> None:
    handler = handler_with(
        [
            pod("node-agent", pod_ip="192.168.1.10", host_network=True),
            pod("done", pod_ip="10.44.0.40", phase="Succeeded"),
        ]
    )
    assert handler.cache.by_ip(ip("192.168.1.10")) is None
    assert handler.cache.by_ip(ip("10.44.0.40")) is None
    assert handler.cache.by_uid("kubernetes://node-agent.default") is not None
    assert handler.cache.by_uid("kubernetes://done.default") is not None


def test_watch_events_move_pods_and_addresses() -> None:
    cache = PodCache()
    cache.replace(PODS, [pod("a", pod_ip="10.0.0.1")])
    cache.apply(PODS, "MODIFIED", pod("a", pod_ip="10.0.0.2"))
    assert cache.by_ip(ip("10.0.0.1")) is None
    assert cache.by_ip(ip("10.0.0.2")).name == "a"
    # the address is reused by a new pod before the old one is deleted: the new one keeps it
    cache.apply(PODS, "MODIFIED", pod("a", pod_ip="10.0.0.2", phase="Failed"))
    cache.apply(PODS, "ADDED", pod("b", pod_ip="10.0.0.2"))
    cache.apply(PODS, "DELETED", pod("a", pod_ip="10.0.0.2", phase="Failed"))
    assert cache.by_ip(ip("10.0.0.2")).name == "b"
    assert cache.by_uid("kubernetes://a.default") is None
    cache.apply(PODS, "BOOKMARK", pod("c"))  # not a change
    assert len(cache) == 1


def test_a_relist_drops_what_is_gone_and_controller_changes_reach_cached_answers() -> None:
    handler = handler_with(
        [pod("p", owners=[owner("apps/v1", "ReplicaSet", "rs-1")]), pod("q")],
        [replicaset("rs-1", owners=[owner("apps/v1", "Deployment", "old")])],
    )
    uid = "kubernetes://p.default"
    assert handler.handle_kubernetes(source_of(uid))["source_workload_name"] == "old"
    handler.cache.apply(
        REPLICASETS, "MODIFIED", replicaset("rs-1", owners=[owner("apps/v1", "Deployment", "new")])
    )
    assert handler.handle_kubernetes(source_of(uid))["source_workload_name"] == "new"
    handler.cache.apply(REPLICASETS, "DELETED", replicaset("rs-1"))
    assert handler.handle_kubernetes(source_of(uid))["source_workload_name"] == "rs-1"
    handler.cache.replace(PODS, [pod("p", labels={"v": "2"})])
    assert handler.handle_kubernetes(source_of(uid))["source_labels"] == {"v": "2"}
    assert handler.handle_kubernetes(source_of("kubernetes://q.default")) == {}


def test_lookups_before_the_first_pod_list_are_skipped() -> None:
    handler = KubernetesEnvHandler(env())
    handler.cache.replace(REPLICASETS, [])
    assert not handler.synced
    both = instance(source_uid="kubernetes://a.default", destination_ip=ip("10.0.0.1"))
    assert handler.handle_kubernetes(both) == {}
    assert handler.generation_stats() == {"hits": 0, "misses": 0, "skipped": 2, "sync_failures": 0}
    handler.listed(PODS, [pod_record(pod("a"))])
    assert handler.synced
    assert handler.handle_kubernetes(both)["source_pod_name"] == "a"
    assert handler.generation_stats() == {"hits": 1, "misses": 1, "skipped": 2, "sync_failures": 0}


# -- no cluster ------------------------------------------------------------------------------------


def test_outside_a_cluster_the_handler_is_built_unavailable_and_skips(
    outside_a_cluster: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mixerd.adapter.kubernetesenv")
    handler = build(env())
    reason = (
        "not running in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig given "
        "(kubeconfigPath or KUBECONFIG)"
    )
    assert (handler.available, handler.unavailable) == (False, reason)
    for _ in range(3):
        assert handler.handle_kubernetes(source_of("kubernetes://a.default")) == {}
    assert handler.generation_stats() == {"hits": 0, "misses": 0, "skipped": 3, "sync_failures": 0}
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"{HANDLER}: unavailable, no attributes will be generated: {reason}")
    ]
    assert handler.registries_namespace == "istio-system"
    handler.close()
    handler.close()


def test_a_kubeconfig_that_cannot_be_used_makes_the_handler_unavailable(
    outside_a_cluster: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing"
    assert (
        build(env(Params(kubeconfig_path=str(missing)))).unavailable == f"kubeconfig {missing} does not exist"
    )
    empty = tmp_path / "empty"
    empty.write_text("")
    monkeypatch.setenv("KUBECONFIG", str(empty))  # wins over the params
    assert build(env(Params(kubeconfig_path=str(missing)))).unavailable == (
        f"cannot use kubeconfig {empty}: Invalid kube-config. {empty} file is empty"
    )


@pytest.mark.skipif(
    os.path.exists("/var/run/secrets/kubernetes.io/serviceaccount/token"), reason="running in a pod"
)
def test_in_a_cluster_without_a_service_account_token(
    outside_a_cluster: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert (
        build(env()).unavailable
        == "cannot use the in-cluster service account: Service token file does not exist."
    )


def test_sync_failures_are_counted_and_logged_once_per_streak(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mixerd.adapter.kubernetesenv")
    handler = KubernetesEnvHandler(env())
    handler.failed(PODS, "API error 403: Forbidden")
    handler.failed(PODS, "API error 403: Forbidden")
    handler.failed(JOBS, "API error 403: Forbidden")
    handler.listed(PODS, [pod_record(pod("a"))])
    handler.failed(PODS, "ConnectionError: refused")
    assert handler.generation_stats()["sync_failures"] == 4
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"{HANDLER}: cannot list or watch pods (retrying): API error 403: Forbidden"),
        ("WARNING", f"{HANDLER}: cannot list or watch jobs (retrying): API error 403: Forbidden"),
        ("INFO", f"{HANDLER}: pods listed again (1 objects)"),
        ("WARNING", f"{HANDLER}: cannot list or watch pods (retrying): ConnectionError: refused"),
    ]


# -- the watcher's loop, scripted --------------------------------------------------------------------


class _Stream:
    """What the client returns for a watch with _preload_content=False: lines of JSON events."""

    status = 200

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self._lines = [json.dumps(e).encode() + b"\n" for e in events]

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        yield from self._lines

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def _event(kind: str, name: str, version: str, pod_ip: str = "10.0.0.1") -> dict[str, Any]:
    return {
        "type": kind,
        "object": {
            "metadata": {"name": name, "namespace": "default", "resourceVersion": version},
            "spec": {"containers": [{"name": "app"}]},
            "status": {"podIP": pod_ip},
        },
    }


def _pod_list(names: list[str], version: str = "", next_page: str | None = None) -> V1PodList:
    return V1PodList(
        items=[pod(n) for n in names],
        metadata=V1ListMeta(resource_version=version or None, _continue=next_page),
    )


class _ScriptedApi:
    """A list function that answers each call with the next step of a script, then stops the watcher."""

    def __init__(self, steps: list[Any]) -> None:
        self.steps = deque(steps)
        self.calls: list[dict[str, Any]] = []
        self.watcher: Watcher | None = None

    def __call__(self, **kwargs: Any) -> Any:
        keep = ("watch", "resource_version", "_continue", "timeout_seconds")
        self.calls.append({k: v for k, v in kwargs.items() if k in keep and v is not None})
        if not self.steps:
            assert self.watcher is not None
            self.watcher.stop()
            raise ConnectionError("the script is over")
        step = self.steps.popleft()
        if isinstance(step, Exception):
            raise step
        return step


class _Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[Any, ...]] = []

    def listed(self, resource: str, records: list[Any]) -> None:
        self.seen.append(("listed", resource, [r.name for r in records]))

    def changed(self, resource: str, event_type: str, record: Any) -> None:
        self.seen.append((event_type, resource, record.name, record.ip))

    def failed(self, resource: str, reason: str) -> None:
        self.seen.append(("failed", resource, reason))


def _run_watcher(steps: list[Any], resync_s: float = 300.0) -> tuple[_ScriptedApi, _Recorder]:
    api = _ScriptedApi(steps)
    sink = _Recorder()

    def post(fn: Any, *args: Any) -> bool:
        fn(*args)
        return True

    watcher = Watcher(
        Resource(PODS, api, V1Pod), sink, post, resync_s, min_backoff_s=0.001, max_backoff_s=0.002
    )
    api.watcher = watcher
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    thread.join(timeout=5)
    assert not thread.is_alive()
    return api, sink


def test_the_watcher_lists_in_pages_then_watches_and_relists_after_expiry_and_failures() -> None:
    gone = {
        "type": "ERROR",
        "object": {"code": 410, "reason": "Expired", "message": "too old resource version"},
    }
    api, sink = _run_watcher(
        [
            _pod_list(["a"], next_page="page-2"),
            _pod_list(["b"], version="10"),
            _Stream(
                [
                    _event("ADDED", "c", "11"),
                    _event("MODIFIED", "a", "12", pod_ip="10.0.0.9"),
                    _event("DELETED", "b", "13"),
                    {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "14"}}},
                ]
            ),
            _Stream([gone]),
            _pod_list(["a", "c"], version="20"),
            ApiException(status=500, reason="Internal Server Error"),
            ConnectionError("connection refused"),
            _pod_list(["a"], version="30"),
        ]
    )
    assert [(c.get("watch", False), c.get("resource_version"), c.get("_continue")) for c in api.calls] == [
        (False, None, None),
        (False, None, "page-2"),
        (True, "10", None),
        (True, "14", None),  # from the bookmark
        (False, None, None),  # 410: list again
        (True, "20", None),  # fails with a 500
        (False, None, None),  # a failure: list again, which fails too
        (False, None, None),
        (True, "30", None),  # the script is over: the watcher stops
    ]
    assert api.calls[2]["timeout_seconds"] == 300  # the watch ends when the resync is due
    assert sink.seen == [
        ("listed", PODS, ["a", "b"]),
        ("ADDED", PODS, "c", ip("10.0.0.1")),
        ("MODIFIED", PODS, "a", ip("10.0.0.9")),
        ("DELETED", PODS, "b", ip("10.0.0.1")),
        ("listed", PODS, ["a", "c"]),
        ("failed", PODS, "API error 500: Internal Server Error"),
        ("failed", PODS, "ConnectionError: connection refused"),
        ("listed", PODS, ["a"]),
    ]


def test_the_watcher_relists_when_the_resync_is_due() -> None:
    api, sink = _run_watcher([_pod_list(["a"], "1"), _Stream([]), _pod_list(["b"], "2")], resync_s=0.001)
    assert [(c.get("watch", False), c.get("resource_version")) for c in api.calls] == [
        (False, None),
        (True, "1"),
        (False, None),
        (True, "2"),
    ]
    assert api.calls[1]["timeout_seconds"] == 1  # at least a second
    assert sink.seen == [("listed", PODS, ["a"]), ("listed", PODS, ["b"])]
