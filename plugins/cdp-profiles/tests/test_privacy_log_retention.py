"""Retention of the ingest log, on SQLite and PostgreSQL with a pinned clock: an old logged message goes only
once every graph node reading its source has committed its cursor past it; nothing unread is ever lost."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.config import Config, load_config
from cdp_core.ingest import IngestEntry, append
from cdp_core.ingest.log import LOG
from cdp_core.ingest.tracking import check_message
from cdp_core.plugins import load_plugins
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from cdp_profiles.cli import privacy_purge
from cdp_profiles.privacy import retention as retention_module
from cdp_profiles.privacy.config import RetentionConfig
from cdp_profiles.privacy.log_retention import log_readers
from cdp_profiles.privacy.retention import purge
from cdp_profiles.store import tables

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
ENV = {"WEB_KEY": "wk_web_0123456789", "APP_KEY": "wk_app_0123456789"}
RETENTION = RetentionConfig(ingest_log="30d")


GRAPHS = (("live", "web"), ("slow", "web"), ("later", "app"))


def config_file(engine: Engine, tmp_path: Path, graphs: tuple[tuple[str, str], ...] = GRAPHS) -> Path:
    """web: read by `live` and `slow`; app: read by `later`, which never runs; legacy: no longer configured."""
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    text = f"""
[store]
url = "{url}"

[connectors.web]
type = "tracking_api"
write_key = "${{WEB_KEY}}"

[connectors.app]
type = "tracking_api"
write_key = "${{APP_KEY}}"

[connectors.store]
type = "profile_store"

[privacy.retention]
ingest_log = "30d"
"""
    for graph, source in graphs:
        text += f"""
[syncs.{graph}.nodes.read]
source = "{source}.messages"

[syncs.{graph}.nodes.store]
destination = "store"
inputs = ["read"]
"""
    path = tmp_path / f"connectors{len(graphs)}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def log(engine: Engine, source: str, *messages: tuple[str, int]) -> None:
    """Append ``(message id, days before NOW it was received)`` in one transaction."""
    entries = []
    for message_id, days in messages:
        body = check_message({"messageId": message_id, "userId": "u1", "event": "Clicked"}, "track")
        entries.append(IngestEntry(source, message_id, "track", body, NOW - timedelta(days=days)))
    assert append(engine, entries).accepted == len(entries)


def logged(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(LOG.c.message_id)).scalars())


def cdp(config: Path, *args: str, env: dict[str, str] = ENV) -> Any:
    result = CliRunner().invoke(build_app(), [*args, "-c", str(config)], env=env)
    assert result.exit_code == 0, result.output
    return result


def loaded(path: Path) -> Config:
    return load_config(path, load_plugins(), env=ENV)


@pytest.fixture
def config(store_engine: Engine, tmp_path: Path) -> Path:
    path = config_file(store_engine, tmp_path)
    engine = store_engine
    log(engine, "web", ("w1", 40))
    cdp(path, "sync", "slow")  # slow has read w1
    log(engine, "web", ("w2", 1), ("w3", 40))
    cdp(path, "sync", "live")  # live has read w1, w2, w3
    log(engine, "web", ("w4", 40), ("w5", 1))  # read by nobody yet
    log(engine, "app", ("a1", 40), ("a2", 1))  # its reader `later` never ran: no cursor
    log(engine, "legacy", ("l1", 40))  # no node reads it
    return path


ALL = {"w1", "w2", "w3", "w4", "w5", "a1", "a2", "l1"}


def test_only_old_messages_every_reader_has_read_go(store_engine: Engine, config: Path, tmp_path: Path) -> None:
    # a graph added that has not run yet: web's messages are not all read by it, so none of them go
    added = log_readers(loaded(config_file(store_engine, tmp_path, (*GRAPHS, ("new", "web")))))
    assert added.nodes["web"] == [("live", "read"), ("slow", "read"), ("new", "read")]
    assert purge(store_engine, RETENTION, added, NOW, dry_run=True).counts == {"ingest_log": 0}

    readers = log_readers(loaded(config))
    assert readers.nodes == {"web": [("live", "read"), ("slow", "read")], "app": [("later", "read")]}
    assert readers.unknown == []

    dry = purge(store_engine, RETENTION, readers, NOW, dry_run=True)
    assert dry.counts == {"ingest_log": 1} and logged(store_engine) == ALL  # counted, nothing deleted
    done = purge(store_engine, RETENTION, readers, NOW)
    # w1 is old and behind both cursors (slow's is the smaller); w3 is old but slow has not read it
    assert done.counts == {"ingest_log": 1} and logged(store_engine) == ALL - {"w1"}
    with store_engine.connect() as conn:
        audit = conn.execute(select(tables.privacy_requests)).one()
    assert audit.kind == "purge" and audit.details["counts"] == {"ingest_log": 1}
    assert audit.details["retention"] == {"ingest_log": "30d"}

    cdp(config, "sync", "slow")  # slow reads everything; live (at w3) is now the smaller cursor
    again = purge(store_engine, RETENTION, readers, NOW)
    assert again.counts == {"ingest_log": 1}
    # gone: w3 (old, read by both); kept: w2, w5 (new), w4 (old, but live has not read it),
    # everything of app (its reader never committed a cursor) and of legacy (no reader)
    assert logged(store_engine) == {"w2", "w4", "w5", "a1", "a2", "l1"}


def test_the_command_and_the_job_find_the_readers_in_the_config(
    store_engine: Engine, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy_purge, "utc_now", lambda: NOW)
    monkeypatch.setattr(retention_module, "utc_now", lambda: NOW)
    dry = json.loads(cdp(config, "privacy", "purge", "--dry-run", "--json").stdout)
    assert dry["kinds"]["ingest_log"] == {"before": (NOW - timedelta(days=30)).isoformat(), "rows": 1}
    assert logged(store_engine) == ALL

    # without APP_KEY the graph `later` is left out of the config: who reads app is unknown, so the log stays whole
    held = cdp(config, "privacy", "purge", env={"WEB_KEY": ENV["WEB_KEY"]})
    assert "ingest_log kept whole: graphs left out of the config: later (connectors: app)" in held.stdout
    assert logged(store_engine) == ALL

    [job] = [r for r in load_plugins().jobs if r.type_name == "privacy-retention"]
    assert job.cls.run(loaded(config)) == "purged: ingest_log 1"
    assert logged(store_engine) == ALL - {"w1"}
