"""Reaching the cluster: the kubernetes client's configuration from a kubeconfig file (KUBECONFIG or
`kubeconfigPath`) or from the in-cluster service account, as Mixer's kubernetesenv did (MIXER.md 7.11).

`connect` raises NoCluster, with a sentence saying why, when there is nothing to connect with; the
handler then reports itself unavailable instead of failing its build.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from kubernetes import client, config

from .params import Params, kubeconfig_path


class NoCluster(Exception):
    """No cluster to watch: outside a cluster without a kubeconfig, or a kubeconfig that cannot be used."""


def connect(params: Params, environ: Mapping[str, str] = os.environ) -> client.ApiClient:
    """An ApiClient with a configuration of its own (the client's global default is left alone)."""
    configuration = client.Configuration()
    path = kubeconfig_path(params, environ)
    if path:
        files = [os.path.expanduser(p) for p in path.split(os.pathsep) if p]
        if not any(os.path.exists(p) for p in files):  # else the loader says "No configuration found."
            raise NoCluster(f"kubeconfig {path} does not exist")
        try:
            config.load_kube_config(
                config_file=path, client_configuration=configuration, persist_config=False
            )
        except Exception as e:  # the loader raises anything from ConfigException to TypeError
            raise NoCluster(f"cannot use kubeconfig {path}: {e}") from e
    else:
        if not environ.get("KUBERNETES_SERVICE_HOST"):
            raise NoCluster(
                "not running in a Kubernetes cluster (KUBERNETES_SERVICE_HOST is not set) and no kubeconfig "
                "given (kubeconfigPath or KUBECONFIG)"
            )
        try:
            config.load_incluster_config(client_configuration=configuration)
        except Exception as e:
            raise NoCluster(f"cannot use the in-cluster service account: {e}") from e
    return client.ApiClient(configuration)
