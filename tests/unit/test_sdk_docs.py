"""The adapter author's documentation stays true: docs/adapters.md documents every hook and every field of
the SDK's types, shows the example package's real files, and quotes real messages; docs/templates.md
documents every template and field, with examples that compile."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
import shutil
from pathlib import Path
from typing import Any

import mixerd_example_adapter
import pytest
import yaml

from mixerd import adapter as sdk
from mixerd import hookspecs
from mixerd.config import ConfigRejected, load_snapshot
from mixerd.plugins import ENTRY_POINT_GROUP, load_adapters
from mixerd.templates import TEMPLATES, Field

REPO = Path(__file__).resolve().parents[2]
ADAPTERS_MD = (REPO / "docs" / "adapters.md").read_text()
TEMPLATES_MD = (REPO / "docs" / "templates.md").read_text()
EXAMPLE = REPO / "rules" / "examples" / "strikes-adapter"

#: Example files the page need not show: the package's README.
NOT_SHOWN = {"README.md"}

_FILE_BLOCK = re.compile(r"^(`{3,})(\w+) file=(\S+)\n(.*?)^\1$", flags=re.M | re.S)


def _section(markdown: str, heading: str) -> str:
    """The text under `heading` (a whole heading line) up to the next heading of the same or a higher
    level."""
    lines = markdown.splitlines()
    assert heading in lines, f"no heading {heading!r}"
    start = lines.index(heading)
    level = len(heading) - len(heading.lstrip("#"))
    end = len(lines)
    for i in range(start + 1, len(lines)):
        hashes = len(lines[i]) - len(lines[i].lstrip("#"))
        if 0 < hashes <= level and lines[i][hashes : hashes + 1] == " ":
            end = i
            break
    return "\n".join(lines[start + 1 : end])


def _table(text: str) -> list[list[str]]:
    """The cells of the first markdown table in `text`, header and separator left out."""
    rows: list[list[str]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
        elif rows:
            break
    assert len(rows) >= 2 and set(rows[1][0]) <= {"-", ":"}, f"no table in {text[:80]!r}"
    return rows[2:]


def _names(rows: list[list[str]]) -> list[str]:
    """The first column's names, without backticks or a call's parentheses."""
    names = []
    for row in rows:
        match = re.fullmatch(r"`([\w.]+)(\(.*\))?`", row[0])
        assert match, f"first column should be a `name`: {row[0]!r}"
        names.append(match.group(1))
    return names


# -- docs/adapters.md: hooks and types ------------------------------------------------------------


def _hooks() -> list[str]:
    marker = f"{hookspecs.PROJECT}_spec"
    return [name for name, fn in vars(hookspecs).items() if callable(fn) and hasattr(fn, marker)]


def test_hooks_are_found() -> None:
    assert _hooks() == ["mixerd_adapter_info"]


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_documented(hook: str) -> None:
    assert f"### `{hook}`" in ADAPTERS_MD.splitlines(), f"docs/adapters.md has no section for hook {hook}"
    doc = inspect.getdoc(getattr(hookspecs, hook)) or ""
    assert len(doc) > 200, f"the docstring of {hook} is its manual; it is missing or too short"


def test_the_hook_manual_names_every_adapter_info_field() -> None:
    manual = inspect.getdoc(hookspecs.mixerd_adapter_info) or ""
    missing = [f for f in _fields(sdk.AdapterInfo) if not re.search(rf"^- `{f}[`(]", manual, flags=re.M)]
    assert missing == [], "mixerd/hookspecs.py: the hook's docstring does not describe these fields"


def _fields(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@pytest.mark.parametrize(
    "cls",
    [
        sdk.AdapterInfo,
        sdk.InstanceInfo,
        sdk.CheckResult,
        sdk.DirectResponse,
        sdk.QuotaArgs,
        sdk.QuotaResult,
        sdk.RateLimitCall,
        sdk.RateLimit,
        sdk.RateLimitResult,
    ],
)
def test_every_field_of_the_sdk_types_is_documented(cls: type) -> None:
    rows = _table(_section(ADAPTERS_MD, f"### `{cls.__name__}`"))
    assert _names(rows) == _fields(cls)
    assert all(row[-1] for row in rows), "every field needs a meaning"


def test_every_member_of_env_is_documented() -> None:
    env = sdk.Env(handler="h", adapter="a", params=None, instances={})
    attributes = [name for name in vars(env) if not name.startswith("_")]
    methods = [
        name for name, _ in inspect.getmembers(sdk.Env, inspect.isfunction) if not name.startswith("_")
    ]
    rows = _table(_section(ADAPTERS_MD, "### `Env`"))
    assert sorted(_names(rows)) == sorted(attributes + methods)


def test_every_variety_is_in_the_handler_table() -> None:
    rows = _table(_section(ADAPTERS_MD, "## 5. The handler"))
    used = {t.variety.name for t in TEMPLATES.values()}
    assert used <= {row[0] for row in rows}


def test_the_entry_point_group_is_the_real_one() -> None:
    assert f'[project.entry-points."{ENTRY_POINT_GROUP}"]' in ADAPTERS_MD
    assert f"`{ENTRY_POINT_GROUP}`" in ADAPTERS_MD


# -- docs/adapters.md: the example package ----------------------------------------------------------


def _file_blocks() -> dict[str, str]:
    """Path -> the text of the block that claims to be that file (```lang file=<path>)."""
    blocks: dict[str, str] = {}
    for _, _lang, path, body in _FILE_BLOCK.findall(ADAPTERS_MD):
        assert path not in blocks, f"docs/adapters.md shows {path} twice"
        blocks[path] = body
    return blocks


def test_file_blocks_are_found() -> None:
    assert len(_file_blocks()) >= 6


@pytest.mark.parametrize("path", sorted(_file_blocks()))
def test_each_file_block_is_the_file(path: str) -> None:
    body = _file_blocks()[path]
    file = REPO / path
    assert file.is_file(), f"docs/adapters.md shows {path}, which does not exist"
    assert body == file.read_text(), f"docs/adapters.md shows an old {path}: paste the file again"


def test_every_file_of_the_example_is_shown() -> None:
    shown = set(_file_blocks())
    files = {
        str(p.relative_to(REPO))
        for p in EXAMPLE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts
    }
    expected = {f for f in files if Path(f).name not in NOT_SHOWN}
    assert expected - shown == set(), "files of the example that docs/adapters.md does not show"


def _dotted_names() -> list[str]:
    found = re.findall(r"`(mixerd(?:\.\w+)+)`", ADAPTERS_MD + TEMPLATES_MD)
    return sorted(set(found) - {ENTRY_POINT_GROUP})


@pytest.mark.parametrize("name", _dotted_names())
def test_every_mixerd_name_in_the_docs_exists(name: str) -> None:
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[i:]:
            assert hasattr(obj, attribute), f"{name}: {obj!r} has no {attribute}"
            obj = getattr(obj, attribute)
        return
    pytest.fail(f"{name} does not exist")


def _example_adapters() -> dict[str, Any]:
    """The installed adapters plus the example's, imported from its source folder (pyproject's pythonpath)."""
    return {**load_adapters(), "strikes": mixerd_example_adapter.mixerd_adapter_info()}


def test_the_quoted_validate_problem_is_what_mixerd_reports(tmp_path: Path) -> None:
    (quoted,) = re.findall(r"^`(strikes\.yaml: handler [^`]*)`\.$", ADAPTERS_MD, flags=re.M)
    config = (EXAMPLE / "config" / "strikes.yaml").read_text()
    assert '      offender: source.principal | "unknown"\n' in config
    (tmp_path / "strikes.yaml").write_text(config.replace("      offender: ", "      who: "))
    with pytest.raises(ConfigRejected) as e:
        load_snapshot(tmp_path, _example_adapters())
    assert [str(error) for error in e.value.errors] == [quoted]


def test_the_quoted_start_up_error_is_what_mixerd_reports(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLE / "config", tmp_path / "config")
    block = re.search(r"^```\n(mixerd serve: error: config/: .*?)^```$", ADAPTERS_MD, flags=re.M | re.S)
    assert block is not None
    with pytest.raises(ConfigRejected) as e:
        load_snapshot(tmp_path / "config", load_adapters())
    assert block.group(1) == f"mixerd serve: error: config/: {e.value}\n"


# -- docs/templates.md ----------------------------------------------------------------------------


def test_every_template_has_a_section_and_no_other() -> None:
    sections = re.findall(r"^## `(\w+)`$", TEMPLATES_MD, flags=re.M)
    assert sorted(sections) == sorted(TEMPLATES)


def _rows(fields: tuple[Field, ...]) -> list[tuple[str, str]]:
    rows = []
    for f in fields:
        rows.append((f.name, f.describe()))
        if f.message is not None:
            rows.extend((f"{f.name}.{sub.name}", sub.describe()) for sub in f.message.fields)
    return rows


def _documented_rows(text: str) -> list[tuple[str, str]]:
    rows = _table(text)
    for row in rows:
        assert len(row) == 4 and row[2] and row[3], f"each field needs a Python value and a meaning: {row}"
    return [(name, row[1].strip("`")) for name, row in zip(_names(rows), rows, strict=True)]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_template_is_documented(name: str) -> None:
    template = TEMPLATES[name]
    section = _section(TEMPLATES_MD, f"## `{name}`")
    assert f"**Variety:** `{template.variety.name}`" in section
    cls = template.instance.__name__
    assert f"**Instance class:** `mixerd.templates.{cls}`" in section
    assert importlib.import_module("mixerd.templates").__dict__[cls] is template.instance
    assert f"**Handler method:** `{template.method}(" in section
    inputs, _, outputs = section.partition("### Output fields")
    if template.fields:
        assert _documented_rows(inputs) == _rows(template.fields)
    else:
        assert "| field |" not in inputs
    if template.output:
        assert _documented_rows(outputs) == _rows(template.output)
    else:
        assert not outputs


def _examples() -> dict[str, dict[str, Any]]:
    examples: dict[str, dict[str, Any]] = {}
    for name in TEMPLATES:
        blocks = re.findall(
            r"^```yaml\n(.*?)^```$", _section(TEMPLATES_MD, f"## `{name}`"), flags=re.M | re.S
        )
        assert len(blocks) == 1, f"template {name}: expected one YAML example"
        examples[name] = yaml.safe_load(blocks[0])
    return examples


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_each_example_is_an_instance_of_its_template_setting_every_field(name: str) -> None:
    doc = _examples()[name]
    assert doc["kind"] == "instance"
    assert doc["spec"]["compiledTemplate"] == name
    given = set(doc["spec"].get("params") or {})
    for f in TEMPLATES[name].fields:
        assert given & set(f.names), f"template {name}: the example leaves out {f.name}"


def test_the_template_examples_compile(tmp_path: Path) -> None:
    for name, doc in _examples().items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    snapshot = load_snapshot(tmp_path, load_adapters())
    assert len(snapshot.instances) == len(TEMPLATES)
