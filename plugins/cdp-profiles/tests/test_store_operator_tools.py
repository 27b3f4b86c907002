"""The operator tools against the profile store: `cdp state reset` re-reads without storing
anything twice, and `cdp quarantine retry` loads a record the store refused once `[identity]` is fixed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cdp_core.cli import build_app
from cdp_core.store import SystemStore
from sqlalchemy import text
from typer.testing import CliRunner

CSV = (
    "id,email,updated\n"
    "1,ann@example.com,2024-01-01\n"
    "2,bob@example.com,2024-01-02,extra\n"
    "3,cy@example.com,2024-01-03\n"
    "4,ann@example.com,2024-01-04\n"
)

CONFIG = """
[store]
url = "{url}"

[identity]
blocked = {blocked}

[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
cursor_field = "updated"
identifiers = {{ email = "email" }}

[connectors.store]
type = "profile_store"

[syncs.g.nodes.crm]
source = "crm.contacts"
[syncs.g.nodes.store]
destination = "store"
inputs = ["crm"]
"""


def setup(tmp_path: Path, url: str, blocked: str = "[]") -> Path:
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    path = tmp_path / "connectors.toml"
    path.write_text(CONFIG.format(url=url, blocked=blocked), encoding="utf-8")
    return path


def cdp(*args: str) -> Any:
    return CliRunner().invoke(build_app(), list(args))


def sync(config: Path) -> dict[str, Any]:
    result = cdp("sync", "g", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.stdout)
    return run


def counts(url: str) -> dict[str, int]:
    with SystemStore(url).engine.connect() as conn:
        return {
            table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()  # noqa: S608 - fixed names
            for table in ("profile_records", "record_index", "profiles", "identities", "quarantine")
        }


def test_state_reset_reads_a_stream_again_without_storing_anything_twice(tmp_path: Path, store_url: str) -> None:
    config = setup(tmp_path, store_url)
    first = sync(config)
    assert (first["nodes"]["crm"]["records_out"], first["nodes"]["crm"]["rejected"]) == (3, 1)
    assert first["nodes"]["store"]["records_out"] == 3
    before = counts(store_url)
    assert before == {"profile_records": 3, "record_index": 3, "profiles": 2, "identities": 2, "quarantine": 1}
    with SystemStore(store_url).engine.connect() as conn:
        rows_before = conn.execute(text("SELECT stream, key FROM profile_records ORDER BY key")).all()

    result = cdp("state", "reset", "g", "-c", str(config))
    assert result.exit_code == 0, result.output
    assert "note:" not in result.output, "the profile store upserts: no warning about appending destinations"
    again = sync(config)
    assert again["nodes"]["crm"]["records_out"] == 3 and again["nodes"]["store"]["records_out"] == 3, "all read again"
    assert (again["nodes"]["crm"]["rejected"], again["nodes"]["crm"]["already_quarantined"]) == (1, 1), "0 new"
    assert counts(store_url) == before, "one row per (stream, key), however often it is delivered"
    with SystemStore(store_url).engine.connect() as conn:
        assert conn.execute(text("SELECT stream, key FROM profile_records ORDER BY key")).all() == rows_before
    [latest, _] = json.loads(cdp("runs", "-c", str(config), "--json").stdout)
    assert latest["id"] == again["id"] and latest["nodes"]["crm"]["already_quarantined"] == 1


def test_retry_loads_what_the_store_refused_once_identity_is_fixed(tmp_path: Path, store_url: str) -> None:
    config = setup(tmp_path, store_url, blocked='["email:cy@example.com"]')
    run = sync(config)
    assert (run["nodes"]["store"]["records_in"], run["nodes"]["store"]["records_out"]) == (3, 2)
    assert run["nodes"]["crm"]["records_out"] == 3 == run["nodes"]["store"]["records_out"] + run["nodes"]["store"]["rejected"]
    refused = SystemStore(store_url).quarantine(graph="g", node="store")
    assert [(q["record_key"], q["reason"]) for q in refused] == [
        ("3", "no usable identifier to link to a person (email: email 'cy@example.com' is blocked)")
    ]
    result = cdp("quarantine", "retry", "--node", "store", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.stdout)
    assert (outcome["sent"], outcome["written"], outcome["rejected_again"], outcome["same_reason"]) == (1, 0, 1, 1)

    config.write_text(CONFIG.format(url=store_url, blocked="[]"), encoding="utf-8")
    result = cdp("quarantine", "retry", "--node", "store", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    [outcome] = json.loads(result.stdout)
    assert (outcome["sent"], outcome["written"], outcome["rejected_again"]) == (1, 1, 0)
    assert [q["node"] for q in SystemStore(store_url).quarantine(graph="g")] == ["crm"], "only the source's reject is left"
    with SystemStore(store_url).engine.connect() as conn:
        keys = conn.execute(text("SELECT key FROM profile_records ORDER BY key")).scalars().all()
        owner = conn.execute(text("SELECT count(*) FROM identities WHERE value = 'cy@example.com'")).scalar_one()
    assert keys == ["1", "3", "4"] and owner == 1
    cursor = SystemStore(store_url).cursor("g", "crm")
    assert cursor == {"watermark": "2024-01-04T00:00:00Z", "type": "timestamp"}, "no cursor moved"
