"""docs/config.md's resource examples, together, are a config that loads and behaves as the text says."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mixerd.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "config.md"


def resource_blocks() -> list[str]:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    # The outline under "Resources" (`spec: { ... }`) is a shape, not a resource.
    return [b for b in blocks if b.startswith("apiVersion:") and "{ ... }" not in b]


def check(capsys: pytest.CaptureFixture[str], address: str, user: str) -> dict[str, Any]:
    capsys.readouterr()
    assert (
        main(
            [
                "check",
                "-m",
                address,
                "--json",
                "--stringmap",
                f"request.headers=x-user:{user}",
                "-q",
                "requestcount=1",
            ]
        )
        == 0
    )
    return json.loads(capsys.readouterr().out)


def test_the_documented_resources_work_together(
    tmp_path: Path, start_mixer_server: Callable[..., Any], capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = resource_blocks()
    assert len(blocks) == 4  # handler, instance, rule (with its instance), attributemanifest
    (tmp_path / "doc.yaml").write_text("\n---\n".join(blocks))
    server = start_mixer_server(config=str(tmp_path))

    denied = check(capsys, server.address, "blocked")
    assert (denied["code"], denied["message"]) == (
        "PERMISSION_DENIED",
        "deny-blocked.handler.istio-system:this user is blocked",
    )
    assert denied["valid_duration"] == "10s" and denied["quotas"] == {}  # no quota after a denial

    allowed = check(capsys, server.address, "alice")
    assert allowed["code"] == "OK"
    assert allowed["route_directive"]["request_header_operations"] == [
        {"name": "x-checked-by", "value": "mixerd", "operation": "REPLACE"}
    ]
    # The quota instance exists but no rule routes it, so the quota is granted in full.
    assert allowed["quotas"]["requestcount"]["granted_amount"] == 1
