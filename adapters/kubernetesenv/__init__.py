"""kubernetesenv: the attribute generator of Istio's default config (MIXER.md 6.3, 7.11).

For each `kubernetes` instance it looks up the source and destination pods, by uid
`kubernetes://<pod>.<namespace>` or, when the uid is empty, by address, and answers their labels,
namespace, service account, node address, workload (the top controller: a ReplicaSet's Deployment, a
Job's CronJob) and owner, plus the container serving the destination port. Lookups read a cache that
watcher threads keep current with the official `kubernetes` client (list + watch, relisted every
`cacheRefreshDuration`): a request never waits for the API server. Outside a cluster the handler is
built but unavailable, and generates nothing. See docs/adapters/kubernetesenv.md.
"""

from __future__ import annotations

from mixerd.adapter import AdapterInfo, hookimpl

from .cache import PodCache
from .handler import KubernetesEnvHandler, build
from .params import Params

__all__ = ["KubernetesEnvHandler", "Params", "PodCache", "build", "mixerd_adapter_info"]


@hookimpl
def mixerd_adapter_info() -> AdapterInfo:
    return AdapterInfo(
        name="kubernetesenv",
        templates=("kubernetes",),
        params=Params,
        build=build,
        description="Generates pod and workload attributes from the Kubernetes API (pods by uid or IP)",
    )
