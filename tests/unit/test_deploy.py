"""deploy/ held to the code: the Kubernetes manifests, the Dockerfile and docs/deploy.md.

Everything is read from the files and checked against mixerd itself, never against a copied list:
container arguments go through `mixerd serve`'s real argparse parser (with the environment Kubernetes
would give the pod), probe and scrape paths through the real monitoring WSGI app, and the rules
ConfigMap through the server's own loader, laid out on disk the way the kubelet mounts it beside the
Redis password's Secret. No cluster, no network: tests/integration/test_deploy.py runs what needs real
processes.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest
import yaml
from peers.kubelet import container_env, expand, relocate_mount, volume_files, write_configmap, write_secret

from mixerd import cli
from mixerd.commands import check_config
from mixerd.config import ConfigRejected, Snapshot
from mixerd.plugins import load_adapters
from mixerd.runtime import Runtime
from mixerd.server.monitoring import MonitoringApp
from mixerd.server.stats import Stats, make_registry
from mixerd.settings import SETTINGS, Settings, from_namespace
from mixerd_adapters.redisquota.address import parse_address

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "kubernetes"
DOC = REPO / "docs" / "deploy.md"

#: Seconds mixerd may need after --shutdown-grace to close its handlers and monitoring server.
CLOSE_MARGIN = 5


# -- reading the files ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    file: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])

    @property
    def namespace(self) -> str | None:
        return self.doc["metadata"].get("namespace")


def _kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def _manifests() -> list[Manifest]:
    out = []
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is not None:
                out.append(Manifest(name, doc))
    return out


MANIFESTS = _manifests()


def _one(kind: str, name: str) -> dict[str, Any]:
    [found] = [m.doc for m in MANIFESTS if m.kind == kind and m.name == name]
    return found


def _all(kind: str) -> list[dict[str, Any]]:
    return [m.doc for m in MANIFESTS if m.kind == kind]


MIXERD = _one("Deployment", "mixerd")
REDIS = _one("Deployment", "redis")
NAMESPACE = _one("Namespace", "mixerd")["metadata"]["name"]


def _pod(workload: Mapping[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def _container(workload: Mapping[str, Any], name: str) -> dict[str, Any]:
    [container] = [c for c in _pod(workload)["containers"] if c["name"] == name]
    return container


def _pod_labels(workload: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _workloads_selected(selector: Mapping[str, str]) -> list[str]:
    return [d["metadata"]["name"] for d in _all("Deployment") if _selects(selector, _pod_labels(d))]


def _container_port(container: Mapping[str, Any], port: int | str) -> int:
    """The container port a Service targetPort or a probe port names (by name or number)."""
    for p in container.get("ports", []):
        if port in (p.get("name"), p["containerPort"]):
            return int(p["containerPort"])
    raise AssertionError(f"container {container['name']!r} declares no port {port!r}")


@dataclass(frozen=True)
class Dockerfile:
    instructions: list[tuple[str, str]]  # (INSTRUCTION, arguments), continuation lines joined

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        text = re.sub(r"\\\n", " ", path.read_text())
        out = []
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                word, _, rest = line.partition(" ")
                out.append((word.upper(), rest.strip()))
        return cls(out)

    def final_stage(self) -> list[tuple[str, str]]:
        last = max(i for i, (word, _) in enumerate(self.instructions) if word == "FROM")
        return self.instructions[last:]

    def last(self, word: str) -> str:
        [*_, found] = [rest for w, rest in self.final_stage() if w == word]
        return found

    def copy_sources(self) -> list[str]:
        """The build-context paths COPY takes (not those copied from another stage)."""
        sources = []
        for word, rest in self.instructions:
            if word == "COPY" and "--from" not in rest:
                sources += rest.split()[:-1]
        return sources


DOCKERFILE = Dockerfile.read(DEPLOY / "Dockerfile")
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


# -- what mixerd would run with -----------------------------------------------------------------------


def _service_link_env(namespace: str) -> dict[str, str]:
    """The variables the kubelet adds for each Service with a virtual IP in the pod's namespace when
    service links are on (Docker links' format: <NAME>_PORT=tcp://ip:port, ...)."""
    env = {}
    for service in _all("Service"):
        if service["metadata"]["namespace"] != namespace or service["spec"].get("clusterIP") == "None":
            continue
        name = service["metadata"]["name"].upper().replace("-", "_")
        ip = "10.96.0.10"
        ports = service["spec"]["ports"]
        env[f"{name}_SERVICE_HOST"] = ip
        env[f"{name}_SERVICE_PORT"] = str(ports[0]["port"])
        env[f"{name}_PORT"] = f"{ports[0].get('protocol', 'TCP').lower()}://{ip}:{ports[0]['port']}"
        for p in ports:
            proto = p.get("protocol", "TCP")
            if "name" in p:
                env[f"{name}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
            prefix = f"{name}_PORT_{p['port']}_{proto}"
            env[prefix] = f"{proto.lower()}://{ip}:{p['port']}"
            env[prefix + "_PROTO"] = proto.lower()
            env[prefix + "_PORT"] = str(p["port"])
            env[prefix + "_ADDR"] = ip
    return env


def _pod_env(workload: Mapping[str, Any], container: Mapping[str, Any]) -> dict[str, str]:
    env = {e["name"]: str(e["value"]) for e in container.get("env", [])}
    if _pod(workload).get("enableServiceLinks", True):
        env = {**_service_link_env(workload["metadata"]["namespace"]), **env}
    return env


def _parse_serve(argv: list[str], env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """`mixerd serve`'s settings from its real parser, with `env` as the whole MIXERD_* environment."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.env_var, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = cli.build_parser().parse_args(argv)
    assert args.command == "serve"
    return from_namespace(args)


@pytest.fixture
def mixerd_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings the mixerd container runs with: the image's entrypoint, the container's args and
    the environment Kubernetes would give it."""
    container = _container(MIXERD, "mixerd")
    return _parse_serve(container["args"], _pod_env(MIXERD, container), monkeypatch)


def _get(app: MonitoringApp, path: str) -> tuple[int, str, bytes]:
    """(status, content type, body) of one GET on the monitoring app."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"] = int(status.split()[0])
        answer["type"] = dict(headers)["Content-Type"]

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET"}, start_response))
    return answer["status"], answer["type"], body


def _monitoring(ready: bool) -> MonitoringApp:
    app = MonitoringApp(make_registry(Stats()))
    app.ready = ready
    return app


# -- the manifests as a whole ---------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_once() -> None:
    listed = _kustomization()["resources"]
    assert len(listed) == len(set(listed))
    assert set(listed) == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_namespaced_manifest_names_the_namespace() -> None:
    for m in MANIFESTS:
        if m.kind == "Namespace":
            continue
        assert m.kind in API, f"{m.file}: {m.kind} {m.name}: a kind this test does not know"
        assert m.namespace == NAMESPACE, f"{m.file}: {m.kind} {m.name} is in {m.namespace!r}"


#: kind -> (apiVersion, the kubernetes client's model of it).
API = {
    "ConfigMap": ("v1", "V1ConfigMap"),
    "Deployment": ("apps/v1", "V1Deployment"),
    "Namespace": ("v1", "V1Namespace"),
    "NetworkPolicy": ("networking.k8s.io/v1", "V1NetworkPolicy"),
    "PodDisruptionBudget": ("policy/v1", "V1PodDisruptionBudget"),
    "Service": ("v1", "V1Service"),
    "ServiceAccount": ("v1", "V1ServiceAccount"),
}
_PRIMITIVES: dict[str, type | tuple[type, ...]] = {
    "str": str,
    "int": int,
    "bool": bool,
    "float": (int, float),
}


def _schema_problems(value: Any, type_name: str, path: str) -> Iterator[str]:
    """Fields the Kubernetes API does not have, and values of the wrong type, by the official client's
    models (the API server refuses both: kubectl validates fields strictly)."""
    if type_name.startswith("List["):
        if not isinstance(value, list):
            yield f"{path}: expected a list"
            return
        for i, item in enumerate(value):
            yield from _schema_problems(item, type_name[5:-1], f"{path}[{i}]")
    elif type_name.startswith("Dict[str, "):
        if not isinstance(value, dict):
            yield f"{path}: expected a mapping"
            return
        for key, item in value.items():
            yield from _schema_problems(item, type_name[10:-1], f"{path}.{key}")
    elif type_name in _PRIMITIVES:
        if isinstance(value, bool) != (type_name == "bool") or not isinstance(value, _PRIMITIVES[type_name]):
            yield f"{path}: expected {type_name}, got {value!r}"
    elif type_name != "object":  # object: int-or-string, quantities, free-form
        model = getattr(kubernetes.client, type_name)
        fields = {json_name: name for name, json_name in model.attribute_map.items()}
        if not isinstance(value, dict):
            yield f"{path}: expected a {type_name} mapping"
            return
        for key, item in value.items():
            if key not in fields:
                yield f"{path}.{key}: no such field in {type_name}"
            else:
                yield from _schema_problems(item, model.openapi_types[fields[key]], f"{path}.{key}")


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: f"{m.kind}/{m.name}")
def test_every_field_is_one_kubernetes_knows(manifest: Manifest) -> None:
    api_version, model = API[manifest.kind]
    assert manifest.doc["apiVersion"] == api_version
    assert list(_schema_problems(manifest.doc, model, manifest.file)) == []


def test_the_schema_check_finds_misspelled_and_mistyped_fields() -> None:
    deployment = yaml.safe_load(yaml.safe_dump(MIXERD))
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["securityContext"]["readOnlyRootFilesytem"] = True
    pod["terminationGracePeriodSeconds"] = "30"
    deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] = 15014
    assert sorted(_schema_problems(deployment, "V1Deployment", "mixerd.yaml")) == [
        "mixerd.yaml.spec.template.metadata.annotations.prometheus.io/port: expected str, got 15014",
        "mixerd.yaml.spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem: "
        "no such field in V1SecurityContext",
        "mixerd.yaml.spec.template.spec.terminationGracePeriodSeconds: expected int, got '30'",
    ]


def test_no_two_manifests_share_a_kind_and_name() -> None:
    keys = [(m.kind, m.name) for m in MANIFESTS]
    assert len(keys) == len(set(keys))


def test_port_names_are_valid_kubernetes_port_names() -> None:
    names = [p["name"] for d in _all("Deployment") for c in _pod(d)["containers"] for p in c.get("ports", [])]
    names += [p["name"] for s in _all("Service") for p in s["spec"]["ports"]]
    for name in names:  # IANA_SVC_NAME: at most 15 characters, a-z 0-9 and '-', at least one letter
        assert len(name) <= 15 and re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name), name
        assert re.search("[a-z]", name) and "--" not in name, name


# -- mixerd's container: arguments and environment ------------------------------------------------------


def test_the_container_runs_the_image_entrypoint_with_serve_arguments() -> None:
    container = _container(MIXERD, "mixerd")
    assert "command" not in container, "the image's ENTRYPOINT (mixerd) must stay in charge"
    assert json.loads(DOCKERFILE.last("ENTRYPOINT")) == ["mixerd"]
    assert "mixerd" in PYPROJECT["project"]["scripts"]
    assert container["args"][0] == "serve"


def test_every_argument_is_one_mixerd_serve_accepts(monkeypatch: pytest.MonkeyPatch) -> None:
    args = _container(MIXERD, "mixerd")["args"]
    _parse_serve(args, {}, monkeypatch)  # argparse exits (SystemExit 2) on any unknown or bad flag
    with pytest.raises(SystemExit):  # and this parser does refuse what `serve` does not know
        _parse_serve([*args, "--no-such-flag=1"], {}, monkeypatch)


def test_the_settings_are_the_deployment_s(mixerd_settings: Settings) -> None:
    assert mixerd_settings.config == "/etc/mixerd/rules"
    assert mixerd_settings.log_level == "info"
    assert mixerd_settings.config_poll_interval > 0, "live reloading must stay on"


def test_every_mixerd_environment_variable_is_a_setting() -> None:
    known = {s.env_var for s in SETTINGS}
    for workload in _all("Deployment"):
        for container in _pod(workload)["containers"]:
            for env in container.get("env", []):
                if env["name"].startswith("MIXERD_"):
                    assert env["name"] in known, f"{env['name']} is no setting; mixerd would ignore it"


def test_service_links_stay_off_because_they_would_set_mixerd_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Service `mixerd` would make the kubelet set MIXERD_PORT=tcp://..., which is --port's variable."""
    assert _pod(MIXERD)["enableServiceLinks"] is False
    links = _service_link_env(NAMESPACE)
    assert links["MIXERD_PORT"].startswith("tcp://")
    with pytest.raises(SystemExit):
        _parse_serve(_container(MIXERD, "mixerd")["args"], links, monkeypatch)


# -- ports, probes and annotations ----------------------------------------------------------------------


def test_the_declared_ports_are_the_ones_mixerd_listens_on(mixerd_settings: Settings) -> None:
    container = _container(MIXERD, "mixerd")
    assert _container_port(container, "grpc-mixer") == mixerd_settings.port == Settings().port
    monitoring = _container_port(container, "http-monitoring")
    assert monitoring == mixerd_settings.monitoring_port == Settings().monitoring_port
    assert {p["containerPort"] for p in container["ports"]} == {mixerd_settings.port, monitoring}


def test_the_image_exposes_the_container_ports() -> None:
    exposed = {int(p.split("/")[0]) for p in DOCKERFILE.last("EXPOSE").split()}
    assert exposed == {p["containerPort"] for p in _container(MIXERD, "mixerd")["ports"]}


@pytest.mark.parametrize("service", _all("Service"), ids=lambda s: s["metadata"]["name"])
def test_each_service_selects_one_workload_and_targets_its_ports(service: dict[str, Any]) -> None:
    [workload] = _workloads_selected(service["spec"]["selector"])
    deployment = _one("Deployment", workload)
    [container] = _pod(deployment)["containers"]
    for port in service["spec"]["ports"]:
        assert _container_port(container, port["targetPort"]) == port["port"]


def test_the_grpc_services_name_their_port_as_grpc_for_istio(mixerd_settings: Settings) -> None:
    grpc_services = [s for s in _all("Service") if _workloads_selected(s["spec"]["selector"]) == ["mixerd"]]
    assert {s["metadata"]["name"] for s in grpc_services} == {"mixerd", "mixerd-headless"}
    for service in grpc_services:
        [grpc_port] = [p for p in service["spec"]["ports"] if p["port"] == mixerd_settings.port]
        assert grpc_port["name"].startswith("grpc-") and grpc_port["appProtocol"] == "grpc"
    assert _one("Service", "mixerd-headless")["spec"]["clusterIP"] == "None"


def test_the_probes_use_paths_mixerd_answers_on_its_monitoring_port(mixerd_settings: Settings) -> None:
    container = _container(MIXERD, "mixerd")
    probes = {
        kind: container[kind]["httpGet"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")
    }
    for probe in probes.values():
        assert _container_port(container, probe["port"]) == mixerd_settings.monitoring_port
    serving, draining = _monitoring(ready=True), _monitoring(ready=False)
    for kind, probe in probes.items():
        assert _get(serving, probe["path"])[0] == 200, kind
    # Readiness follows shutdown (SIGTERM turns it 503); liveness and startup must not, or the kubelet
    # would kill a replica that is finishing its calls.
    assert _get(draining, probes["readinessProbe"]["path"])[0] == 503
    assert _get(draining, probes["livenessProbe"]["path"])[0] == 200
    assert _get(draining, probes["startupProbe"]["path"])[0] == 200


def test_the_scrape_annotations_point_at_mixerd_s_metrics(mixerd_settings: Settings) -> None:
    annotations = MIXERD["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == mixerd_settings.monitoring_port
    status, content_type, body = _get(_monitoring(ready=True), annotations["prometheus.io/path"])
    assert status == 200 and content_type.startswith("text/plain; version=")
    assert b"# TYPE mixerd_check_requests_total counter" in body


def test_the_redis_probes_and_service_use_the_port_redis_listens_on() -> None:
    container = _container(REDIS, "redis")
    args = container["args"]
    listens = int(args[args.index("--port") + 1])
    assert _container_port(container, "redis") == listens
    assert _container_port(container, container["livenessProbe"]["tcpSocket"]["port"]) == listens
    [port] = _one("Service", "redis")["spec"]["ports"]
    assert port["port"] == listens
    assert listens == 6379  # the readiness probe's redis-cli asks the default port


# -- labels and selectors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("workload", _all("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_each_deployment_selects_its_own_pods_and_only_them(workload: dict[str, Any]) -> None:
    selector = workload["spec"]["selector"]["matchLabels"]
    assert _workloads_selected(selector) == [workload["metadata"]["name"]]
    for spread in _pod(workload).get("topologySpreadConstraints", []):
        assert spread["labelSelector"]["matchLabels"] == selector


def test_the_disruption_budget_covers_mixerd_and_leaves_replicas_up() -> None:
    [pdb] = _all("PodDisruptionBudget")
    assert _workloads_selected(pdb["spec"]["selector"]["matchLabels"]) == ["mixerd"]
    replicas = MIXERD["spec"]["replicas"]
    assert replicas == 3
    assert 0 < pdb["spec"]["maxUnavailable"] < replicas
    assert pdb["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"
    assert MIXERD["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_mixerd_replicas_spread_over_nodes_and_zones() -> None:
    keys = {s["topologyKey"] for s in _pod(MIXERD)["topologySpreadConstraints"]}
    assert keys == {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}


def test_only_mixerd_may_reach_redis_on_its_port() -> None:
    [policy] = _all("NetworkPolicy")
    assert _workloads_selected(policy["spec"]["podSelector"]["matchLabels"]) == ["redis"]
    [rule] = policy["spec"]["ingress"]
    [source] = rule["from"]
    assert _workloads_selected(source["podSelector"]["matchLabels"]) == ["mixerd"]
    [port] = rule["ports"]
    assert port["port"] == _container_port(_container(REDIS, "redis"), "redis")


def test_the_service_account_exists_and_mounts_no_token() -> None:
    pod = _pod(MIXERD)
    account = _one("ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False
    assert pod["automountServiceAccountToken"] is False


# -- security, resources, shutdown ------------------------------------------------------------------------


@pytest.mark.parametrize("workload", _all("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_every_container_is_locked_down(workload: dict[str, Any]) -> None:
    pod = _pod(workload)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["runAsNonRoot"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert not context.get("privileged", False)
        assert "add" not in context["capabilities"]


def test_the_pod_runs_as_the_image_s_numeric_user() -> None:
    user, _, group = DOCKERFILE.last("USER").partition(":")
    assert user.isdigit(), "runAsNonRoot can only check a numeric USER"
    context = _pod(MIXERD)["securityContext"]
    assert context["runAsUser"] == int(user)
    assert context["runAsGroup"] == int(group or user)


def _quantity(text: str | int) -> float:
    """A Kubernetes quantity (500m, 2, 192Mi, 1G) as a plain number."""
    match = re.fullmatch(r"([0-9.]+)(m|Ki|Mi|Gi|k|M|G)?", str(text))
    assert match, text
    factor = {None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    return float(match[1]) * factor[match[2]]


@pytest.mark.parametrize("workload", _all("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_every_container_requests_and_limits_cpu_and_memory(workload: dict[str, Any]) -> None:
    for container in _pod(workload)["containers"]:
        resources = container["resources"]
        for resource in ("cpu", "memory"):
            request = _quantity(resources["requests"][resource])
            assert 0 < request <= _quantity(resources["limits"][resource]), (container["name"], resource)


def test_termination_grace_covers_the_pre_stop_sleep_and_mixerd_s_shutdown(
    mixerd_settings: Settings,
) -> None:
    pod = _pod(MIXERD)
    command = _container(MIXERD, "mixerd")["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    pre_stop = float(command[1])
    assert pre_stop > 0
    needed = pre_stop + mixerd_settings.shutdown_grace + CLOSE_MARGIN
    assert pod["terminationGracePeriodSeconds"] >= needed


def test_the_image_runs_mixerd_as_pid_1_so_it_gets_sigterm() -> None:
    # Exec form (a JSON list): the shell form would make /bin/sh PID 1, and sh does not pass SIGTERM on.
    assert json.loads(DOCKERFILE.last("ENTRYPOINT")) == ["mixerd"]
    assert json.loads(DOCKERFILE.last("CMD")) == ["serve"]


# -- the image ---------------------------------------------------------------------------------------------


def test_the_deployment_runs_the_version_the_dockerfile_builds() -> None:
    assert _container(MIXERD, "mixerd")["image"] == f"mixerd:{PYPROJECT['project']['version']}"


def test_the_image_s_python_is_one_mixerd_supports() -> None:
    [version] = [rest.partition("=")[2] for word, rest in DOCKERFILE.instructions if word == "ARG"]
    major, minor = map(int, version.split("."))
    required = re.fullmatch(r">=(\d+)\.(\d+)", PYPROJECT["project"]["requires-python"])
    assert required and (major, minor) >= (int(required[1]), int(required[2]))
    assert all(
        rest.startswith("python:${PYTHON_VERSION}-")
        for word, rest in DOCKERFILE.instructions
        if word == "FROM"
    )


def test_the_dockerfile_copies_everything_the_wheel_is_built_from() -> None:
    copied = {s.rstrip("/") for s in DOCKERFILE.copy_sources()}
    needed = {*PYPROJECT["tool"]["setuptools"]["package-dir"].values(), PYPROJECT["project"]["readme"]}
    assert needed | {"pyproject.toml", "setup.py"} <= copied
    for source in copied:
        assert (REPO / source).exists(), source


def test_the_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    lines = [ln for ln in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines() if ln.strip()]
    patterns = [ln for ln in lines if not ln.startswith("#")]
    assert patterns[0] == "*"
    kept = {p.removeprefix("!") for p in patterns if p.startswith("!")}
    assert kept == {s.rstrip("/") for s in DOCKERFILE.copy_sources()}


# -- Redis ---------------------------------------------------------------------------------------------------


def _redis_bytes(text: str) -> int:
    match = re.fullmatch(r"(\d+)(kb|mb|gb|k|m|g)?", text.lower())
    assert match, text
    factor = {None: 1, "k": 1000, "m": 1000**2, "g": 1000**3, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
    return int(match[1]) * factor[match[2]]


def test_redis_keeps_nothing_on_disk() -> None:
    args = _container(REDIS, "redis")["args"]
    assert args[args.index("--save") + 1] == ""
    assert args[args.index("--appendonly") + 1] == "no"
    for volume in _pod(REDIS).get("volumes", []):
        assert "persistentVolumeClaim" not in volume
    assert REDIS["spec"]["replicas"] == 1
    assert REDIS["spec"]["strategy"]["type"] == "Recreate"  # never two Redis counting side by side


def test_redis_evicts_expiring_keys_below_its_memory_limit() -> None:
    container = _container(REDIS, "redis")
    args = container["args"]
    assert args[args.index("--maxmemory-policy") + 1] == "volatile-ttl"
    maxmemory = _redis_bytes(args[args.index("--maxmemory") + 1])
    assert maxmemory < _quantity(container["resources"]["limits"]["memory"])


# -- the rules ConfigMap -------------------------------------------------------------------------------------


#: The version folder of the mounted rules (the kubelet names it after the time of the update).
STAMP = "2026_01_01_00_00_00.000000001"


def _rules_volume() -> dict[str, Any]:
    container = _container(MIXERD, "mixerd")
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/mixerd/rules"]
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "the kubelet never updates a subPath mount: live reload would stop"
    [volume] = [v for v in _pod(MIXERD)["volumes"] if v["name"] == mount["name"]]
    return volume


def _rules_data() -> dict[str, str]:
    data: dict[str, str] = _one("ConfigMap", _rules_volume()["configMap"]["name"])["data"]
    return data


#: What the tests put in the Secret redis-auth (the operator's is `openssl rand -hex 24`).
PASSWORD = "0123456789abcdef0123456789abcdef0123456789abcdef"


def _mounted_rules(tmp_path: Path, data: Mapping[str, str] | None = None) -> Path:
    """The rules ConfigMap (or `data` in its place) and the Redis password's Secret, laid out as the
    kubelet mounts them in a mixerd pod; the rules' references into the Secret's mount point at the
    test's folder. Returns the rules folder."""
    mount, source = _secret_mount()
    secret = write_secret(tmp_path / "secret", STAMP, volume_files(source, {"password": PASSWORD}))
    rules = relocate_mount(_rules_data() if data is None else data, mount["mountPath"], secret)
    return write_configmap(tmp_path / "rules", STAMP, rules)


def _compile(folder: Path, settings: Settings) -> Snapshot:
    """What `mixerd serve` does with its --config folder at start and on every change."""
    runtime = Runtime(
        load_adapters(), folder=folder, default_namespace=settings.config_default_namespace, settings=settings
    )
    return runtime.compile()


def test_the_rules_configmap_is_mounted_where_serve_reads_its_config(mixerd_settings: Settings) -> None:
    container = _container(MIXERD, "mixerd")
    mount = next(m for m in container["volumeMounts"] if m["name"] == "rules")
    assert mount["mountPath"] == mixerd_settings.config
    assert _rules_volume()["configMap"]["name"] == "mixerd-rules"


def test_the_rules_load_as_the_server_loads_them(tmp_path: Path, mixerd_settings: Settings) -> None:
    snapshot = _compile(_mounted_rules(tmp_path), mixerd_settings)
    assert snapshot.resources_by_kind == {"handler": 1, "instance": 1, "rule": 1, "ratelimitconfig": 1}
    assert [h.adapter.name for h in snapshot.handlers.values()] == ["redisquota"]
    assert set(snapshot.rate_limit_domains) == {"edge"}


def test_a_broken_rule_in_the_configmap_is_refused(tmp_path: Path, mixerd_settings: Settings) -> None:
    """The load above is no formality: the same path refuses bad redisquota params."""
    data = dict(_rules_data())
    data["quota.yaml"] = data["quota.yaml"].replace('"redis://:', '"http://:')
    with pytest.raises(ConfigRejected, match=r"quota\.yaml: handler 'shared-quota.*redisServerUrl"):
        _compile(_mounted_rules(tmp_path, data), mixerd_settings)


def _service_for_host(host: str, port: int, namespace: str) -> dict[str, Any]:
    """The Service that `host:port` reaches from a pod in `namespace` (cluster DNS, default domain)."""
    parts = host.split(".")
    name, service_namespace = parts[0], namespace
    if len(parts) > 1:
        assert parts[2:] in ([], ["svc"], ["svc", "cluster", "local"]), f"{host} is no Service name"
        service_namespace = parts[1]
    [service] = [
        s
        for s in _all("Service")
        if s["metadata"]["name"] == name and s["metadata"]["namespace"] == service_namespace
    ]
    assert port in {p["port"] for p in service["spec"]["ports"]}, f"{name} has no port {port}"
    return service


def test_redisquota_points_at_the_redis_service_with_the_secret_s_password(
    tmp_path: Path, mixerd_settings: Settings
) -> None:
    snapshot = _compile(_mounted_rules(tmp_path), mixerd_settings)
    for handler in snapshot.handlers.values():
        address = parse_address(handler.params.redis_server_url)  # as the adapter reads it
        assert address.scheme == "redis"
        assert (address.username, address.password) == (None, PASSWORD)  # Redis's default user
        assert PASSWORD not in repr(handler.params.redis_server_url)  # logs and errors show the reference
        service = _service_for_host(address.host, address.port, MIXERD["metadata"]["namespace"])
        assert _workloads_selected(service["spec"]["selector"]) == ["redis"]
        assert not handler.params.cluster and not handler.params.sentinels


def test_the_rules_see_every_request(mixerd_settings: Settings) -> None:
    """Rules outside --config-default-namespace only see their own namespace's requests."""
    for text in _rules_data().values():
        for doc in yaml.safe_load_all(text):
            assert doc["metadata"]["namespace"] == mixerd_settings.config_default_namespace


def test_no_handler_needs_the_kubernetes_api_token(tmp_path: Path, mixerd_settings: Settings) -> None:
    snapshot = _compile(_mounted_rules(tmp_path), mixerd_settings)
    assert _pod(MIXERD)["automountServiceAccountToken"] is False
    assert "kubernetesenv" not in {h.adapter.name for h in snapshot.handlers.values()}


def test_the_redisquota_timeout_fits_envoy_s_ratelimit_filter(
    tmp_path: Path, mixerd_settings: Settings
) -> None:
    snapshot = _compile(_mounted_rules(tmp_path), mixerd_settings)
    for handler in snapshot.handlers.values():
        assert handler.params.timeout.total_seconds() < 0.020  # the filter's default timeout
        assert handler.params.timeout.total_seconds() < mixerd_settings.adapter_timeout


# -- the Redis password --------------------------------------------------------------------------------------

#: A `${file:/path}` reference in handler params (mixer/config/secrets.py).
FILE_REFERENCE = re.compile(r"\$\{file:([^}]*)\}")


def _secret_mount() -> tuple[dict[str, Any], dict[str, Any]]:
    """mixerd's mount of a Secret volume, and that volume's `secret` source."""
    container = _container(MIXERD, "mixerd")
    volumes = {v["name"]: v for v in _pod(MIXERD)["volumes"]}
    [mount] = [m for m in container["volumeMounts"] if "secret" in volumes[m["name"]]]
    return mount, volumes[mount["name"]]["secret"]


def _secret_references() -> list[tuple[str, str, str]]:
    """(where, Secret name, key) of every use of a Secret in the manifests; key '*' for all of them."""
    found = []
    for workload in _all("Deployment"):
        pod, name = _pod(workload), workload["metadata"]["name"]
        for container in pod["containers"]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    found.append((f"{name}: env {var['name']}", ref["name"], ref["key"]))
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                source = volume["secret"]
                for key in [item["key"] for item in source.get("items", [])] or ["*"]:
                    found.append((f"{name}: volume {volume['name']}", source["secretName"], key))
    return found


def _docs_secret_commands() -> list[list[str]]:
    """The words of each `kubectl ... create secret` in docs/deploy.md (before any `|`)."""
    lines = [line for line in _shell_lines() if line.startswith("kubectl ") and " create secret " in line]
    return [_pipeline(line)[0] for line in lines]


def test_no_secret_value_is_kept_in_deploy() -> None:
    """The operator creates the Secret (docs/deploy.md): a password in git would be everyone's, and a
    Secret that `kubectl apply -k` applies would set a rotated password back at every apply."""
    assert "Secret" not in {m.kind for m in MANIFESTS}
    assert "secretGenerator" not in _kustomization()
    for path in K8S.iterdir():
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path.name


def test_every_secret_reference_names_the_secret_the_docs_create() -> None:
    references = _secret_references()
    assert {where.partition(":")[0] for where, *_ in references} == {"mixerd", "redis"}
    commands = _docs_secret_commands()
    assert len(commands) == 2  # creating it, and rotating it
    for args in commands:
        assert args[:4] == ["kubectl", "-n", NAMESPACE, "create"] and args[4:6] == ["secret", "generic"]
        name = args[6]
        [literal] = [a for a in args if a.startswith("--from-literal=")]
        key, _, value = literal.removeprefix("--from-literal=").partition("=")
        for where, secret, referenced in references:
            assert (secret, referenced) == (name, key), where
        # Made of hex digits: nothing a URL would need escaped (the rules put it into redisServerUrl),
        # and no trailing newline ($(...) drops the one openssl writes).
        assert value in ("$(openssl rand -hex 24)", "$NEW")
    assert "--dry-run=client" in commands[1] and "$NEW" in " ".join(commands[1])


def test_the_rules_read_the_password_where_the_secret_is_mounted() -> None:
    """The Secret's key is the file name the rules read, in the folder mixerd mounts it at."""
    mount, source = _secret_mount()
    assert mount["readOnly"] is True
    assert "subPath" not in mount, "the kubelet never updates a subPath mount: a rotation would not arrive"
    assert source.get("optional", False) is False  # no Secret, no pod: never Redis without its password
    files = volume_files(source, {"password": PASSWORD})
    references = [path for text in _rules_data().values() for path in FILE_REFERENCE.findall(text)]
    assert references
    for path in references:
        folder, _, name = path.rpartition("/")
        assert folder == mount["mountPath"] and files[name] == PASSWORD, path


def test_the_tests_relocate_every_reference_into_the_secret_s_mount(tmp_path: Path) -> None:
    """How the tests stand in for /etc/mixerd/secrets: nothing keeps pointing at the pod's path."""
    mount, _ = _secret_mount()
    moved = relocate_mount(_rules_data(), mount["mountPath"], tmp_path)
    paths = [path for text in moved.values() for path in FILE_REFERENCE.findall(text)]
    assert paths and all(Path(path).parent == tmp_path for path in paths)
    with pytest.raises(ValueError, match=r"no \$\{file:\.\.\.\} reference under /etc/elsewhere"):
        relocate_mount(_rules_data(), "/etc/elsewhere", tmp_path)


def test_the_pod_s_user_can_read_the_mounted_password() -> None:
    _, source = _secret_mount()
    context = _pod(MIXERD)["securityContext"]
    assert context["runAsUser"] != 0 and "fsGroup" not in context  # the files are root's
    for item in source["items"]:
        mode = item.get("mode", source.get("defaultMode", 0o644))  # the kubelet's default
        assert mode & 0o004 and not mode & 0o022, oct(mode)


def test_redis_requires_the_secret_s_password() -> None:
    container = _container(REDIS, "redis")
    env = container_env(container, {"redis-auth": {"password": PASSWORD}})
    args = [expand(arg, env) for arg in container["args"]]
    assert args[args.index("--requirepass") + 1] == PASSWORD
    assert PASSWORD not in json.dumps(REDIS)  # the manifest holds a reference only


def test_the_redis_readiness_probe_logs_in_and_wants_pong() -> None:
    """redis-cli answers NOAUTH with exit code 0: the probe must log in, and look at the answer."""
    container = _container(REDIS, "redis")
    env = container_env(container, {"redis-auth": {"password": PASSWORD}})
    assert env["REDISCLI_AUTH"] == PASSWORD  # what redis-cli logs in with
    command = container["readinessProbe"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"] and "PONG" in command[2]
    [cli] = [shlex.split(part) for part in re.findall(r"\$\(([^)]*)\)", command[2])]
    assert cli == ["redis-cli", "ping"]  # the default port, 6379: --port (the probe test above)
    # The kubelet expands $(VAR) in exec probes with the variables given by value: none here, so the
    # shell's $(redis-cli ping) reaches the shell unchanged.
    static = {v["name"]: v["value"] for v in container["env"] if "value" in v}
    assert [expand(word, static) for word in command] == command


def test_the_docs_rotation_gives_redis_the_new_password_through_its_own_redis_cli() -> None:
    """`printf ... | kubectl exec -i deployment/redis -- redis-cli`: logged in by the pod's REDISCLI_AUTH;
    tests/integration/test_deploy.py runs the line's command on a real Redis."""
    [line] = [line for line in _shell_lines() if "ACL SETUSER" in line]
    printf, kubectl = _pipeline(line)
    assert printf[0] == "printf" and printf[-1] == "$NEW"
    assert kubectl[:3] == ["kubectl", "-n", NAMESPACE] and kubectl[3:5] == ["exec", "-i"]
    kind, _, name = kubectl[5].partition("/")
    assert (kind, _one("Deployment", name)) == ("deployment", REDIS)
    assert kubectl[6:] == ["--", "redis-cli"]
    assert "REDISCLI_AUTH" in container_env(_container(REDIS, "redis"), {"redis-auth": {"password": "x"}})


# -- docs/deploy.md --------------------------------------------------------------------------------------


def _blocks(language: str) -> list[tuple[str | None, str]]:
    """(the file it is an excerpt of, or None; text) of each ``` block in that language."""
    text = DOC.read_text()
    out = []
    for match in re.finditer(rf"(<!-- excerpt: (\S+) -->\n)?```{language}\n(.*?)```", text, re.S):
        out.append((match[2], match[3]))
    return out


def _shell_lines() -> list[str]:
    return [line.strip() for _, block in _blocks("sh") for line in block.splitlines() if line.strip()]


def _is_excerpt(block: str, text: str) -> bool:
    """`block` is a run of whole lines of `text`, all indented alike there (or not at all)."""
    wanted = textwrap.dedent(block).splitlines()
    lines = text.splitlines()
    for start in range(len(lines) - len(wanted) + 1):
        window = lines[start : start + len(wanted)]
        indent = window[0][: len(window[0]) - len(window[0].lstrip())]
        if all(line == (indent + w if w else "") for line, w in zip(window, wanted, strict=True)):
            return True
    return False


def test_the_docs_yaml_from_deploy_is_the_files_text() -> None:
    excerpts = [(f, b) for f, b in _blocks("yaml") if f is not None]
    assert len(excerpts) >= 3
    for file, block in excerpts:
        assert _is_excerpt(block, (REPO / file).read_text()), f"docs/deploy.md's excerpt of {file}:\n{block}"


def test_the_docs_other_yaml_redefines_nothing_from_deploy() -> None:
    ours = {(m.kind, m.name) for m in MANIFESTS}
    for file, block in _blocks("yaml"):
        if file is None:
            for doc in yaml.safe_load_all(block):
                key = (doc.get("kind"), doc.get("metadata", {}).get("name"))
                assert key not in ours, f"docs/deploy.md shows {key} unlike deploy/: mark it as an excerpt"


def test_the_docs_overlay_renames_the_deployment_s_image() -> None:
    [overlay] = [
        doc for _, b in _blocks("yaml") if "kind: Kustomization" in b for doc in yaml.safe_load_all(b)
    ]
    image = _container(MIXERD, "mixerd")["image"]
    [entry] = overlay["images"]
    assert image == f"{entry['name']}:{entry['newTag']}"


def _pipeline(line: str) -> list[list[str]]:
    """A shell line's commands, each as its words (split at `|` outside quotes)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    for word in lexer:
        if word == "|":
            commands.append([])
        else:
            commands[-1].append(word)
    return commands


def _kubectl_refs(line: str) -> Iterator[tuple[str, str, str]]:
    """(namespace, kind, name) of each `kind/name` a kubectl line names."""
    args = _pipeline(line)[0]
    namespace = args[args.index("-n") + 1]
    kinds = {"deployment": "Deployment", "configmap": "ConfigMap", "svc": "Service", "service": "Service"}
    for arg in args:
        kind, slash, name = arg.partition("/")
        if slash and kind in kinds:
            yield namespace, kinds[kind], name


def test_the_docs_commands_name_files_and_resources_that_exist() -> None:
    lines = _shell_lines()
    kubectl = [line for line in lines if line.startswith("kubectl ")]
    assert len(kubectl) >= 5
    for line in lines:
        for path in re.findall(r"\bdeploy/[\w./-]+", line):
            assert (REPO / path).exists(), f"{line}: {path}"
    for line in kubectl:
        if "-n" not in _pipeline(line)[0]:
            continue
        for namespace, kind, name in _kubectl_refs(line):
            assert namespace == NAMESPACE
            _one(kind, name)
        selector = re.search(r"-l (\S+)=(\S+)", line)
        if selector:
            assert _workloads_selected({selector[1]: selector[2]}) == ["mixerd"], line


def test_the_docs_build_the_image_the_deployment_runs() -> None:
    [build] = [line for line in _shell_lines() if line.startswith("docker build")]
    args = shlex.split(build)
    assert (REPO / args[args.index("-f") + 1]).is_file()
    assert args[args.index("-t") + 1] == _container(MIXERD, "mixerd")["image"]
    assert args[-1] == "."  # the context is the checkout's root, which the COPY lines assume


def test_the_docs_port_forward_and_curl_reach_what_mixerd_serves(mixerd_settings: Settings) -> None:
    lines = _shell_lines()
    [forward, admin] = [line for line in lines if " port-forward " in line]
    args = shlex.split(forward)
    target = args[args.index("port-forward") + 1]
    service = _one("Service", target.removeprefix("svc/"))
    forwarded = {int(a) for a in args if a.isdigit()}
    assert forwarded <= {p["port"] for p in service["spec"]["ports"]}
    # The admin page is on each pod's loopback, not behind the Service: forwarded from the Deployment.
    args = shlex.split(admin.partition("#")[0])
    assert args[args.index("port-forward") + 1] == "deployment/mixerd"
    assert [int(a) for a in args if a.isdigit()] == [mixerd_settings.admin_port]
    assert mixerd_settings.admin_address == "127.0.0.1"
    ready = _monitoring(ready=True)
    for line in lines:
        if line.startswith("curl "):
            port, path = re.search(r"localhost:(\d+)(/\S*)", line).groups()  # type: ignore[union-attr]
            assert int(port) in forwarded and _get(ready, path)[0] == 200, line
        if line.startswith("mixerd check "):
            address = shlex.split(line)[shlex.split(line).index("-m") + 1]
            assert int(address.rpartition(":")[2]) in forwarded


def test_the_docs_mixerd_commands_parse() -> None:
    for line in _shell_lines():
        if line.startswith("mixerd "):
            cli.build_parser().parse_args(shlex.split(line)[1:])


def test_the_docs_check_config_recipe_validates_the_configmap(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The recipe's lines as written, in folders of the test's own, down to check-config's verdict."""
    [block] = [b for _, b in _blocks("sh") if "mixerd check-config" in b]
    *setup, check = [line.strip() for line in block.splitlines() if line.strip()]
    rules, secrets = tmp_path / "rules", tmp_path / "secrets"
    assert shlex.split(check) == ["mixerd", "check-config", "/tmp/mixerd-rules"]
    for line in setup:
        line = line.replace("/tmp/mixerd-rules", str(rules)).replace("/tmp/mixerd-secrets", str(secrets))
        assert "/tmp/mixerd-" not in line, line
        if line.startswith("python -c"):
            args = shlex.split(line)
            # The Secret's mount point is replaced by the stand-in's folder.
            assert args[-2:] == [_secret_mount()[0]["mountPath"] + "/", f"{secrets}/"]
            subprocess.run([sys.executable, *args[1:]], cwd=REPO, check=True, timeout=60)
        else:
            subprocess.run(["sh", "-c", line], cwd=REPO, check=True, timeout=60)
    assert sorted(p.name for p in rules.iterdir()) == sorted(_rules_data())
    assert check_config.run(cli.build_parser().parse_args(["check-config", str(rules)])) == 0
    assert capsys.readouterr().out.startswith("valid: ")


def test_the_docs_log_grep_matches_what_mixerd_logs() -> None:
    [line] = [line for line in _shell_lines() if "grep -E" in line]
    grep = _pipeline(line)[1]
    pattern = grep[grep.index("-E") + 1]
    source = (REPO / "mixer" / "runtime" / "controller.py").read_text()
    for alternative in pattern.split("|"):
        assert alternative in source, alternative


def test_the_docs_cluster_dns_names_are_services_with_those_ports() -> None:
    text = DOC.read_text()
    found = re.findall(
        r"([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local(?::(\d+)|, port_value: (\d+))?", text
    )
    assert found
    for name, namespace, port, port_value in found:
        [service] = [
            s
            for s in _all("Service")
            if (s["metadata"]["name"], s["metadata"]["namespace"]) == (name, namespace)
        ]
        if port or port_value:
            assert int(port or port_value) in {p["port"] for p in service["spec"]["ports"]}
    assert "mixerd-headless" in {name for name, *_ in found}  # the one a plain Envoy must use


def test_the_docs_numbers_are_the_deployment_s(mixerd_settings: Settings) -> None:
    text = " ".join(DOC.read_text().split())
    sleep = _container(MIXERD, "mixerd")["lifecycle"]["preStop"]["exec"]["command"][1]
    assert f"sleeps {sleep} s" in text
    assert f"`--shutdown-grace` ({mixerd_settings.shutdown_grace:g} s)" in text
    assert f"`terminationGracePeriodSeconds` ({_pod(MIXERD)['terminationGracePeriodSeconds']} s)" in text
    assert f"every {mixerd_settings.config_poll_interval:g} s (`--config-poll-interval`)" in text
    settle = inspect.signature(Runtime.watch).parameters["settle"].default
    assert f"the same for {settle:g} s" in text


def test_the_docs_metric_names_are_mixerd_s() -> None:
    source = "\n".join(
        p.read_text() for folder in ("mixer", "adapters") for p in (REPO / folder).rglob("*.py")
    )
    for name in set(re.findall(r"mixerd_[a-z_]+", DOC.read_text())):
        assert name.removesuffix("_total") in source, name


def test_the_readme_links_the_deploy_guide() -> None:
    assert "(docs/deploy.md)" in (REPO / "README.md").read_text()
