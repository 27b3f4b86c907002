"""Retention: `[privacy.retention]`, `cdp privacy purge` and the daily `privacy-retention` job, on SQLite and
PostgreSQL with a pinned clock: what is older than its kind's retention goes, the store stays consistent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store import system_tables
from sqlalchemy import Engine, func, insert, select, update
from test_segment_refresh import write
from typer.testing import CliRunner

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.privacy import retention as retention_module
from cdp_profiles.privacy.config import RetentionConfig
from cdp_profiles.privacy.log_retention import LogReaders
from cdp_profiles.privacy.person import find_person
from cdp_profiles.privacy.retention import purge
from cdp_profiles.store import tables

NOW = datetime(2024, 6, 1, 12, tzinfo=UTC)
NONE = LogReaders()  # nobody reads the ingest log
RETENTION = {"events": "400d", "orders": "730d", "nps_responses": "365d", "consents": "400d", "quarantine": "30d",
             "runs": "90d"}  # fmt: skip
_index, _runs, _quarantine = tables.record_index, system_tables.sync_runs, system_tables.quarantine


def ago(days: int) -> datetime:
    return NOW - timedelta(days=days)


def rec(stream: str, kind: RecordKind, key: str, data: dict[str, Any], email: str | None, days: int | None) -> Record:
    return Record(stream=stream, kind=kind, key=key, data=data, identifiers={"email": email} if email else {},
                  occurred_at=None if days is None else ago(days))  # fmt: skip


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    E, O, N, C = RecordKind.event, RecordKind.order, RecordKind.nps_response, RecordKind.consent
    view = {"event": "page_view"}
    write(store_engine, "r1",
          rec("crm.contacts", RecordKind.profile, "c1", {"city": "Berlin"}, "anna@x.de", 2000),  # never purged
          rec("web.events", E, "e-old", view, "anna@x.de", 401),
          rec("web.events", E, "e-new", view, "anna@x.de", 399),
          rec("web.events", E, "e-undated-old", view, "anna@x.de", None),  # stored 500 days ago, below
          rec("web.events", E, "e-undated-new", view, "anna@x.de", None),
          rec("web.events", E, "e-only", view, "eve@x.de", 900),  # Eve's only record
          rec("web.events", E, "e-anon", view, None, 900),
          rec("shop.orders", O, "o-old", {"order_id": "1", "amount": "5"}, "anna@x.de", 731),
          rec("shop.orders", O, "o-new", {"order_id": "2", "amount": "5"}, "anna@x.de", 10),
          rec("survey.nps", N, "n-old", {"score": 9}, "anna@x.de", 366),
          rec("survey.nps", N, "n-new", {"score": 4}, "anna@x.de", 364),
          rec("cmp.consents", C, "k-email-1", {"purpose": "email", "status": "granted"}, "anna@x.de", 700),
          rec("cmp.consents", C, "k-email-2", {"purpose": "email", "status": "revoked"}, "anna@x.de", 600),  # in force
          rec("cmp.consents", C, "k-ads-1", {"purpose": "ads", "status": "granted"}, "anna@x.de", 500),
          rec("cmp.consents", C, "k-ads-2", {"purpose": "ads", "status": "denied"}, "anna@x.de", 5))  # in force; fmt: skip
    with store_engine.begin() as conn:
        undated = _index.c.key.in_(["e-undated-old", "e-undated-new"])
        conn.execute(update(_index).where(undated).values(updated_at=ago(500)))
        conn.execute(update(_index).where(_index.c.key == "e-undated-new").values(updated_at=ago(1)))
        conn.execute(insert(_quarantine), [
            {"run_id": "r1", "graph": "g", "node": "n", "reason": "bad", "record_key": k, "fingerprint": k,
             "payload": {}, "created_at": ago(d)} for k, d in (("q-old", 31), ("q-new", 29))])  # fmt: skip
        conn.execute(insert(_runs), [
            {"id": i, "graph": g, "status": st, "kind": kind, "started_at": ago(d), "finished_at": None if st == "running" else ago(d)}
            for i, g, st, kind, d in (
                ("g1", "g", "succeeded", "sync", 300),  # g's latest success: kept
                ("g2", "g", "failed", "sync", 200),  # old: purged
                ("g3", "g", "succeeded", "retry", 150),  # a retry is no sync: purged
                ("g4", "g", "failed", "sync", 100),  # g's latest run: kept
                ("h1", "h", "succeeded", "sync", 300),  # purged: h2 is newer
                ("h2", "h", "succeeded", "sync", 10),
                ("i1", "i", "running", "sync", 300),  # still running (an older one of a dead process): kept
                ("i2", "i", "succeeded", "sync", 5),
            )
        ])  # fmt: skip
    yield store_engine


def keys(engine: Engine, table: Any) -> set[str]:
    with engine.connect() as conn:
        column = table.c.id if table is _runs else table.c.record_key if table is _quarantine else table.c.key
        return set(conn.execute(select(column)).scalars())


def kind_keys(engine: Engine, kind: str) -> set[str]:
    from cdp_profiles.privacy.export import KIND_TABLES

    return keys(engine, KIND_TABLES[kind])


def test_purge_deletes_what_is_older_than_each_kinds_retention_and_keeps_the_store_consistent(engine: Engine) -> None:
    anna_before = find_person(engine, "anna@x.de", IdentityConfig())
    eve_before = find_person(engine, "eve@x.de", IdentityConfig())
    config = RetentionConfig(**RETENTION)

    dry = purge(engine, config, NONE, NOW, dry_run=True)
    expected = {"events": 4, "orders": 1, "nps_responses": 1, "consents": 2, "quarantine": 1, "runs": 3}
    assert dry.counts == expected and dry.request_id is None
    assert kind_keys(engine, "event") >= {"e-old", "e-only"}  # a dry run deletes nothing

    done = purge(engine, config, NONE, NOW)
    assert done.counts == expected and done.cutoffs["events"] == ago(400)
    assert kind_keys(engine, "event") == {"e-new", "e-undated-new"}
    assert kind_keys(engine, "order") == {"o-new"} and kind_keys(engine, "nps_response") == {"n-new"}
    assert kind_keys(engine, "consent") == {"k-email-2", "k-ads-2"}  # the decisions in force stay, however old
    assert kind_keys(engine, "profile") == {"c1"}
    assert keys(engine, _quarantine) == {"q-new"}
    assert keys(engine, _runs) == {"g1", "g4", "h2", "i1", "i2"}

    # record_index and the kind tables hold the same records; the identity graph is untouched
    from cdp_profiles.privacy.export import KIND_TABLES

    with engine.connect() as conn:
        indexed = {(r.kind, r.key) for r in conn.execute(select(_index.c.kind, _index.c.key))}
        stored = {(kind, k) for kind, table in KIND_TABLES.items() for k in conn.execute(select(table.c.key)).scalars()}
        audit = conn.execute(select(tables.privacy_requests)).one()
    assert indexed == stored
    anna_after = find_person(engine, "anna@x.de", IdentityConfig())
    assert (anna_after.profile_id, anna_after.identifiers, anna_after.set_ids) == (
        anna_before.profile_id, anna_before.identifiers, anna_before.set_ids)  # fmt: skip
    assert find_person(engine, "eve@x.de", IdentityConfig()).profile_id == eve_before.profile_id  # records gone, person kept
    assert audit.kind == "purge" and audit.outcome == "done" and audit.id == done.request_id and audit.subject is None
    assert audit.details["counts"] == expected and audit.details["retention"]["events"] == "400d"

    again = purge(engine, config, NONE, NOW)
    assert set(again.counts.values()) == {0}  # nothing left to purge; still audited
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.privacy_requests)).scalar_one() == 2


def test_kinds_without_a_retention_are_kept(engine: Engine) -> None:
    result = purge(engine, RetentionConfig(events="400d"), NONE, NOW)
    assert result.counts == {"events": 4}
    assert kind_keys(engine, "order") == {"o-old", "o-new"} and keys(engine, _runs) >= {"g2", "h1"}
    assert purge(engine, RetentionConfig(), NONE, NOW).counts == {}  # nothing configured: nothing done, nothing audited
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(tables.privacy_requests)).scalar_one() == 1


# -- the command, the job and the config -----------------------------------------------------------


def config_file(engine: Engine, tmp_path: Path, retention: dict[str, str] | None = RETENTION) -> Path:
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    lines = [f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n']
    if retention is not None:
        lines += ["[privacy.retention]"] + [f'{k} = "{v}"' for k, v in retention.items()]
    path = tmp_path / "connectors.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def cdp(config: Path, *args: str) -> Any:
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)])


def test_the_purge_command_and_its_dry_run(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp_profiles.cli import privacy_purge

    monkeypatch.setattr(privacy_purge, "utc_now", lambda: NOW)
    config = config_file(engine, tmp_path)
    dry = cdp(config, "privacy", "purge", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    shown = json.loads(dry.stdout)
    assert shown["dry_run"] is True and shown["request_id"] is None
    assert shown["kinds"]["events"] == {"before": ago(400).isoformat(), "rows": 4}
    assert kind_keys(engine, "event") >= {"e-old"}
    human = cdp(config, "privacy", "purge")
    assert human.exit_code == 0, human.output
    assert "events" in human.stdout and "2023-04-28" in human.stdout and "runs" in human.stdout
    assert kind_keys(engine, "event") == {"e-new", "e-undated-new"}
    log = json.loads(cdp(config, "privacy", "log", "--json").stdout)
    assert [(e["kind"], e["details"]["counts"]["events"]) for e in log] == [("purge", 4)]
    bare = cdp(config_file(engine, tmp_path, None), "privacy", "purge")
    assert bare.exit_code == 2 and "no retention configured" in bare.output


def test_the_daily_job_purges_like_the_command(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cdp_core.config import load_config
    from cdp_core.plugins import load_plugins

    monkeypatch.setattr(retention_module, "utc_now", lambda: NOW)
    plugins = load_plugins()
    [job] = [r for r in plugins.jobs if r.type_name == "privacy-retention"]
    assert job.plugin == "profiles" and job.cls.schedule == "45 3 * * *"
    summary = job.cls.run(load_config(config_file(engine, tmp_path), plugins, env={}))
    assert summary == "purged: events 4, orders 1, nps_responses 1, consents 2, quarantine 1, runs 3"
    bare = load_config(config_file(engine, tmp_path, None), plugins, env={})
    assert job.cls.run(bare) == "no retention configured ([privacy.retention])"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('evnts = "400d"', "privacy.retention.evnts: unknown key (did you mean 'events'?)"),
        ('events = "400 days"', "privacy.retention.events: Value error, not a duration: '400 days' (write days, e.g. 400d"),
        ('runs = "30m"', "privacy.retention.runs: Value error, a retention is at least a day: '30m' (m is minutes, not months"),
        ('ingest_log = "30"', "privacy.retention.ingest_log: Value error, not a duration: '30' (write days, e.g. 400d"),
    ],
)
def test_a_bad_retention_is_a_config_error_naming_the_key(tmp_path: Path, line: str, message: str) -> None:
    config = tmp_path / "connectors.toml"
    config.write_text(f'[connectors.store]\ntype = "profile_store"\n\n[privacy.retention]\n{line}\n', encoding="utf-8")
    result = cdp(config, "validate")
    assert result.exit_code == 2
    assert f"connectors.toml:5: {message}" in " ".join(result.output.split()), result.output
