"""``cdp serve`` in a test: the real application of a connectors.toml behind the ASGI test client.

:func:`serve_config` writes ``tmp_path/connectors.toml``, loads it as ``cdp serve`` does
(no graph's secrets required), builds the server with :func:`cdp_core.serve.runtime.build_serving`
(every ``tracking_api`` source and every registered webhook of the configured connectors,
the group committer, the continuous worker) and yields a :class:`Served`: the test client
(``served.client.post("/webhooks/shop", ...)``), the loaded config, the store, and
:meth:`Served.run` to run a graph with the real runner afterwards::

    with serve_config(tmp_path, CONFIG, plugins, env={"SHOP_SECRET": SECRET}, store_url=store_url) as served:
        assert served.client.post("/webhooks/shop", content=body, headers=signed).status_code == 200
        assert served.run("live", services={"http": cdp_http}).status == "succeeded"

Without a ``[store]`` table the store is ``store_url`` (or the kit's SQLite file).
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from starlette.testclient import TestClient

from cdp_core.config import Config, load_config
from cdp_core.ingest.log import LOG
from cdp_core.plugins import Plugins
from cdp_core.runinfo import RunInfo
from cdp_core.runner import Runner
from cdp_core.serve.runtime import Serving, build_serving
from cdp_core.store import SystemStore
from cdp_core.testing.helpers import store_url_for

__all__ = ["Served", "serve_config"]


@dataclass
class Served:
    """A running ``cdp serve`` application in a test (see :func:`serve_config`)."""

    client: TestClient
    config: Config
    plugins: Plugins
    system: SystemStore
    serving: Serving

    def run(self, graph: str, *, services: dict[str, Any] | None = None) -> RunInfo:
        """Run ``graph`` once with the real runner on the same config and store."""
        return Runner(self.config, self.plugins, self.system, services=dict(services or {})).run(graph)

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a SQL query on the store, as tuples (to check what a graph stored)."""
        with self.system.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql))]

    def logged(self, source: str | None = None) -> list[Any]:
        """The ingest log's rows (of ``source``), in id order."""
        stmt = select(LOG).order_by(LOG.c.id)
        if source is not None:
            stmt = stmt.where(LOG.c.source == source)
        with self.system.engine.connect() as conn:
            return list(conn.execute(stmt))


@contextmanager
def serve_config(
    tmp_path: Path,
    toml_text: str,
    plugins: Plugins,
    *,
    env: dict[str, str] | None = None,
    store_url: str | None = None,
    now: datetime | None = None,
) -> Iterator[Served]:
    """The application ``cdp serve`` makes of ``toml_text``, started (lifespan on) for the ``with`` block.

    :param env: the environment ``${VAR}`` references are read from (default: none set).
    :param now: a pinned receive time for every request (default: the clock).
    :raises cdp_core.serve.runtime.ServeConfigError: what ``cdp serve`` refuses to start with.
    """
    text = toml_text
    if "store" not in tomllib.loads(toml_text):
        text = f'[store]\nurl = "{store_url or store_url_for(tmp_path)}"\n\n{toml_text}'
    path = Path(tmp_path) / "connectors.toml"
    path.write_text(text, encoding="utf-8")
    config = load_config(path, plugins, env=dict(env or {}), graphs=())
    system = SystemStore(config.store_url).create(plugins.migrations)
    try:
        serving = build_serving(config, plugins, system)
        if now is not None:
            serving.state.now = lambda: now
        with TestClient(serving.app()) as client:
            yield Served(client, config, plugins, system, serving)
    finally:
        system.engine.dispose()
