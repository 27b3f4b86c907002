"""Checks that see the whole config (``cdp_validate_config``), secret-typed options, the redactor's forms, base URLs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from cdp_core import PluginConfig, Register, hookimpl
from cdp_core.config import ConfigError, load_config
from cdp_core.http import check_base_url
from cdp_core.secrets import REDACTED, Redactor, cut

pytest_plugins = ["cdp_core.testing"]

FILES = '[connectors.people]\ntype = "jsonl"\nstreams.contacts = { path = "p.jsonl" }\n'


class MirrorSettings(PluginConfig):
    mirror_of: list[str] = []
    token: SecretStr | None = None


class Mirror:
    """A section naming connectors; its check against the rest of the file is its own."""

    @hookimpl
    def cdp_register_config_sections(self, register: Register) -> None:
        register("mirror", MirrorSettings)

    @hookimpl
    def cdp_validate_config(self, config: Any, report: Any) -> None:
        section = config.sections["mirror"]
        for index, name in enumerate(section.mirror_of):
            if name not in config.connectors and name not in config.broken_connectors:
                report(("mirror", "mirror_of", index), f"unknown connector {name!r}")


class Crashing:
    @hookimpl
    def cdp_validate_config(self, config: Any, report: Any) -> None:
        raise RuntimeError("a bug in the check")


def test_a_plugin_checks_its_section_against_the_whole_config(register_plugin: Any, tmp_path: Path) -> None:
    plugins = register_plugin(Mirror(), name="mirror")
    path = tmp_path / "c.toml"
    path.write_text(FILES + '\n[mirror]\nmirror_of = ["people", "peeple"]\n\n[connectors.bad]\ntype = "nope"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins, env={})
    rendered = [issue.render("c.toml") for issue in caught.value.issues]
    # Its problem and the kernel's, at once; "bad" is broken, not unknown: no second report about it.
    assert "c.toml:6: mirror.mirror_of[1]: unknown connector 'peeple'" in rendered, rendered
    assert any("connectors.bad.type: unknown plugin type 'nope'" in r for r in rendered), rendered
    path.write_text(FILES + '\n[mirror]\nmirror_of = ["people", "bad"]\n\n[connectors.bad]\ntype = "nope"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins, env={})
    assert not any("mirror" in i.path for i in caught.value.issues)


def test_a_check_that_raises_is_a_problem_of_its_plugin(register_plugin: Any, tmp_path: Path) -> None:
    plugins = register_plugin(Crashing(), name="crashing")
    path = tmp_path / "c.toml"
    path.write_text(FILES)
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins, env={})
    [issue] = caught.value.issues
    assert "plugin 'crashing' failed to check the config: RuntimeError: a bug in the check" in issue.message


def test_secret_typed_options_are_redacted_and_a_literal_one_is_warned_about(register_plugin: Any, tmp_path: Path) -> None:
    plugins = register_plugin(Mirror(), name="mirror")
    path = tmp_path / "c.toml"
    path.write_text(FILES + '\n[mirror]\ntoken = "literal-token-123"\n')
    config = load_config(path, plugins, env={})
    assert config.redact("x literal-token-123 y") == f"x {REDACTED} y"
    assert [w.render("c.toml") for w in config.warnings] == [
        'c.toml:6: mirror.token: a secret written into the file: set it from the environment instead, e.g. "${TOKEN}"'
    ]
    path.write_text(FILES + '\n[mirror]\ntoken = "${MIRROR_TOKEN}"\n')
    config = load_config(path, plugins, env={"MIRROR_TOKEN": "from-env-456"})
    assert config.warnings == [] and config.redact("from-env-456") == REDACTED


SECRET = 'a"b\\c d/e&f=gü-1234'


@pytest.mark.parametrize(
    "form",
    [SECRET, repr(SECRET)[1:-1], json.dumps(SECRET)[1:-1], quote(SECRET, safe=""), json.dumps(quote(SECRET))[1:-1],
     SECRET.encode("unicode_escape").decode()],
    ids=["plain", "repr", "json", "url", "json-of-url", "unicode-escape"],
)  # fmt: skip
def test_the_redactor_knows_a_secret_in_every_form(form: str) -> None:
    redact = Redactor()
    redact.add(SECRET)
    assert redact(f"before {form} after") == f"before {REDACTED} after"


@pytest.mark.parametrize("length", range(4, len(SECRET)))
def test_a_secret_cut_at_any_length_is_redacted(length: int) -> None:
    redact = Redactor()
    redact.add(SECRET)
    assert redact(f"error: {SECRET[:length]}") == f"error: {REDACTED}"
    assert redact(f"error: {SECRET[:length]}... and more") == f"error: {REDACTED}... and more"
    assert redact(f"...{SECRET[-length:]} rest") == f"...{REDACTED} rest"
    # Redaction before the cut: the whole secret goes, whatever the limit.
    text = cut("x" * 10 + SECRET + "y" * 100, 10 + length, redact)
    assert SECRET[:4] not in text


@pytest.mark.parametrize(
    ("url", "ok"),
    [("https://api.example/v1/", True), ("http://127.0.0.1:8080", True), ("http://localhost", True),
     ("http://[::1]:9", True), ("http://10.0.0.1", False), ("http://api.example", False),
     ("https://user:pw@api.example", False), ("https://api.example/?key=1", False), ("gopher://x", False)],
)  # fmt: skip
def test_base_urls_are_https_or_loopback_http(url: str, ok: bool) -> None:
    if ok:
        assert check_base_url(url) == url.rstrip("/")
    else:
        with pytest.raises(ValueError):
            check_base_url(url)
