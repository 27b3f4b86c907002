"""The repository's connectors.toml: the offline demo plus every vendor plugin, valid as shipped.

Needs the plugins under plugins/ installed (``make test`` installs them all).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cdp_core.config import ConfigError, load_config
from cdp_core.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent / "connectors.toml"
PLUGINS = {"hubspot", "mailchimp", "typeform", "shopify", "meta_leads", "meta_audiences", "google_ads"}


def _variables() -> set[str]:
    return set(re.findall(r"\$\{([A-Z0-9_]+)\}", ROOT.read_text()))


def test_root_config_is_valid_with_dummy_secrets() -> None:
    variables = _variables()
    assert variables, "the vendor connectors take their secrets from ${ENV}"
    # Values of the shape each plugin checks (a Mailchimp key ends in its data center, ids are numeric).
    dummy = {name: "dummy-us21" if name == "MAILCHIMP_API_KEY" else "123-456-7890" if name.endswith("CUSTOMER_ID") else "123456" for name in variables}
    config = load_config(ROOT, load_plugins(), env=dummy)
    assert PLUGINS <= {c.type for c in config.connectors.values()}
    assert sorted(config.enabled_graphs()) == ["ads_export", "demo"]  # only the offline demo runs on `cdp sync --all`


def test_root_config_runs_the_demo_without_any_vendor_secret() -> None:
    config = load_config(ROOT, load_plugins(), env={}, graphs={"*enabled"})
    assert sorted(config.enabled_graphs()) == ["ads_export", "demo"]
    assert {c.type for c in config.connectors.values()}.isdisjoint(PLUGINS)

    # `cdp validate` without the variables: each unset one is a problem, and no secret taken
    # from the environment is called "a secret written into the file".
    with pytest.raises(ConfigError) as caught:
        load_config(ROOT, load_plugins(), env={})
    assert all("is not set" in issue.message for issue in caught.value.issues)
    assert caught.value.warnings == [], [w.render("connectors.toml") for w in caught.value.warnings]
    assert set(config.unavailable) == {
        "hubspot", "mailchimp", "typeform", "shopify", "meta", "meta_promoters", "google_promoters"
    }
