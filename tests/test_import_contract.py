"""The import check (make importcheck) forbids the kernel every plugin package in plugins/."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _plugin_packages() -> set[str]:
    """The top-level packages of plugins/*: each ``cdp_*`` folder there holding an ``__init__.py``."""
    return {init.parent.name for init in ROOT.glob("plugins/*/cdp_*/__init__.py")}


def _forbidden() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["type"] == "forbidden" and c["source_modules"] == ["cdp_core"]]
    return set(contract["forbidden_modules"])


def test_there_are_plugin_packages() -> None:
    assert {"cdp_profiles", "cdp_hubspot"} <= _plugin_packages()


def test_the_contract_forbids_every_plugin_package_and_nothing_else() -> None:
    # A new plugin folder must join the contract, or the kernel could import it unnoticed.
    assert _forbidden() == _plugin_packages()
