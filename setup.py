"""Package list for setuptools: the folders mixer/ and adapters/ install as mixerd and mixerd_adapters.

pyproject.toml's package-dir maps the two roots; this file only renames the subpackages it finds,
which pyproject.toml alone cannot express.
"""

from setuptools import find_packages, setup

_ROOTS = {"mixer": "mixerd", "adapters": "mixerd_adapters"}


def _installed_name(folder_package: str) -> str:
    root, _, rest = folder_package.partition(".")
    return _ROOTS[root] + ("." + rest if rest else "")


setup(
    packages=[
        *(_installed_name(p) for p in find_packages(include=["mixer", "mixer.*", "adapters", "adapters.*"])),
        # rules/ holds the embedded default config (and examples) that `mixerd serve` runs without
        # --config; it ships as data inside the package. Each rule set is listed too: setuptools treats
        # a folder of data under a package as a package of its own, and warns when it is not listed.
        "mixerd.rules",
        # pyproject.toml's package-data names the same three.
        "mixerd.rules.default",
        "mixerd.rules.istio",
        "mixerd.rules.examples",
    ],
)
