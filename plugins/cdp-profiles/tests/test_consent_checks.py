"""``cdp validate``: profile data leaves the store only toward a destination that serves a known purpose."""

from __future__ import annotations

from pathlib import Path

import pytest
from cdp_core.cli import build_app
from cdp_core.config import ConfigError, load_config
from cdp_core.plugins import Plugins
from cdp_core.testing import kit_plugin, load_test_plugins
from typer.testing import CliRunner


@pytest.fixture
def plugins() -> Plugins:
    return load_test_plugins(kit_plugin, "profiles")


def config_text(out_node: str, *, consent: str = "", source: str = "store.profiles_all") -> str:
    return f"""
[store]
url = "sqlite:///store.sqlite"
{consent}
[connectors.store]
type = "profile_store"

[connectors.src]
type = "list_source"
streams = {{ people = {{ records = [] }} }}

[connectors.file]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.people]
source = "{source}"

[syncs.g.nodes.keep]
transform = "filter"
inputs = ["people"]
options = {{ where = "true" }}

[syncs.g.nodes.out]
destination = "file"
inputs = ["keep"]
{out_node}
[syncs.load.nodes.people]
source = "src.people"

[syncs.load.nodes.store]
destination = "store"
inputs = ["people"]
"""


def problems(tmp_path: Path, plugins: Plugins, text: str) -> list[str]:
    path = tmp_path / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, plugins)
    except ConfigError as error:
        return [f"{issue.path}: {issue.message}" for issue in error.issues]
    return []


def test_profile_data_toward_a_destination_without_a_purpose_names_the_key_to_set(tmp_path: Path, plugins: Plugins) -> None:
    [problem] = problems(tmp_path, plugins, config_text(""))
    assert "syncs.g.nodes.out.purpose: sends profile data from the profile store to 'file' (type 'jsonl_file')" in problem
    assert "set syncs.g.nodes.out.purpose to one of: ads, analytics, crm, email, personalization" in problem


def test_cdp_validate_exits_2_on_it(tmp_path: Path, plugins: Plugins, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp_core.cli import common

    (tmp_path / "connectors.toml").write_text(config_text(""), encoding="utf-8")
    monkeypatch.setattr(common, "plugins", lambda: plugins)
    result = CliRunner().invoke(build_app(plugins), ["validate", "-c", str(tmp_path / "connectors.toml")])
    assert result.exit_code == 2, result.output
    assert "syncs.g.nodes.out.purpose" in result.output


def test_a_purpose_on_the_node_satisfies_it(tmp_path: Path, plugins: Plugins) -> None:
    assert problems(tmp_path, plugins, config_text('purpose = "analytics"\n')) == []


def test_an_unknown_purpose_gets_a_did_you_mean(tmp_path: Path, plugins: Plugins) -> None:
    [problem] = problems(tmp_path, plugins, config_text('purpose = "adz"\n'))
    assert "syncs.g.nodes.out.purpose: unknown purpose 'adz' (did you mean 'ads'?)" in problem


def test_purposes_configured_in_the_consent_section_are_known(tmp_path: Path, plugins: Plugins) -> None:
    consent = '\n[consent.purposes.partners]\npolicy = "opt_in"\ndescription = "data shared with partners"\n'
    assert problems(tmp_path, plugins, config_text('purpose = "partners"\n', consent=consent)) == []
    replaced = '\n[consent]\nreplace_defaults = true\n[consent.purposes.partners]\npolicy = "opt_in"\n'
    [problem] = problems(tmp_path, plugins, config_text('purpose = "ads"\n', consent=replaced))
    assert "unknown purpose 'ads'; purposes: partners" in problem


def test_a_bad_policy_is_a_config_error(tmp_path: Path, plugins: Plugins) -> None:
    consent = '\n[consent.purposes.ads]\npolicy = "opt_inn"\n'
    [problem] = problems(tmp_path, plugins, config_text('purpose = "ads"\n', consent=consent))
    assert "consent.purposes.ads.policy" in problem


def test_records_not_from_the_store_need_no_purpose_and_the_store_destination_never_does(
    tmp_path: Path, plugins: Plugins
) -> None:
    assert problems(tmp_path, plugins, config_text("", source="src.people")) == []


def test_a_destination_types_default_purpose_must_be_defined(tmp_path: Path, plugins: Plugins) -> None:
    import cdp_mailchimp

    with_mailchimp = load_test_plugins(kit_plugin, "profiles", cdp_mailchimp)
    text = config_text('purpose = "analytics"\n', consent="\n[consent]\nreplace_defaults = true\n[consent.purposes.analytics]\n")
    text += """
[connectors.mc]
type = "mailchimp"
api_key = "key-us21"
list_id = "abc"

[syncs.g.nodes.mc]
destination = "mc"
inputs = ["keep"]
options = { status_if_new = "transactional" }
"""
    [problem] = problems(tmp_path, with_mailchimp, text)
    assert "syncs.g.nodes.mc.destination: destination type 'mailchimp' serves purpose 'email' by default" in problem
    assert "set syncs.g.nodes.mc.purpose to one of: analytics, or add [consent.purposes.email]" in problem
