"""kubernetesenv params (Mixer's `adapter.kubernetesenv.config.Params`, MIXER.md 7.11); the field defaults
are Mixer's default config."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from mixerd.adapter import Duration, Problem

_FIVE_MINUTES = Duration(300 * 1_000_000_000)  # immutable, so one shared default is safe

#: The namespace multicluster secrets live in when neither the params nor POD_NAMESPACE say.
DEFAULT_REGISTRIES_NAMESPACE = "istio-system"


@dataclass
class Params:
    # The kubeconfig file to reach the cluster with; empty: the in-cluster service account. The
    # KUBECONFIG environment variable, when set, wins over it (as in Mixer).
    kubeconfig_path: str = ""
    # How often the pod, ReplicaSet and Job caches are listed again in full (between lists, watches
    # keep them current).
    cache_refresh_duration: Duration = _FIVE_MINUTES
    # Where Mixer read multicluster secrets; empty: env POD_NAMESPACE, else istio-system. Accepted,
    # resolved and reported, but mixerd watches only its own cluster (docs/adapters/kubernetesenv.md).
    cluster_registries_namespace: str = ""

    def check(self) -> Iterator[Problem]:
        if self.cache_refresh_duration <= 0:
            yield ".cacheRefreshDuration", f"must be positive, got {self.cache_refresh_duration}"


def kubeconfig_path(params: Params, environ: Mapping[str, str] = os.environ) -> str:
    """The kubeconfig to use: KUBECONFIG if set, else the params' path ("" = in cluster)."""
    return environ.get("KUBECONFIG") or params.kubeconfig_path


def registries_namespace(params: Params, environ: Mapping[str, str] = os.environ) -> str:
    return params.cluster_registries_namespace or environ.get("POD_NAMESPACE") or DEFAULT_REGISTRIES_NAMESPACE
