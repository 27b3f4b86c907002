"""The plugin manager with real installed distributions, broken and conflicting plugins, and observers.

Distributions are built from pyproject.toml files in a temporary folder and
installed with pip into a target folder; a subprocess with that folder on
PYTHONPATH then discovers them through the ``cdp`` entry-point group, exactly as
``cdp`` does for a pip-installed plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

pytest.register_assert_rewrite("cdp_core.testing")

from cdp_core import Page, PluginConfig, Record, Register, Source, Stream, hookimpl
from cdp_core.plugins import load_plugins
from cdp_core.records import Rejected
from cdp_core.runinfo import RunInfo, RunStatus
from cdp_core.testing import Collector, kit_plugin, run_graph, to_toml

pytest_plugins = ["cdp_core.testing"]

# -- building and installing throwaway distributions ----------------------------------------------

# setuptools' bdist_wheel needs the `wheel` package, which the venv may lack; this
# in-tree PEP 517 backend writes a standard wheel with the stdlib only.
BACKEND = '''
"""A minimal PEP 517 backend: a pure-Python wheel of the modules in [tool.tinybuild]."""
import base64, hashlib, pathlib, re, tomllib, zipfile


def _record_line(path, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{path},sha256={digest},{len(data)}"


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    data = tomllib.loads(pathlib.Path("pyproject.toml").read_text())
    project = data["project"]
    name, version = project["name"], project["version"]
    stem = re.sub(r"[-_.]+", "_", name).lower()
    info = f"{stem}-{version}.dist-info"
    files = {f"{m}.py": pathlib.Path(f"{m}.py").read_bytes() for m in data["tool"]["tinybuild"]["modules"]}
    files[f"{info}/METADATA"] = f"Metadata-Version: 2.1\\nName: {name}\\nVersion: {version}\\n".encode()
    files[f"{info}/WHEEL"] = b"Wheel-Version: 1.0\\nGenerator: tinybuild\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"
    groups = project.get("entry-points", {})
    files[f"{info}/entry_points.txt"] = "".join(
        f"[{group}]\\n" + "".join(f"{k} = {v}\\n" for k, v in entries.items()) + "\\n" for group, entries in groups.items()
    ).encode()
    record = [_record_line(p, d) for p, d in files.items()] + [f"{info}/RECORD,,"]
    wheel = f"{stem}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / wheel, "w") as archive:
        for path, content in files.items():
            archive.writestr(path, content)
        archive.writestr(f"{info}/RECORD", "\\n".join(record) + "\\n")
    return wheel
'''

ACME = '''
"""acme: a source type "acme" with one stream "people" of `count` records."""
from cdp_core import Page, PluginConfig, Record, Register, Source, Stream, hookimpl


class AcmeConfig(PluginConfig):
    count: int = 3


class People(Stream):
    name = "people"
    cursor_field = "n"

    def __init__(self, source):
        self.source = source

    def read(self, cursor):
        start, count = cursor or 0, self.source.config.count
        records = [Record(stream=f"{self.source.context.name}.people", key=f"acme-{n}", data={"n": n}) for n in range(start, count)]
        yield Page(records, cursor=count)


class AcmeSource(Source):
    config_model = AcmeConfig

    def streams(self):
        return [People(self)]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register("acme", AcmeSource)
'''

OTHER = '''
"""other: a destination "other_sink" appending record keys to a text file."""
from cdp_core import Destination, PluginConfig, Register, hookimpl


class SinkConfig(PluginConfig):
    path: str


class Sink(Destination):
    config_model = SinkConfig

    def write(self, batch, checkpoint=None):
        with self.context.resolve(self.config.path).open("a") as handle:
            handle.writelines(r.key + "\\n" for r in batch)


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    register("other_sink", Sink)
'''

BROKEN = """
raise RuntimeError("acme backend library missing")
"""

BADREG = """
from cdp_core import Register, hookimpl


@hookimpl
def cdp_register_sources(register: Register) -> None:
    raise ValueError("cannot register: missing licence key")
"""

RIVAL = ACME.replace('"""acme:', '"""rival: also claims').replace("AcmeSource", "RivalSource")

DISTRIBUTIONS = {
    # folder: (distribution, version, module, entry-point name, code, site)
    "acme": ("acme-cdp", "1.2.3", "acme_cdp", "acme", ACME, "site"),
    "other": ("other-cdp", "2.0.0", "other_cdp", "other", OTHER, "site"),
    "broken": ("broken-cdp", "0.1.0", "broken_cdp", "broken", BROKEN, "site"),
    "badreg": ("badreg-cdp", "0.3.0", "badreg_cdp", "badreg", BADREG, "site"),
    "rival": ("rival-cdp", "0.9.0", "rival_cdp", "rival", RIVAL, "site-rival"),
}

PROBE = '''
"""Load plugins as `cdp` does; print what they are, and optionally run a config's graph "main"."""
import json, sys
from cdp_core.config import ConfigError, load_config
from cdp_core.plugins import load_plugins
from cdp_core.runner import Runner

plugins = load_plugins()
out = {
    "plugins": {name: info.to_dict() for name, info in plugins.info.items()},
    "sources": plugins.registry.names("source"),
    "destinations": plugins.registry.names("destination"),
    "conflict": plugins.registry.conflict_message("source", "acme"),
}
if len(sys.argv) > 1:
    try:
        config = load_config(sys.argv[1], plugins)
    except ConfigError as exc:
        out["config_error"] = str(exc)
    else:
        run = Runner(config, plugins).run("main")
        out["run"] = {"status": str(run.status), "error": run.error, "nodes": {n: vars(s) for n, s in run.nodes.items()}}
print(json.dumps(out))
'''

ACME_TO_SINK = """
[store]
url = "sqlite:///store.sqlite"

[connectors.acme]
type = "acme"
count = 4

[connectors.sink]
type = "other_sink"
path = "keys.txt"

[syncs.main.nodes.people]
source = "acme.people"

[syncs.main.nodes.out]
destination = "sink"
inputs = ["people"]
"""


def _write_distribution(folder: Path, dist: str, version: str, module: str, ep_name: str, code: str) -> None:
    folder.mkdir(parents=True)
    (folder / "tinybuild.py").write_text(BACKEND)
    (folder / f"{module}.py").write_text(textwrap.dedent(code))
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(
            f"""
            [build-system]
            requires = []
            build-backend = "tinybuild"
            backend-path = ["."]

            [project]
            name = "{dist}"
            version = "{version}"

            [project.entry-points.cdp]
            {ep_name} = "{module}"

            [tool.tinybuild]
            modules = ["{module}"]
            """
        )
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``site`` (acme, other, broken, badreg) and ``site-rival`` (rival) installed by pip."""
    root = tmp_path_factory.mktemp("plugins")
    targets: dict[str, list[str]] = {}
    for folder, (dist, version, module, ep_name, code, site) in DISTRIBUTIONS.items():
        _write_distribution(root / "src" / folder, dist, version, module, ep_name, code)
        targets.setdefault(site, []).append(str(root / "src" / folder))
    for site, folders in targets.items():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
        done = subprocess.run(
            [*pip, "--target", str(root / site), *folders], check=False, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    (root / "probe.py").write_text(PROBE)
    return root


def _run(
    installed: Path,
    *args: str,
    sites: tuple[str, ...] = ("site",),
    disable: str | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python *args`` with only ``sites`` on PYTHONPATH and no plugin disabled unless asked."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CDP_DISABLE_PLUGINS")}
    env["PYTHONPATH"] = os.pathsep.join(str(installed / s) for s in sites)
    if disable is not None:
        env["CDP_DISABLE_PLUGINS"] = disable
    return subprocess.run(
        [sys.executable, *args], check=False, capture_output=True, text=True, env=env, cwd=cwd or installed, timeout=120
    )


def _probe(installed: Path, config: Path | None = None, **kwargs: Any) -> dict[str, Any]:
    done = _run(installed, str(installed / "probe.py"), *([str(config)] if config else []), **kwargs)
    assert done.returncode == 0, f"probe failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def probed(installed: Path) -> dict[str, Any]:
    """What ``load_plugins()`` finds with the ``site`` folder on the path (one subprocess for several tests)."""
    return _probe(installed)


# -- (a) discovery through entry points -------------------------------------------------------------


def test_installed_plugin_is_discovered_with_its_distribution(probed: dict[str, Any]) -> None:
    out = probed
    acme = out["plugins"]["acme"]
    assert acme == {
        "name": "acme",
        "distribution": "acme-cdp",
        "version": "1.2.3",
        "status": "ok",
        "error": None,
        "registered": {"sources": ["acme"]},
    }
    assert "acme" in out["sources"]
    assert out["plugins"]["other"]["registered"] == {"destinations": ["other_sink"]}
    assert out["plugins"]["cdp.files"]["distribution"] == "cdp-core"


def test_without_the_install_folder_nothing_is_found(installed: Path) -> None:
    out = _probe(installed, sites=())
    assert "acme" not in out["plugins"] and "acme" not in out["sources"]


def test_cli_plugins_json_lists_installed_plugins(installed: Path) -> None:
    done = _run(installed, "-m", "cdp_core.cli", "plugins", "--json")
    try:
        listed = {p["name"]: p for p in json.loads(done.stdout)}
    except ValueError:
        pytest.fail(f"`cdp plugins --json` printed no JSON (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    assert listed["acme"]["distribution"] == "acme-cdp"
    assert listed["acme"]["version"] == "1.2.3"
    assert listed["acme"]["status"] == "ok"
    assert listed["acme"]["registered"] == {"sources": ["acme"]}
    assert listed["broken"]["status"] == "broken"
    assert "acme backend library missing" in listed["broken"]["error"]


# -- (b) a plugin that fails to import ---------------------------------------------------------------


def test_plugin_failing_on_import_is_broken_and_the_others_work(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(ACME_TO_SINK)
    out = _probe(installed, config, cwd=tmp_path)
    broken = out["plugins"]["broken"]
    assert broken["status"] == "broken"
    assert broken["distribution"] == "broken-cdp" and broken["version"] == "0.1.0"
    assert broken["error"].startswith("RuntimeError: acme backend library missing")
    assert "broken_cdp.py" in broken["error"], "the error should say where it happened"
    assert broken["registered"] == {}
    # The builtins and the good plugins are untouched, and a real run through them works.
    assert {"csv", "jsonl", "acme"} <= set(out["sources"])
    assert {"csv_file", "jsonl_file", "other_sink"} <= set(out["destinations"])
    assert out["plugins"]["cdp.files"]["status"] == "ok"
    assert out["run"]["status"] == "succeeded", out["run"]
    assert out["run"]["nodes"]["out"]["records_out"] == 4
    assert (tmp_path / "keys.txt").read_text().split() == ["acme-0", "acme-1", "acme-2", "acme-3"]


# -- (c) CDP_DISABLE_PLUGINS -----------------------------------------------------------------------


def test_disabled_plugin_is_listed_and_registers_nothing(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(ACME_TO_SINK)
    out = _probe(installed, config, disable="acme, broken", cwd=tmp_path)
    assert out["plugins"]["acme"]["status"] == "disabled"
    assert out["plugins"]["acme"]["distribution"] == "acme-cdp"
    assert out["plugins"]["acme"]["registered"] == {}
    assert out["plugins"]["broken"]["status"] == "disabled", "a disabled plugin is not even imported"
    assert "acme" not in out["sources"]
    assert "other_sink" in out["destinations"]
    assert "unknown plugin type 'acme'" in out["config_error"]


# -- (d) two plugins registering one type ----------------------------------------------------------


def test_conflicting_type_names_both_plugins_and_is_unusable(installed: Path, tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(ACME_TO_SINK)
    out = _probe(installed, config, sites=("site", "site-rival"), cwd=tmp_path)
    assert "acme" not in out["sources"]
    assert "acme" in out["conflict"] and "rival" in out["conflict"]
    assert out["plugins"]["acme"]["registered"] == {"sources": ["acme (conflict)"]}
    assert out["plugins"]["rival"]["registered"] == {"sources": ["acme (conflict)"]}
    assert out["conflict"] in out["config_error"]
    assert "run" not in out


# -- (e) a registration hook that raises -----------------------------------------------------------


def test_plugin_whose_registration_raises_is_broken(probed: dict[str, Any]) -> None:
    out = probed
    badreg = out["plugins"]["badreg"]
    assert badreg["status"] == "broken"
    assert badreg["error"].startswith("ValueError: cannot register: missing licence key")
    assert out["plugins"]["acme"]["status"] == "ok" and "acme" in out["sources"]


def test_registration_raising_in_process(register_plugin: Any) -> None:
    class Exploding:
        @hookimpl
        def cdp_register_sources(self, register: Register) -> None:
            raise KeyError("no api key")

    plugins = register_plugin(Exploding(), "exploding", extra=[kit_plugin])
    assert plugins.info["exploding"].status == "broken"
    assert "no api key" in (plugins.info["exploding"].error or "")
    assert plugins.info["cdp.testing"].status == "ok"
    assert plugins.registry.get("source", "list_source") is not None


# -- (f) config models that let unknown keys through -----------------------------------------------


class _LooseConfig(PluginConfig):
    model_config = ConfigDict(extra="allow")


class _PlainConfig(BaseModel):
    token: str = ""


class _Stream(Stream):
    name = "s"

    def read(self, cursor: Any) -> Any:
        yield Page([Record(stream="x.s", key="1")])


class _LooseSource(Source):
    config_model = _LooseConfig

    def streams(self) -> list[Stream]:
        return [_Stream()]


class _PlainSource(_LooseSource):
    config_model = _PlainConfig  # type: ignore[assignment]


def _source_plugin(type_name: str, cls: type) -> object:
    class One:
        @hookimpl
        def cdp_register_sources(self, register: Register) -> None:
            register(type_name, cls)

    return One()


def test_config_model_allowing_extra_keys_is_refused(register_plugin: Any) -> None:
    plugins = register_plugin(_source_plugin("loose", _LooseSource), "loose")
    info = plugins.info["loose"]
    assert info.status == "broken"
    assert "RegistrationError" in (info.error or "")
    assert "'loose'" in (info.error or "") and "extra='forbid'" in (info.error or "")
    assert plugins.registry.get("source", "loose") is None


def test_config_model_not_a_plugin_config_is_refused(register_plugin: Any) -> None:
    plugins = register_plugin(_source_plugin("plain", _PlainSource), "plain")
    assert plugins.info["plain"].status == "broken"
    assert "config_model must subclass cdp_core.PluginConfig" in (plugins.info["plain"].error or "")
    assert plugins.registry.get("source", "plain") is None


def test_class_of_the_wrong_role_is_refused(register_plugin: Any) -> None:
    plugins = register_plugin(_source_plugin("notasource", PluginConfig), "wrong")
    assert plugins.info["wrong"].status == "broken"
    assert "must be a subclass of Source" in (plugins.info["wrong"].error or "")


def test_plugins_do_not_leak_between_managers(register_plugin: Any) -> None:
    with_kit = register_plugin(kit_plugin)
    assert with_kit.registry.get("source", "list_source") is not None
    assert load_plugins(entry_points=False, disabled=set()).registry.get("source", "list_source") is None


# -- (g) lifecycle hooks ---------------------------------------------------------------------------


class Observer:
    """Records every lifecycle call with the counts it saw at that moment."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    @hookimpl
    def cdp_run_started(self, run: RunInfo) -> None:
        self.calls.append(("started", run.id))

    @hookimpl
    def cdp_run_finished(self, run: RunInfo) -> None:
        counts = {n: (s.records_in, s.records_out, s.rejected) for n, s in run.nodes.items()}
        self.calls.append(("finished", (run.id, str(run.status), counts)))

    @hookimpl
    def cdp_run_failed(self, run: RunInfo, error: BaseException) -> None:
        self.calls.append(("failed", (run.id, error)))

    @hookimpl
    def cdp_batch_written(self, run: RunInfo, node: str, count: int) -> None:
        self.calls.append(("batch", (node, count)))

    @hookimpl
    def cdp_record_rejected(self, run: RunInfo, node: str, rejected: Rejected) -> None:
        self.calls.append(("rejected", (node, rejected.reason, rejected.raw)))

    def of(self, kind: str) -> list[Any]:
        return [value for name, value in self.calls if name == kind]


class Raising:
    """An observer with a bug in every hook."""

    @hookimpl
    def cdp_run_started(self, run: RunInfo) -> None:
        raise RuntimeError("observer bug")

    @hookimpl
    def cdp_run_finished(self, run: RunInfo) -> None:
        raise RuntimeError("observer bug")

    @hookimpl
    def cdp_run_failed(self, run: RunInfo, error: BaseException) -> None:
        raise RuntimeError("observer bug")

    @hookimpl
    def cdp_batch_written(self, run: RunInfo, node: str, count: int) -> None:
        raise RuntimeError("observer bug")

    @hookimpl
    def cdp_record_rejected(self, run: RunInfo, node: str, rejected: Rejected) -> None:
        raise RuntimeError("observer bug")


ROWS = [{"id": "1"}, {"id": "2"}, {"id": "3"}, {"name": "no id"}, {"id": "4"}, {"name": "no id either"}, {"id": "5"}]


def _graph(fail_after_pages: int | None = None) -> str:
    fail = f"fail_after_pages = {fail_after_pages}\n" if fail_after_pages is not None else ""
    return f"""
[connectors.src]
type = "list_source"
page_size = 2
{fail}streams = {to_toml({"items": {"records": ROWS}})}

[connectors.sink]
type = "collect"

[connectors.copy]
type = "collect_upsert"

[syncs.main.nodes.items]
source = "src.items"

[syncs.main.nodes.to_sink]
destination = "sink"
inputs = ["items"]

[syncs.main.nodes.to_copy]
destination = "copy"
inputs = ["items"]
"""


def test_observer_sees_the_run_with_its_counts(register_plugin: Any, tmp_path: Path) -> None:
    observer = Observer()
    plugins = register_plugin(Raising(), extra=[observer, kit_plugin])  # the raising one is called first
    collector = Collector()
    run = run_graph(tmp_path, _graph(), plugins, collector=collector)
    assert run.status is RunStatus.succeeded, run.error
    assert observer.of("started") == [run.id]
    assert observer.of("failed") == []
    [(run_id, status, counts)] = observer.of("finished")
    assert (run_id, status) == (run.id, "succeeded")
    assert counts == {"items": (0, 5, 2), "to_sink": (5, 5, 0), "to_copy": (5, 5, 0)}
    # Four pages: [1, 2], [3, -], [4, -], [5]; each destination writes a batch per page.
    assert [b for b in observer.of("batch") if b[0] == "to_sink"] == [
        ("to_sink", 2),
        ("to_sink", 1),
        ("to_sink", 1),
        ("to_sink", 1),
    ]
    assert sum(c for node, c in observer.of("batch") if node == "to_copy") == 5
    rejected = observer.of("rejected")
    assert [(node, raw) for node, _, raw in rejected] == [
        ("items", {"name": "no id"}),
        ("items", {"name": "no id either"}),
    ]
    assert all("missing key field 'id'" in reason for _, reason, _ in rejected)
    assert collector.keys("sink") == ["1", "2", "3", "4", "5"]


def test_run_failed_fires_when_a_source_raises(register_plugin: Any, tmp_path: Path, cdp_store: Any) -> None:
    observer = Observer()
    plugins = register_plugin(Raising(), extra=[observer, kit_plugin])
    run = run_graph(tmp_path, _graph(fail_after_pages=1), plugins)
    assert run.status is RunStatus.failed
    assert "failing after 1 page" in (run.error or "")
    [(run_id, error)] = observer.of("failed")
    assert run_id == run.id and isinstance(error, RuntimeError)
    assert observer.of("finished") == []
    assert observer.of("batch") == [("to_sink", 2), ("to_copy", 2)]
    assert cdp_store.cursor("main", "items") == 2, "the page written before the failure is committed"
    assert [r.status for r in cdp_store.runs("main")] == [RunStatus.failed]


# -- observers through pluggy's hook calling: wrappers run ---------------------------------------------


class Wrapping:
    """A ``wrapper=True`` observer: it sees the call whole, around the plain observers."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    @hookimpl(wrapper=True)
    def cdp_run_finished(self, run: RunInfo) -> Any:
        self.calls.append("before")
        result = yield
        self.calls.append("after")
        return result


def test_a_wrapper_observer_runs_around_the_others(register_plugin: Any, tmp_path: Path) -> None:
    wrapping, observer = Wrapping(), Observer()
    plugins = register_plugin(wrapping, extra=[Raising(), observer, kit_plugin])
    run = run_graph(tmp_path, _graph(), plugins, collector=Collector())
    assert run.status is RunStatus.succeeded, run.error
    assert wrapping.calls == ["before", "after"], "a wrapper=True implementation never ran"
    assert len(observer.of("finished")) == 1, "the raising observer stopped the others"
