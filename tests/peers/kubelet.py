"""What the kubelet does with a pod's ConfigMaps and Secrets, for tests of what mixerd is given in a pod.

Volumes: the files live in a hidden timestamped folder (`..<stamp>/`), a `..data` symlink points at it,
and each file shows at the top as a symlink through `..data`. An update writes a new folder and swaps
`..data` onto it in one rename, so a reader never sees half a version. ConfigMap and Secret volumes are
laid out alike (the kubelet writes both with the same atomic writer).

Containers: environment variables from a Secret's keys, and `$(VAR)` in a container's command and
args replaced by the variable's value when the container starts.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_configmap(root: Path, stamp: str, files: Mapping[str, str]) -> Path:
    """Mount (or update to) the version `stamp` of `files` in `root`, as the kubelet does; returns `root`."""
    root.mkdir(parents=True, exist_ok=True)
    real = root / f"..{stamp}"
    real.mkdir()
    for name, text in files.items():
        (real / name).write_text(text)
    tmp = root / "..data_tmp"
    tmp.symlink_to(real.name)
    os.replace(tmp, root / "..data")  # atomic swap
    for name in files:
        link = root / name
        if not link.is_symlink():
            link.symlink_to(Path("..data") / name)
    return root


def write_secret(root: Path, stamp: str, files: Mapping[str, str]) -> Path:
    """Mount (or update to, as a rotation does) the version `stamp` of a Secret volume's `files`."""
    return write_configmap(root, stamp, files)


def volume_files(source: Mapping[str, Any], data: Mapping[str, str]) -> dict[str, str]:
    """The files a `configMap` or `secret` volume source shows for its object's `data`: every key as a
    file of that name or, when the source lists `items`, only those keys, each at its `path`."""
    items = source.get("items")
    if items is None:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items}


def container_env(container: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The environment the kubelet starts `container` with: each variable's `value`, or the key of the
    Secret it names in `secrets` (Secret name -> its data, as the API holds it at that start)."""
    env = {}
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
    return env


_VARIABLE = re.compile(r"\$\$|\$\(([^)]*)\)")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion of a command or args item: `$(VAR)` is VAR's value when VAR is in `env` and
    stays as written otherwise; `$$` is a literal `$`."""

    def value(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return env.get(match[1], match[0])

    return _VARIABLE.sub(value, text)


def relocate_mount(files: Mapping[str, str], mount_path: str, folder: Path) -> dict[str, str]:
    """Config `files` with every `${file:...}` reference under `mount_path` (where the pod mounts a
    volume, say /etc/mixerd/secrets) pointed into `folder` instead, where the test mounted that volume:
    tests cannot write to /etc. ValueError when nothing refers to `mount_path`."""
    prefix = "${file:" + mount_path.rstrip("/") + "/"
    if not any(prefix in text for text in files.values()):
        raise ValueError(f"no ${{file:...}} reference under {mount_path}")
    return {name: text.replace(prefix, "${file:" + str(folder) + "/") for name, text in files.items()}
