"""What the cache keeps of a pod, a ReplicaSet or a Job: small frozen records read from the client's
model objects (V1Pod, V1ReplicaSet, V1Job), so the cache holds a few strings per pod, not whole models.

Everything is read with getattr and tolerates missing parts: an object straight from a watch may be
partial (a pod without status or IP yet), and a malformed one must not take the cache down.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Pod phases after which the pod's IP may already belong to another pod.
_FINISHED_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class OwnerRef:
    """An object that controls another: enough to name it as Istio does."""

    api_version: str
    kind: str
    name: str

    def owner_uid(self, namespace: str) -> str:
        """`kubernetes://apis/<apiVersion>/namespaces/<ns>/<lower(kind)>s/<name>` (MIXER.md 6.3)."""
        return f"kubernetes://apis/{self.api_version}/namespaces/{namespace}/{self.kind.lower()}s/{self.name}"


@dataclass(frozen=True, slots=True)
class PodRecord:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ip: bytes  # status.podIP, packed (b"" before the pod has one)
    ips: tuple[bytes, ...]  # every address of the pod (dual stack), the primary first
    host_ip: bytes
    service_account: str
    controller: OwnerRef | None  # the owner reference marked controller
    ports: Mapping[int, str]  # container port -> the container that declares it
    host_network: bool  # its IP is the node's: never looked up by IP
    finished: bool  # Succeeded or Failed: its IP may be reused

    @property
    def key(self) -> str:
        return pod_key(self.namespace, self.name)

    @property
    def indexed_ips(self) -> tuple[bytes, ...]:
        """The addresses the pod can be found by: none for host-network and finished pods."""
        return () if self.host_network or self.finished else self.ips


@dataclass(frozen=True, slots=True)
class ControllerRecord:
    """A ReplicaSet or Job: its name and the object controlling it, if any (a Deployment, a CronJob)."""

    name: str
    namespace: str
    controller: OwnerRef | None

    @property
    def key(self) -> str:
        return pod_key(self.namespace, self.name)


def pod_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def key_from_uid(uid: str) -> str | None:
    """`kubernetes://<pod>.<namespace>` -> `<namespace>/<pod>`; None for any other uid.

    A namespace has no dots (it is a DNS label), so the namespace is what follows the last dot.
    """
    if not uid.startswith("kubernetes://"):
        return None
    pod, dot, namespace = uid[len("kubernetes://") :].rpartition(".")
    if not dot or not pod or not namespace:
        return None
    return pod_key(namespace, pod)


def normalize_ip(raw: bytes) -> bytes:
    """An IPv4-mapped IPv6 address as the IPv4 address it is (pods are indexed by their plain form)."""
    if len(raw) == 16 and raw[:12] == b"\x00" * 10 + b"\xff\xff":
        return raw[12:]
    return raw


def is_unspecified(raw: bytes) -> bool:
    """b"", 0.0.0.0 or ::, i.e. no address to look up; 0.0.0.0 in the 16-byte form too, which the
    default config's `source.ip | ip("0.0.0.0")` gives (net.IP.IsUnspecified, as Mixer asked)."""
    return not any(raw) or normalize_ip(raw) == b"\x00\x00\x00\x00"


def pod_record(pod: Any) -> PodRecord | None:
    """The record of a V1Pod; None when it has no name or namespace (nothing could look it up)."""
    meta = getattr(pod, "metadata", None)
    name = getattr(meta, "name", None)
    namespace = getattr(meta, "namespace", None)
    if not name or not namespace:
        return None
    spec = getattr(pod, "spec", None)
    status = getattr(pod, "status", None)
    primary = _packed(getattr(status, "pod_ip", None))
    ips = [primary] if primary else []
    for entry in getattr(status, "pod_ips", None) or ():
        ip = _packed(getattr(entry, "ip", None))
        if ip and ip not in ips:
            ips.append(ip)
    service_account = getattr(spec, "service_account_name", None) or getattr(spec, "service_account", None)
    return PodRecord(
        name=name,
        namespace=namespace,
        labels=dict(getattr(meta, "labels", None) or {}),
        ip=primary,
        ips=tuple(ips),
        host_ip=_packed(getattr(status, "host_ip", None)),
        service_account=service_account or "",
        controller=controller_ref(meta),
        ports=_ports(spec),
        host_network=bool(getattr(spec, "host_network", None)),
        finished=getattr(status, "phase", None) in _FINISHED_PHASES,
    )


def controller_record(obj: Any) -> ControllerRecord | None:
    """The record of a V1ReplicaSet or V1Job; None without a name or namespace."""
    meta = getattr(obj, "metadata", None)
    name = getattr(meta, "name", None)
    namespace = getattr(meta, "namespace", None)
    if not name or not namespace:
        return None
    return ControllerRecord(name=name, namespace=namespace, controller=controller_ref(meta))


def controller_ref(meta: Any) -> OwnerRef | None:
    """The owner reference marked `controller: true` (Kubernetes allows at most one)."""
    for ref in getattr(meta, "owner_references", None) or ():
        if getattr(ref, "controller", None) and ref.kind and ref.name:
            return OwnerRef(api_version=ref.api_version or "", kind=ref.kind, name=ref.name)
    return None


def _ports(spec: Any) -> dict[int, str]:
    ports: dict[int, str] = {}
    for container in getattr(spec, "containers", None) or ():
        for port in getattr(container, "ports", None) or ():
            number = getattr(port, "container_port", None)
            if isinstance(number, int) and container.name:
                ports.setdefault(number, container.name)  # the first container that declares it
    return ports


def _packed(text: str | None) -> bytes:
    if not text:
        return b""
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        return b""
