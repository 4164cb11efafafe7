"""The pod cache the request path reads: pods by namespace/name and by IP, and the ReplicaSets and Jobs
needed to find a pod's workload (MIXER.md 6.3).

It is written by the watchers (on the event loop, one callback at a time) and read by
`handle_kubernetes`; nothing here blocks or does I/O. Objects come in as the client's models (`replace`,
`apply`), or as records already converted off the loop (`replace_records`, `put_record`, `remove`).

A pod's workload is its top controller: the Deployment of its ReplicaSet, the CronJob of its Job, or
the controller itself (StatefulSet, DaemonSet, a bare ReplicaSet or Job, ...); a pod without one is its
own workload. A ReplicaSet not (yet) in the cache, whose name is `<x>-<pod-template-hash label>`,
is taken to belong to Deployment `<x>`: that is how Deployments name their ReplicaSets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .records import (
    ControllerRecord,
    OwnerRef,
    PodRecord,
    controller_record,
    key_from_uid,
    normalize_ip,
    pod_key,
    pod_record,
)

PODS, REPLICASETS, JOBS = "pods", "replicasets", "jobs"
RESOURCES = (PODS, REPLICASETS, JOBS)

Record = PodRecord | ControllerRecord
CONVERTERS: dict[str, Callable[[Any], Record | None]] = {
    PODS: pod_record,
    REPLICASETS: controller_record,
    JOBS: controller_record,
}

_DEPLOYMENT_API = "apps/v1"


class PodCache:
    def __init__(self) -> None:
        self._pods: dict[str, PodRecord] = {}
        self._by_ip: dict[bytes, str] = {}
        self._controllers: dict[str, dict[str, ControllerRecord]] = {REPLICASETS: {}, JOBS: {}}
        # Each pod's output fields for either side, built on first use; dropped when the pod or any
        # controller changes, so a lookup is two dict reads in the steady state.
        self._fields: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._synced: set[str] = set()

    # -- state -------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        """True once pods have been listed: before that, a miss means nothing."""
        return PODS in self._synced

    def is_synced(self, resource: str) -> bool:
        return resource in self._synced

    def __len__(self) -> int:
        return len(self._pods)

    # -- writes: models ------------------------------------------------------------------------------

    def replace(self, resource: str, objects: Iterable[Any]) -> None:
        """A full list of `resource` (V1Pod, V1ReplicaSet or V1Job models): what is not in it is gone."""
        convert = CONVERTERS[resource]
        self.replace_records(resource, [r for r in map(convert, objects) if r is not None])

    def apply(self, resource: str, event_type: str, obj: Any) -> None:
        """One watch event: ADDED, MODIFIED or DELETED (others are ignored)."""
        record = CONVERTERS[resource](obj)
        if record is None:
            return
        if event_type in ("ADDED", "MODIFIED"):
            self.put_record(resource, record)
        elif event_type == "DELETED":
            self.remove(resource, record.key)

    # -- writes: records -----------------------------------------------------------------------------

    def replace_records(self, resource: str, records: Iterable[Record]) -> None:
        if resource == PODS:
            self._pods = {}
            self._by_ip = {}
            for record in records:
                assert isinstance(record, PodRecord)
                self._pods[record.key] = record
                for ip in record.indexed_ips:
                    self._by_ip[ip] = record.key
        else:
            self._controllers[resource] = {r.key: r for r in records if isinstance(r, ControllerRecord)}
        self._fields.clear()
        self._synced.add(resource)

    def put_record(self, resource: str, record: Record) -> None:
        if isinstance(record, PodRecord):
            self._drop_pod(record.key)
            self._pods[record.key] = record
            for ip in record.indexed_ips:
                self._by_ip[ip] = record.key
        else:
            self._controllers[resource][record.key] = record
            self._fields.clear()

    def remove(self, resource: str, key: str) -> None:
        if resource == PODS:
            self._drop_pod(key)
        elif self._controllers[resource].pop(key, None) is not None:
            self._fields.clear()

    def _drop_pod(self, key: str) -> None:
        old = self._pods.pop(key, None)
        self._fields.pop(key, None)
        if old is None:
            return
        for ip in old.indexed_ips:
            if self._by_ip.get(ip) == key:  # another pod may have taken the address since
                del self._by_ip[ip]

    # -- reads -------------------------------------------------------------------------------------

    def by_uid(self, uid: str) -> PodRecord | None:
        key = key_from_uid(uid)
        return None if key is None else self._pods.get(key)

    def by_ip(self, ip: bytes) -> PodRecord | None:
        key = self._by_ip.get(normalize_ip(ip))
        return None if key is None else self._pods.get(key)

    def workload(self, pod: PodRecord) -> OwnerRef:
        """The pod's top controller (see the module docstring)."""
        ref = pod.controller
        if ref is None:
            return OwnerRef(api_version="v1", kind="Pod", name=pod.name)
        if ref.kind == "ReplicaSet":
            rs = self._controllers[REPLICASETS].get(pod_key(pod.namespace, ref.name))
            if rs is not None:
                return rs.controller or ref
            template_hash = pod.labels.get("pod-template-hash", "")
            if template_hash and ref.name.endswith(f"-{template_hash}"):
                deployment = ref.name[: -len(template_hash) - 1]
                return OwnerRef(api_version=_DEPLOYMENT_API, kind="Deployment", name=deployment)
        elif ref.kind == "Job":
            job = self._controllers[JOBS].get(pod_key(pod.namespace, ref.name))
            if job is not None:
                return job.controller or ref
        return ref

    def fields(self, pod: PodRecord, destination: bool) -> dict[str, Any]:
        """The pod's output fields for the source or the destination side (not to be modified)."""
        both = self._fields.get(pod.key)
        if both is None or self._pods.get(pod.key) is not pod:
            workload = self.workload(pod)
            both = (_side("source_", pod, workload), _side("destination_", pod, workload))
            if self._pods.get(pod.key) is pod:  # only what the cache holds is remembered
                self._fields[pod.key] = both
        return both[1] if destination else both[0]


def _side(prefix: str, pod: PodRecord, workload: OwnerRef) -> dict[str, Any]:
    """The template's output fields of one side; empty values are left out, so the bindings' own
    fallbacks (`| "unknown"`) apply."""
    namespace = pod.namespace
    fields: dict[str, Any] = {
        "pod_uid": f"kubernetes://{pod.name}.{namespace}",
        "pod_ip": pod.ip,
        "pod_name": pod.name,
        "labels": pod.labels,
        "namespace": namespace,
        "service_account_name": pod.service_account,
        "host_ip": pod.host_ip,
        "workload_uid": f"istio://{namespace}/workloads/{workload.name}",
        "workload_name": workload.name,
        "workload_namespace": namespace,
        "owner": workload.owner_uid(namespace),
    }
    return {prefix + name: value for name, value in fields.items() if value or name == "labels"}
