"""Plain functions of the test kit: plugin managers, contexts, records, TOML, graph runs.

None of them needs pytest, so they also work in scripts and notebooks.
"""

from __future__ import annotations

import json
import logging
import math
import re
import tomllib
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from cdp_core.base import ConnectorContext, Stream
from cdp_core.config import load_config
from cdp_core.plugins import ENTRY_POINT_GROUP, Plugins, load_plugins
from cdp_core.records import JsonValue, Record, RecordKind
from cdp_core.runinfo import RunInfo
from cdp_core.runner import Runner
from cdp_core.store import SystemStore
from cdp_core.testing.fakes import COLLECTOR_SERVICE, KIT_PLUGIN_NAME, Collector, KitPlugin

PluginSpec = object | tuple[str, object] | str
"""A plugin object (module or instance), a (name, plugin) pair, or the entry-point name of an installed plugin."""
"""A plugin object (module or instance with ``@hookimpl`` functions) or a (name, object) pair."""


def store_url_for(tmp_path: Path) -> str:
    """The kit's store URL for a test folder: ``sqlite:///{tmp_path}/store.sqlite``."""
    return f"sqlite:///{Path(tmp_path) / 'store.sqlite'}"


def plugin_name(obj: object) -> str:
    """A default plugin name: the module's name, ``cdp.testing`` for the kit, else the class path."""
    if isinstance(obj, types.ModuleType):
        return obj.__name__
    if isinstance(obj, KitPlugin):
        return KIT_PLUGIN_NAME
    cls = obj if isinstance(obj, type) else type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def installed_plugin(name: str) -> tuple[str, object]:
    """The installed plugin of entry point ``name`` (group ``cdp``) as a ``(name, plugin)`` spec.

    For a test whose graph needs another distribution's plugin (a vendor source into the
    profile store: ``register_plugin(my_plugin, extra=[installed_plugin("profiles")])``)
    without loading every installed plugin.
    """
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return name, ep.load()
    raise LookupError(f"no installed cdp plugin {name!r}: install its distribution (pip install -e ...)")


def load_test_plugins(*plugins: PluginSpec) -> Plugins:
    """A fresh :class:`Plugins` with the builtins and ``plugins``; entry points off, nothing disabled.

    A plugin object that is already a builtin (``cdp_core.builtins.files``) is not
    registered twice: pluggy would refuse the second registration. A plain string names
    an installed plugin by its entry point (:func:`installed_plugin`).
    """
    base = load_plugins(entry_points=False, disabled=set())
    extra: list[tuple[str, object]] = []
    for spec in plugins:
        if isinstance(spec, str):
            spec = installed_plugin(spec)
        name, obj = spec if isinstance(spec, tuple) else (plugin_name(spec), spec)
        if base.manager.is_registered(obj) or any(o is obj for _, o in extra):
            continue
        if not isinstance(spec, tuple):  # two instances of one class: number the default names
            name = _unique(name, {n for n, _ in extra} | set(base.info))
        extra.append((name, obj))
    if not extra:
        return base
    return load_plugins(entry_points=False, disabled=set(), extra=extra)


def _unique(name: str, taken: set[str]) -> str:
    number = 2
    candidate = name
    while candidate in taken:
        candidate, number = f"{name}#{number}", number + 1
    return candidate


def make_context(
    tmp_path: Path,
    name: str,
    *,
    services: Mapping[str, Any] | None = None,
    store_url: str | None = None,
) -> ConnectorContext:
    """A :class:`ConnectorContext` for connector ``name`` rooted in ``tmp_path``, with the kit's store URL."""
    return ConnectorContext(
        name=name,
        store_url=store_url or store_url_for(tmp_path),
        base_dir=Path(tmp_path),
        logger=logging.getLogger(f"cdp.connector.{name}"),
        services=dict(services or {}),
    )


def run_graph(
    tmp_path: Path,
    toml_text: str,
    plugins: Plugins,
    graph: str = "main",
    *,
    collector: Collector | None = None,
    services: Mapping[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> RunInfo:
    """Write ``tmp_path/connectors.toml``, load it and run ``graph`` once; return the run.

    Without a ``[store]`` table the store is ``sqlite:///{tmp_path}/store.sqlite``
    (the ``cdp_store`` fixture's database), never a file in the working folder.
    ``collector`` gathers the ``collect`` destinations the runner builds.
    A config error raises :class:`cdp_core.config.ConfigError`.
    """
    text = toml_text
    if "store" not in tomllib.loads(toml_text):
        text = f'[store]\nurl = "{store_url_for(tmp_path)}"\n\n{toml_text}'
    path = Path(tmp_path) / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, plugins, env=env)
    all_services = dict(services or {})
    if collector is not None:
        all_services[COLLECTOR_SERVICE] = collector
    system = SystemStore(config.store_url).create(plugins.migrations)
    try:
        return Runner(config, plugins, system, services=all_services).run(graph)
    finally:
        system.engine.dispose()


def make_records(
    count: int,
    *,
    stream: str = "test.items",
    kind: RecordKind = RecordKind.profile,
    start: int = 1,
) -> list[Record]:
    """``count`` distinct profile-like records keyed ``"1"``, ``"2"``... with an email identifier."""
    return [
        Record(
            stream=stream,
            kind=kind,
            key=str(n),
            data={"id": str(n), "email": f"  Person{n}@Example.COM ", "name": f"Person {n}"},
            identifiers={"email": f"person{n}@example.com"},
        )
        for n in range(start, start + count)
    ]


def roundtrip(cursor: JsonValue) -> JsonValue:
    """The cursor as the store hands it back: through ``json.dumps`` / ``json.loads``."""
    return json.loads(json.dumps(cursor))


def read_keys(stream: Stream, cursor: JsonValue = None) -> tuple[list[str], JsonValue]:
    """Read ``stream`` to the end from ``cursor``; return the keys read and the final cursor."""
    keys: list[str] = []
    final = cursor
    for page in stream.read(cursor):
        keys.extend(r.key for r in page.records)
        final = page.cursor
    return keys, final


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def to_toml(value: Any) -> str:
    """Render a Python value as a TOML (inline) value, for building connectors.toml in tests.

    ``to_toml([{"id": "1", "tags": ["a"]}])`` -> ``[{id = "1", tags = ["a"]}]``. Keys
    whose value is ``None`` are left out (TOML has no null).
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return {"nan": "nan", "inf": "inf", "-inf": "-inf"}[str(value)]
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        items = [f"{_toml_key(str(k))} = {to_toml(v)}" for k, v in value.items() if v is not None]
        return "{" + ", ".join(items) + "}"
    if isinstance(value, Iterable):
        return "[" + ", ".join(to_toml(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)


@dataclass
class TwoRuns:
    """What :func:`run_twice` saw: each run, the keys each delivered, and the quarantine after both."""

    first: RunInfo
    delivered: list[str]
    second: RunInfo
    redelivered: list[str]
    quarantined: list[dict[str, Any]]


def run_twice(
    tmp_path: Path,
    connector: str,
    source: str,
    plugins: Plugins,
    store_url: str,
    *,
    env: Mapping[str, str] | None = None,
    services: Mapping[str, Any] | None = None,
) -> TwoRuns:
    """Run ``source`` (``CONNECTOR.STREAM``) into a ``collect_upsert`` destination twice; both runs must succeed.

    For the bad-record checks every source owes its users: one record it cannot read in the
    middle of a page is quarantined with its payload, the others are delivered, the run
    succeeds, and the next run delivers nothing again (``redelivered == []`` and the
    quarantine holds the record once).

    :param connector: the ``[connectors.NAME]`` table of the source, as TOML.
    """
    name, _, stream = source.partition(".")
    config = f"""
[store]
url = "{store_url}"

{connector}

[connectors.out]
type = "collect_upsert"

[syncs.main.nodes.{stream}]
source = "{source}"

[syncs.main.nodes.out]
destination = "out"
inputs = ["{stream}"]
"""
    runs: list[tuple[RunInfo, list[str]]] = []
    for _ in range(2):
        collector = Collector()
        info = run_graph(
            tmp_path, config, plugins, services=dict(services or {}), env=dict(env or {}), collector=collector
        )
        assert info.status == "succeeded", info.error
        runs.append((info, collector.keys("out")))
    system = SystemStore(store_url)
    try:
        quarantined = system.quarantine("main", None, None, 1000)
    finally:
        system.engine.dispose()
    (first, delivered), (second, redelivered) = runs
    return TwoRuns(first, delivered, second, redelivered, quarantined)
