"""connectors.toml: every mistake reported at once, with key path and line; secrets never shown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cdp_core.config import ConfigError, load_config
from cdp_core.graph import parse_every
from cdp_core.plugins import load_plugins

SECRET = "s3cr3t-value-never-shown"

FIVE_MISTAKES = """
[connectors.crm]
type = "hubspott"

[connectors.files]
type = "csv"
streams.people = { path = "people.csv", batch_size = "lots" }

[connectors.out]
type = "jsonl_file"
path = "${OUT_PATH}"
colour = "blue"

[connectors.shop]
type = "jsonl"
streams.orders = { path = "${SHOP_TOKEN}", batch_size = -5 }

[syncs.nightly.nodes.people]
source = "files.people"

[syncs.nightly.nodes.a]
destination = "out"
inputs = ["people", "b"]

[syncs.nightly.nodes.b]
source = "files.people"
inputs = ["a"]
"""

CYCLE = """
[connectors.files]
type = "jsonl"
streams.people = { path = "people.jsonl" }

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.people]
source = "files.people"

[syncs.g.nodes.a]
transform = "noop"
inputs = ["people", "b"]

[syncs.g.nodes.b]
transform = "noop"
inputs = ["a"]

[syncs.g.nodes.out]
destination = "out"
inputs = ["b"]
"""


def _issues(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> dict[str, str]:
    path = tmp_path / "connectors.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False), env=env or {})
    rendered = str(info.value)
    for secret in (env or {}).values():
        assert secret not in rendered
    return {issue.path: issue.message for issue in info.value.issues}


def test_five_kinds_of_mistake_are_all_reported_with_their_key_paths(tmp_path: Path) -> None:
    issues = _issues(tmp_path, FIVE_MISTAKES, env={"OUT_PATH": SECRET, "SHOP_TOKEN": SECRET})
    assert "unknown plugin type 'hubspott'" in issues["connectors.crm.type"]
    assert "valid integer" in issues["connectors.files.streams.people.batch_size"]
    assert issues["connectors.out.colour"].startswith("unknown key")
    assert "greater than or equal to 1" in issues["connectors.shop.streams.orders.batch_size"]
    assert "source node takes no inputs" in issues["syncs.nightly.nodes.b.inputs"]


def test_missing_env_var_names_the_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text('[connectors.out]\ntype = "jsonl_file"\npath = "${NOT_SET_ANYWHERE}"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False), env={})
    (issue,) = info.value.issues
    assert (issue.path, issue.line) == ("connectors.out.path", 3)
    assert "NOT_SET_ANYWHERE is not set" in issue.message
    assert f"{path}:3: connectors.out.path:" in str(info.value)


def test_cycle_is_named_with_its_path(tmp_path: Path) -> None:
    from cdp_core import Register, Transform, hookimpl

    class Noop(Transform):
        def process(self, batch, ctx):  # type: ignore[no-untyped-def]
            return batch

    class Plugin:
        @hookimpl
        def cdp_register_transforms(self, register: Register) -> None:
            register("noop", Noop)

    path = tmp_path / "connectors.toml"
    path.write_text(CYCLE)
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False, extra=[("noop", Plugin())]), env={})
    messages = [i.message for i in info.value.issues]
    assert any(m in ("cycle: a -> b -> a", "cycle: b -> a -> b") for m in messages), messages


def test_unknown_input_and_connector_suggest_the_close_name(tmp_path: Path) -> None:
    text = CYCLE.replace('inputs = ["people", "b"]', 'inputs = ["peeple"]').replace('inputs = ["a"]', 'inputs = ["a"]')
    text = text.replace('destination = "out"', 'destination = "outt"')
    issues = _issues(tmp_path, text)
    assert "unknown node 'peeple' (did you mean 'people'?)" in issues["syncs.g.nodes.a.inputs[0]"]
    assert "unknown connector 'outt' (did you mean 'out'?)" in issues["syncs.g.nodes.out.destination"]


def test_graph_shape_rules(tmp_path: Path) -> None:
    text = """
[connectors.files]
type = "jsonl"
streams.people = { path = "p.jsonl" }
[connectors.out]
type = "jsonl_file"
path = "o.jsonl"
[syncs.g.nodes.people]
source = "files.nope"
[syncs.g.nodes.out]
destination = "out"
[syncs.g.nodes.both]
source = "files.people"
destination = "out"
[syncs.h]
every = "often"
timezone = "Mars/Olympus"
depends_on = ["g", "missing"]
[syncs.h.nodes.people]
source = "files.people"
[syncs.i]
schedule = "61 * * * *"
[syncs.i.nodes.people]
source = "files.people"
"""
    issues = _issues(tmp_path, text)
    assert "no stream 'nope'" in issues["syncs.g.nodes.people.source"]
    assert "needs at least one input" in issues["syncs.g.nodes.out.inputs"]
    assert "exactly one of" in issues["syncs.g.nodes.both"]
    assert "not an interval" in issues["syncs.h.every"]
    assert "unknown time zone" in issues["syncs.h.timezone"]
    assert "unknown sync graph 'missing'" in issues["syncs.h.depends_on[1]"]
    assert "cron" in issues["syncs.i.schedule"]


def test_unknown_top_level_table_is_an_error(tmp_path: Path) -> None:
    issues = _issues(tmp_path, '[stor]\nurl = "sqlite:///x.sqlite"\n\n[connectors.f]\ntype = "jsonl"\nstreams.p = { path = "p.jsonl" }\n')
    assert issues == {"stor": "unknown section [stor] (did you mean 'store'?); sections: alerts, connectors, store, syncs"}


def test_invalid_toml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text('[store]\nurl = "unterminated\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False), env={})
    assert info.value.issues[0].line == 2
    assert "not valid TOML" in info.value.issues[0].message


def test_secret_is_resolved_but_redacted(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text('[connectors.out]\ntype = "jsonl_file"\npath = "${OUT}/x.jsonl"\n')
    config = load_config(path, load_plugins(entry_points=False), env={"OUT": SECRET})
    assert config.connectors["out"].config.path == f"{SECRET}/x.jsonl"  # type: ignore[attr-defined]
    assert config.redact(f"failed to open {SECRET}/x.jsonl") == "failed to open ***/x.jsonl"


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("10m", 600), ("1h30m", 5400), ("1d", 86400), ("2h 5s", 7205)]
)
def test_parse_every(text: str, seconds: int) -> None:
    assert parse_every(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "10", "m", "5x", "0s", "10m junk"])
def test_parse_every_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_every(text)


def test_cdp_validate_exits_2_lists_all_and_prints_no_secret(tmp_path: Path) -> None:
    (tmp_path / "connectors.toml").write_text(FIVE_MISTAKES)
    env = {"PATH": "/usr/bin:/bin", "OUT_PATH": SECRET, "SHOP_TOKEN": SECRET, "CDP_DISABLE_PLUGINS": ""}
    result = subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", "validate", "-c", "connectors.toml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    output = result.stdout + result.stderr
    assert SECRET not in output
    for path in (
        "connectors.crm.type",
        "connectors.files.streams.people.batch_size",
        "connectors.out.colour",
        "connectors.shop.streams.orders.batch_size",
        "syncs.nightly.nodes.b.inputs",
    ):
        assert path in output
    assert "connectors.toml:3: connectors.crm.type" in output


def test_plugin_failing_half_way_through_registration_is_out_entirely() -> None:
    from cdp_core import Destination, Register, Source, hookimpl
    from cdp_core.plugins import load_plugins

    seen: list[str] = []

    class Src(Source):
        def streams(self):  # type: ignore[no-untyped-def]
            return []

    class Half:
        @hookimpl
        def cdp_register_sources(self, register: Register) -> None:
            register("half_source", Src)

        @hookimpl
        def cdp_register_destinations(self, register: Register) -> None:
            raise RuntimeError("bad destination module")

        @hookimpl
        def cdp_run_started(self, run):  # type: ignore[no-untyped-def]
            seen.append("started")

    plugins = load_plugins(entry_points=False, extra=[("half", Half())])
    assert plugins.info["half"].status == "broken"
    assert "bad destination module" in (plugins.info["half"].error or "")
    assert plugins.registry.get("source", "half_source") is None
    plugins.notify("cdp_run_started", run=None)
    assert seen == []
    assert Destination  # the builtins still registered theirs
    assert plugins.registry.get("destination", "jsonl_file") is not None


def test_second_plugin_with_a_taken_name_is_listed_as_broken() -> None:
    from cdp_core.plugins import load_plugins

    plugins = load_plugins(entry_points=False, extra=[("cdp.files", object())])
    broken = [p for p in plugins.info.values() if p.status == "broken"]
    assert len(broken) == 1 and "already taken" in (broken[0].error or "")
    assert plugins.info["cdp.files"].status == "ok"


def test_secret_in_node_options_never_shows_in_an_error(tmp_path: Path) -> None:
    text = """
[connectors.files]
type = "jsonl"
streams.people = { path = "p.jsonl" }
[connectors.out]
type = "jsonl_file"
path = "o.jsonl"
[syncs.g.nodes.people]
source = "files.people"
[syncs.g.nodes.clean]
transform = "hash"
inputs = ["people"]
options = { fields = ["email"], target = "${SALTY}" }
[syncs.g.nodes.out]
destination = "out"
inputs = ["clean"]
"""
    issues = _issues(tmp_path, text, env={"SALTY": SECRET})
    assert "syncs.g.nodes.clean.options.target" in issues
    assert SECRET not in issues["syncs.g.nodes.clean.options.target"]


VENDOR = """
[connectors.files]
type = "jsonl"
streams.people = { path = "p.jsonl" }
[connectors.out]
type = "jsonl_file"
path = "o.jsonl"
[connectors.vendor]
type = "jsonl_file"
path = "${VENDOR_TOKEN}"

[syncs.demo.nodes.people]
source = "files.people"
[syncs.demo.nodes.out]
destination = "out"
inputs = ["people"]

[syncs.live]
enabled = false
[syncs.live.nodes.people]
source = "files.people"
[syncs.live.nodes.vendor]
destination = "vendor"
inputs = ["people"]
"""


def test_running_a_graph_needs_only_its_own_secrets(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(VENDOR)
    plugins = load_plugins(entry_points=False)
    with pytest.raises(ConfigError) as info:  # cdp validate: everything is checked
        load_config(path, plugins, env={})
    assert [i.path for i in info.value.issues] == ["connectors.vendor.path"]
    config = load_config(path, plugins, env={}, graphs={"*enabled"})  # cdp sync --all
    assert config.enabled_graphs() == ["demo"]
    assert "vendor" not in config.connectors and "VENDOR_TOKEN" in config.unavailable["vendor"][0]
    with pytest.raises(ConfigError):  # cdp sync live: its own secret is missing
        load_config(path, plugins, env={}, graphs={"live"})
    config = load_config(path, plugins, env={"VENDOR_TOKEN": "x.jsonl"}, graphs={"live"})
    assert set(config.graphs) == {"demo", "live"} and not config.graphs["live"].config.enabled
    assert load_config(path, plugins, env={}, graphs=()).graphs.keys() == {"demo"}  # read commands


@pytest.mark.parametrize("schedule", ["0 9 * * 1-7", "0 9 * * 5-7", "30 6 1 * 0", "*/15 * * * *"])
def test_validate_accepts_every_cron_the_scheduler_runs(tmp_path: Path, schedule: str) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(
        f'[connectors.f]\ntype = "jsonl"\nstreams.s = {{ path = "p.jsonl" }}\n[connectors.o]\ntype = "jsonl_file"\n'
        f'path = "o.jsonl"\n[syncs.g]\nschedule = "{schedule}"\n[syncs.g.nodes.s]\nsource = "f.s"\n'
        '[syncs.g.nodes.o]\ndestination = "o"\ninputs = ["s"]\n'
    )
    assert load_config(path, load_plugins(entry_points=False), env={}).graphs["g"].config.schedule == schedule


@pytest.mark.parametrize("schedule", ["61 * * * *", "0 9 * * 8", "* * *", "0 25 * * *"])
def test_validate_refuses_what_cron_does_not_mean(tmp_path: Path, schedule: str) -> None:
    issues = _issues(
        tmp_path,
        f'[connectors.f]\ntype = "jsonl"\nstreams.s = {{ path = "p.jsonl" }}\n[connectors.o]\ntype = "jsonl_file"\n'
        f'path = "o.jsonl"\n[syncs.g]\nschedule = "{schedule}"\n[syncs.g.nodes.s]\nsource = "f.s"\n'
        '[syncs.g.nodes.o]\ndestination = "o"\ninputs = ["s"]\n',
    )
    assert "syncs.g.schedule" in issues


RELATIVE_STORE = """
[store]
url = "sqlite:///data/cdp.sqlite"

[connectors.files]
type = "jsonl"
streams.people = { path = "people.jsonl" }

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs.g.nodes.people]
source = "files.people"

[syncs.g.nodes.out]
destination = "out"
inputs = ["people"]
"""


def test_a_relative_store_url_resolves_against_the_folder_of_connectors_toml(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "conf", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (folder / "connectors.toml").write_text(RELATIVE_STORE)
    (folder / "people.jsonl").write_text('{"id": "1"}\n')
    result = subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", "sync", "g", "-c", "../conf/connectors.toml"],
        cwd=elsewhere,
        env={"PATH": "/usr/bin:/bin", "CDP_DISABLE_PLUGINS": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (folder / "data" / "cdp.sqlite").is_file()
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize(
    "url",
    ["sqlite:////tmp/cdp.sqlite", "sqlite://", "sqlite:///:memory:", "postgresql://cdp@db.example/cdp"],
)
def test_absolute_in_memory_and_server_store_urls_are_unchanged(tmp_path: Path, url: str) -> None:
    (tmp_path / "connectors.toml").write_text(f'[store]\nurl = "{url}"\n\n[connectors.f]\ntype = "jsonl"\nstreams.p = {{ path = "p.jsonl" }}\n')
    assert load_config(tmp_path / "connectors.toml", load_plugins(entry_points=False), env={}).store_url == url


UNSAFE_NAMES = """
[connectors."crm|x"]
type = "jsonl"
streams.people = { path = "people.jsonl" }

[connectors.files]
type = "jsonl"
streams."a|b" = { path = "people.jsonl" }

[connectors.out]
type = "jsonl_file"
path = "out.jsonl"

[syncs."night.ly".nodes.people]
source = "files.people"

[syncs.g.nodes."read|all"]
source = "files.a|b"

[syncs.g.nodes.people]
source = "files.a|b"

[syncs.g.nodes.out]
destination = "out"
inputs = ["people"]
"""


def test_connector_graph_node_and_stream_names_outside_the_safe_set_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(UNSAFE_NAMES)
    with pytest.raises(ConfigError) as info:
        load_config(path, load_plugins(entry_points=False), env={})
    rendered = str(info.value).splitlines()
    rule = "start with a letter, then up to 63 letters, digits, '_' or '-'"
    assert f"""{path}:2: connectors."crm|x": connector name 'crm|x' is not allowed: {rule}""" in rendered
    assert f"""{path}:14: syncs."night.ly": graph name 'night.ly' is not allowed: {rule}""" in rendered
    assert f"""{path}:17: syncs.g.nodes."read|all": node name 'read|all' is not allowed: {rule}""" in rendered
    assert (
        f"""{path}:21: syncs.g.nodes.people.source: connector 'files': stream name 'a|b' is not allowed: {rule}"""
        in rendered
    )
    assert len(rendered) == 4, rendered


def test_the_names_in_use_are_safe(tmp_path: Path) -> None:
    # Hyphens, underscores, digits and capitals after the first letter; 64 characters at most.
    long_name = "C" + "x" * 63
    (tmp_path / "people.jsonl").write_text("")
    text = f"""
[connectors.{long_name}]
type = "jsonl"
streams.New_people-2 = {{ path = "people.jsonl" }}

[connectors.out-1]
type = "jsonl_file"
path = "out.jsonl"

[syncs.Nightly_2-b.nodes.read-1]
source = "{long_name}.New_people-2"

[syncs.Nightly_2-b.nodes.out_1]
destination = "out-1"
inputs = ["read-1"]
"""
    (tmp_path / "connectors.toml").write_text(text)
    config = load_config(tmp_path / "connectors.toml", load_plugins(entry_points=False), env={})
    assert list(config.graphs["Nightly_2-b"].nodes) == ["read-1", "out_1"]
    assert _issues(tmp_path, text.replace(f"connectors.{long_name}]", f"connectors.{long_name}x]")) == {
        f"connectors.{long_name}x": f"connector name '{long_name}x' is not allowed: "
        "start with a letter, then up to 63 letters, digits, '_' or '-'",
        "syncs.Nightly_2-b.nodes.read-1.source": f"unknown connector '{long_name}' (did you mean '{long_name}x'?); "
        f"connectors: {long_name}x, out-1",
    }
