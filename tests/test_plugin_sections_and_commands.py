"""What plugins add besides sources, transforms and destinations: config sections and ``cdp`` commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cdp_core import PluginConfig, Register, hookimpl
from cdp_core.plugins import load_plugins

# -- config sections and commands from plugins ---------------------------------------------------------


class AcmeSettings(PluginConfig):
    region: str = "eu"
    retries: int = 3


class SectionAndCommands:
    @hookimpl
    def cdp_register_config_sections(self, register: Register) -> None:
        register("acme", AcmeSettings)

    @hookimpl
    def cdp_register_commands(self, register: Register) -> None:
        import typer

        group = typer.Typer(help="Acme tools.")

        @group.command("region")
        def region(config: Path = typer.Option(Path("connectors.toml"), "-c")) -> None:
            from cdp_core.cli import common

            cfg, _ = common.load(config, load_plugins(entry_points=False, extra=[("acme", SectionAndCommands())]))
            print(f"region={cfg.sections['acme'].region}")  # type: ignore[attr-defined]

        register("acme", group)

        def hello() -> None:
            print("hello from acme")

        register("acme-hello", hello)


ONE_CONNECTOR = '\n[connectors.f]\ntype = "jsonl"\nstreams.people = { path = "people.jsonl" }\n'
"""A config that is not empty (an empty one is a problem of its own)."""


def test_a_plugin_section_is_validated_by_its_model_with_file_and_line(register_plugin: Any, tmp_path: Path) -> None:
    from cdp_core.config import ConfigError, load_config

    plugins = register_plugin(SectionAndCommands(), name="acme")
    assert plugins.info["acme"].registered["config sections"] == ["acme"]
    good = tmp_path / "good.toml"
    good.write_text('[acme]\nregion = "us"\n' + ONE_CONNECTOR)
    assert load_config(good, plugins, env={}).sections["acme"] == AcmeSettings(region="us")
    absent = tmp_path / "absent.toml"
    absent.write_text(ONE_CONNECTOR)
    assert load_config(absent, plugins, env={}).sections["acme"] == AcmeSettings()

    bad = tmp_path / "bad.toml"
    bad.write_text('[store]\nurl = "sqlite:///x.sqlite"\n\n[acme]\nregion = "us"\nretries = "many"\nregoin = "eu"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(bad, plugins, env={})
    rendered = [issue.render("bad.toml") for issue in caught.value.issues]
    assert any(r.startswith("bad.toml:6: acme.retries: ") for r in rendered), rendered
    assert any(r.startswith("bad.toml:7: acme.regoin: ") for r in rendered), rendered


def test_a_section_no_plugin_registered_names_the_known_ones(register_plugin: Any, tmp_path: Path) -> None:
    from cdp_core.config import ConfigError, load_config

    plugins = register_plugin(SectionAndCommands(), name="acme")
    path = tmp_path / "c.toml"
    path.write_text("[acmee]\nregion = 1\n" + ONE_CONNECTOR)
    with pytest.raises(ConfigError) as caught:
        load_config(path, plugins, env={})
    [issue] = caught.value.issues
    assert issue.render("c.toml") == (
        "c.toml:1: acmee: unknown section [acmee] (did you mean 'acme'?); sections: acme, alerts, connectors, store, syncs"
    )


def test_a_section_may_not_take_a_kernel_name(register_plugin: Any) -> None:
    class Taker:
        @hookimpl
        def cdp_register_config_sections(self, register: Register) -> None:
            register("store", AcmeSettings)

    plugins = register_plugin(Taker(), name="taker")
    assert plugins.info["taker"].status == "broken"
    assert "config section 'store' is the kernel's own" in (plugins.info["taker"].error or "")


def test_plugin_commands_are_added_to_cdp(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cdp_core.cli import build_app

    plugins = load_plugins(entry_points=False, extra=[("acme", SectionAndCommands())])
    assert plugins.info["acme"].registered["commands"] == ["acme", "acme-hello"]
    app = build_app(plugins)
    (tmp_path / "connectors.toml").write_text('[acme]\nregion = "us"\n' + ONE_CONNECTOR)
    result = CliRunner().invoke(app, ["acme", "region", "-c", str(tmp_path / "connectors.toml")])
    assert result.exit_code == 0, result.output
    assert "region=us" in result.output
    result = CliRunner().invoke(app, ["acme-hello"])
    assert (result.exit_code, result.output.strip()) == (0, "hello from acme")
    # the kernel's app itself is left as it was: a second manager gets a clean slate
    assert "acme" not in {g.name for g in build_app(load_plugins(entry_points=False)).registered_groups}


def test_a_plugin_command_may_not_take_a_kernel_name() -> None:
    from cdp_core.cli import build_app

    class Taker:
        @hookimpl
        def cdp_register_commands(self, register: Register) -> None:
            register("sync", lambda: None)

    plugins = load_plugins(entry_points=False, extra=[("taker", Taker())])
    build_app(plugins)
    assert plugins.info["taker"].status == "broken"
    assert "command 'sync' is the kernel's own" in (plugins.info["taker"].error or "")


# -- a source whose streams a section defines ------------------------------------------------------


class ListsSettings(PluginConfig):
    lists: list[str] = []


class SectionStreams:
    """A source offering one stream per name in its plugin's ``[lists]`` section (as the profile store offers segments)."""

    @hookimpl
    def cdp_register_config_sections(self, register: Register) -> None:
        register("lists", ListsSettings)

    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        from collections.abc import Iterator, Sequence

        from cdp_core.base import Page, Source, Stream

        class ListStream(Stream):
            def __init__(self, name: str) -> None:
                self.name = name

            def read(self, cursor: Any) -> Iterator[Page]:
                yield Page([], None)

        class ListsSource(Source):
            config_model = PluginConfig

            def streams(self) -> Sequence[Stream]:
                lists = self.context.sections.get("lists")
                return [ListStream(f"list_{n}") for n in getattr(lists, "lists", [])]

        register("lists", ListsSource)


def test_a_source_lists_streams_from_the_sections_when_graphs_are_validated(register_plugin: Any, tmp_path: Path) -> None:
    from cdp_core.config import ConfigError, load_config

    plugins = register_plugin(SectionStreams(), name="lists")
    graph = (
        '[connectors.src]\ntype = "lists"\n[connectors.out]\ntype = "jsonl_file"\npath = "out.jsonl"\n'
        '[syncs.g.nodes.a]\nsource = "src.list_{name}"\n[syncs.g.nodes.b]\ndestination = "out"\ninputs = ["a"]\n'
    )
    good = tmp_path / "good.toml"
    good.write_text('[lists]\nlists = ["vip"]\n' + graph.format(name="vip"))
    assert "g" in load_config(good, plugins, env={}).graphs
    bad = tmp_path / "bad.toml"
    bad.write_text('[lists]\nlists = ["vip"]\n' + graph.format(name="vips"))
    with pytest.raises(ConfigError) as caught:
        load_config(bad, plugins, env={})
    assert any(
        "connector 'src' has no stream 'list_vips' (did you mean 'list_vip'?)" in issue.message for issue in caught.value.issues
    ), [issue.message for issue in caught.value.issues]
