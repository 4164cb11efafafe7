"""The rule sets that ship with mixerd (the repository's rules/ folder, installed as `mixerd.rules`)."""

from __future__ import annotations

from pathlib import Path

#: The embedded default config `mixerd serve` runs when no --config is given.
DEFAULT_RULES = "default"


def rules_folder(name: str = DEFAULT_RULES) -> Path:
    """The folder of bundled rule set `name` (`default`, `examples`)."""
    here = Path(__file__).resolve().parent
    # Installed from a wheel: mixerd/rules/. A source checkout or editable install: rules/ beside mixer/.
    for base in (here / "rules", here.parent / "rules"):
        if (base / name).is_dir():
            return base / name
    raise FileNotFoundError(
        f"bundled rule set {name!r} not found in {here / 'rules'} or {here.parent / 'rules'}"
    )
