"""`cdp quarantine retry`, `cdp state show|set|reset`, and new vs known rejections in run counts.

The store-side destination here (``keyed``) does what the profile store does for these
tools: it keeps records by (stream, key), refuses a record without a wanted identifier
(``checkpoint.reject``) and commits the checkpoint in the transaction of its batch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cdp_core import Destination, Page, PluginConfig, Record, Register, Source, Stream, hookimpl
from cdp_core.base import WriteMode
from cdp_core.cli import app, common
from cdp_core.config import load_config
from cdp_core.plugins import Plugins, load_plugins
from cdp_core.records import JsonValue, Rejected
from cdp_core.retry import Retry, retry_guarded
from cdp_core.runinfo import RunKind, RunStatus
from cdp_core.scheduler.history import last_run, last_success_start
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.store.leases import Leases


class KeyedConfig(PluginConfig):
    need: list[str] = []
    """Identifier types of which a record must carry one."""
    fail: bool = False
    """Raise inside the transaction, after the batch and the checkpoint were written."""


class KeyedStore(Destination):
    config_model = KeyedConfig
    commits_checkpoint = True
    write_mode = WriteMode.upsert

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        config: Any = self.config
        kept = []
        for record in batch:
            if config.need and not set(config.need) & set(record.identifiers):
                checkpoint.reject(record, f"no usable identifier ({', '.join(config.need)})")
            else:
                kept.append(record)
        system = SystemStore(self.context.store_url)
        try:
            with system.engine.begin() as conn:
                conn.execute(
                    text("CREATE TABLE IF NOT EXISTS op_records (stream VARCHAR, k VARCHAR, data TEXT, PRIMARY KEY (stream, k))")
                )
                for record in kept:  # a test destination: clarity over speed
                    conn.execute(text("DELETE FROM op_records WHERE stream = :s AND k = :k"), {"s": record.stream, "k": record.key})
                    conn.execute(
                        text("INSERT INTO op_records (stream, k, data) VALUES (:s, :k, :d)"),
                        {"s": record.stream, "k": record.key, "d": json.dumps(record.data, sort_keys=True)},
                    )
                checkpoint.write(conn)
                if config.fail:
                    raise OSError("disk full before commit")
        finally:
            system.engine.dispose()


class RawStream(Stream):
    """Rejects every row: one as a whole record, one as a bare value; it offers no ``parse``."""

    name = "items"

    def read(self, cursor: JsonValue) -> Iterator[Page]:
        record = Record(stream="raw.items", key="r1", data={"n": 1}, identifiers={"email": "r@example.com"})
        yield Page([], None, [Rejected(reason="as a record", raw=record.raw()), Rejected(reason="bare", raw="garbage")])


class RawSource(Source):
    def streams(self) -> list[Stream]:
        return [RawStream()]


class Plugin:
    @hookimpl
    def cdp_register_sources(self, register: Register) -> None:
        register("raw", RawSource)

    @hookimpl
    def cdp_register_destinations(self, register: Register) -> None:
        register("keyed", KeyedStore)


def plugins() -> Plugins:
    return load_plugins(entry_points=False, extra=[("operator_test", Plugin())])


@pytest.fixture(autouse=True)
def _test_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(common, "plugins", plugins)


def cdp(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


CSV = "id,email,updated\n1,a@example.com,2024-01-01\n2,b@example.com,2024-01-02,Bob\n3,,2024-01-03\n4,d@example.com,2024-01-04\n"

CONFIG = """
[store]
url = "{url}"

[connectors.crm]
type = "csv"
[connectors.crm.streams.contacts]
path = "contacts.csv"
cursor_field = "updated"
identifiers = {{ email = "email" }}

[connectors.store]
type = "keyed"
need = {need}

[connectors.side]
type = "jsonl_file"
path = "side.jsonl"

[syncs.g.nodes.crm]
source = "crm.contacts"
[syncs.g.nodes.check]
transform = "validate"
inputs = ["crm"]
options = {{ required = {required} }}
[syncs.g.nodes.store]
destination = "store"
inputs = ["check"]
[syncs.g.nodes.side]
destination = "side"
inputs = ["crm"]
"""


def write_config(tmp_path: Path, url: str, need: str = "[]", required: str = '["email"]') -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(CONFIG.format(url=url, need=need, required=required), encoding="utf-8")
    return path


def stored(url: str) -> dict[str, dict[str, Any]]:
    with SystemStore(url).engine.connect() as conn:
        rows = conn.execute(text("SELECT k, data FROM op_records ORDER BY k")).all()
    return {k: json.loads(data) for k, data in rows}


def quarantine(url: str) -> list[dict[str, Any]]:
    return SystemStore(url).quarantine(graph="g", limit=1000)


def sync(config: Path) -> dict[str, Any]:
    result = cdp("sync", "g", "-c", str(config), "--json")
    assert result.exit_code == 0, result.output
    [run] = json.loads(result.stdout)
    return run


def retry(config: Path, *args: str, code: int = 0) -> list[dict[str, Any]]:
    result = cdp("quarantine", "retry", "-c", str(config), "--json", *args)
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_a_csv_row_quarantined_for_its_field_count_loads_once_the_header_is_fixed(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    config = write_config(tmp_path, store_url, required='["id"]')
    run = sync(config)
    assert run["nodes"]["crm"]["records_out"] == 3 and run["nodes"]["crm"]["rejected"] == 1
    [bad] = quarantine(store_url)
    assert (bad["node"], bad["reason"]) == ("crm", "contacts.csv line 3: 4 fields, header has 3")
    cursor = SystemStore(store_url).cursor("g", "crm")
    assert cursor == {"watermark": "2024-01-04T00:00:00Z", "type": "timestamp"}, "the cursor moved past the bad row"
    assert sorted(stored(store_url)) == ["1", "3", "4"]

    # Not fixed yet: rejected again for the same reason, and the row stays as it was.
    [outcome] = retry(config)
    assert (outcome["sent"], outcome["written"], outcome["rejected_again"], outcome["same_reason"]) == (1, 0, 1, 1)
    assert quarantine(store_url) == [bad]

    # The file is fixed: its header names the column the row had (and the other rows have it, empty).
    # The source's cursor is past the row, so only its quarantined payload can bring it in.
    fixed = "id,email,updated,name\n1,a@example.com,2024-01-01,\n2,b@example.com,2024-01-02,Bob\n3,,2024-01-03,\n4,d@example.com,2024-01-04,\n"
    (tmp_path / "contacts.csv").write_text(fixed, encoding="utf-8")
    [outcome] = retry(config, "--graph", "g", "--node", "crm")
    assert outcome["run"]["status"] == "succeeded" and outcome["run"]["kind"] == "retry"
    assert (outcome["sent"], outcome["rejected_again"]) == (1, 0)
    assert outcome["run"]["nodes"]["crm"]["records_out"] == 1
    assert stored(store_url)["2"] == {"id": "2", "email": "b@example.com", "updated": "2024-01-02", "name": "Bob"}
    assert quarantine(store_url) == []
    assert SystemStore(store_url).cursor("g", "crm") == cursor, "a retry moves no cursor"
    side = [json.loads(line)["key"] for line in (tmp_path / "side.jsonl").read_text().splitlines()]
    assert side == ["1", "3", "4", "2"], "a source's record goes on to every child of the source"
    assert sync(config)["nodes"]["crm"]["records_out"] == 0, "the next sync resumes where it was"
    result = cdp("quarantine", "retry", "-c", str(config))
    assert result.exit_code == 0 and "nothing in quarantine matches: nothing retried" in result.output
    kinds = [(r["kind"], r["status"]) for r in json.loads(cdp("runs", "-c", str(config), "--json").stdout)]
    assert kinds == [("sync", "succeeded"), ("retry", "succeeded"), ("retry", "succeeded"), ("sync", "succeeded")]


def test_transform_and_destination_rejects_load_after_the_config_is_fixed(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV.replace(",Bob", ""), encoding="utf-8")
    config = write_config(tmp_path, store_url, need='["phone"]', required='["email"]')
    run = sync(config)
    assert run["nodes"]["check"]["rejected"] == 1 and run["nodes"]["store"]["rejected"] == 3
    assert run["nodes"]["crm"]["records_out"] == 4 == run["nodes"]["check"]["rejected"] + run["nodes"]["store"]["rejected"]
    assert stored_or_empty(store_url) == {}
    side_before = (tmp_path / "side.jsonl").read_text()

    # Only the transform's rule is fixed: its record goes into it and on, and the store refuses it.
    write_config(tmp_path, store_url, need='["phone"]', required='["id"]')
    [outcome] = retry(config, "--node", "check")
    assert outcome["run"]["nodes"]["check"] | {"seconds": 0} == outcome["run"]["nodes"]["check"] | {
        "records_in": 1, "records_out": 1, "rejected": 0, "seconds": 0,
    }
    assert outcome["run"]["nodes"]["store"]["rejected"] == 1 and outcome["run"]["nodes"]["store"]["already_quarantined"] == 0
    reasons = sorted((q["node"], q["reason"]) for q in quarantine(store_url))
    assert reasons == [("store", "no usable identifier (phone)")] * 4, "the transform's entry became the store's"

    # The store's rule is fixed: each record goes to that destination only.
    write_config(tmp_path, store_url, need='["email"]', required='["id"]')
    [outcome] = retry(config, "--reason", "re:^no usable identifier")
    assert (outcome["sent"], outcome["written"], outcome["rejected_again"]) == (4, 3, 1)
    assert sorted(stored(store_url)) == ["1", "2", "4"]
    [left] = quarantine(store_url)
    assert (left["node"], left["record_key"], left["reason"]) == ("store", "3", "no usable identifier (email)")
    assert (tmp_path / "side.jsonl").read_text() == side_before, "nothing reached the other branch"
    assert outcome["run"]["nodes"]["crm"]["records_out"] == 0 and outcome["run"]["nodes"]["check"]["records_in"] == 0


def stored_or_empty(url: str) -> dict[str, dict[str, Any]]:
    try:
        return stored(url)
    except Exception:  # noqa: BLE001 - the table is made by the first write
        return {}


def test_retry_filters_by_id_and_reason_text(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV.replace(",Bob", ""), encoding="utf-8")
    config = write_config(tmp_path, store_url, need='["phone"]')
    sync(config)
    rows = quarantine(store_url)
    write_config(tmp_path, store_url, need="[]", required='["id"]')
    result = cdp("quarantine", "retry", "-c", str(config), "--reason", "nothing like this")
    assert result.exit_code == 0 and "nothing in quarantine matches --reason 'nothing like this'" in result.output
    [outcome] = retry(config, "--id", str(rows[0]["id"]), "--id", str(rows[1]["id"]))
    assert outcome["sent"] == 2
    assert [q["id"] for q in quarantine(store_url)] == [q["id"] for q in rows[2:]]
    [outcome] = retry(config, "--reason", "usable identifier")
    assert outcome["sent"] == len(rows) - 2 and quarantine(store_url) == []


def test_an_idle_re_read_reports_no_new_rejections_and_stores_nothing_twice(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    config = write_config(tmp_path, store_url)
    first = sync(config)
    assert first["nodes"]["crm"] | first["nodes"]["check"] != {}
    assert (first["nodes"]["crm"]["rejected"], first["nodes"]["crm"]["already_quarantined"]) == (1, 0)
    assert (first["nodes"]["check"]["rejected"], first["nodes"]["check"]["already_quarantined"]) == (1, 0)
    before, rows = stored(store_url), quarantine(store_url)
    assert sync(config)["nodes"]["crm"]["records_out"] == 0

    result = cdp("state", "reset", "g", "-c", str(config))
    assert result.exit_code == 0, result.output
    # the jsonl_file destination keeps its committed length as a cursor of its own: both go
    assert "crm will be read from the start by the next run (2 stored cursors removed)" in result.stdout
    assert "side appends what it is given" in result.output
    again = sync(config)
    assert again["nodes"]["crm"]["records_out"] == 3, "read again from the start"
    assert (again["nodes"]["crm"]["rejected"], again["nodes"]["crm"]["already_quarantined"]) == (1, 1)
    assert (again["nodes"]["check"]["rejected"], again["nodes"]["check"]["already_quarantined"]) == (1, 1)
    assert stored(store_url) == before, "the store keeps one row per (stream, key)"
    with SystemStore(store_url).engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM op_records")).scalar_one() == len(before) == 2
    assert quarantine(store_url) == rows
    [latest, *_] = json.loads(cdp("runs", "-c", str(config), "--json").stdout)
    assert latest["id"] == again["id"] and latest["nodes"]["crm"]["already_quarantined"] == 1
    table = cdp("runs", "-c", str(config)).stdout.splitlines()
    # newest first: the re-read; the idle sync before it (the file source meets its bad row on
    # every read: known, not new); the first sync, whose two rejects were new
    cells = [[cell.strip() for cell in line.split("│")[7:9]] for line in table[2:5]]
    assert cells == [["2", "0"], ["1", "0"], ["2", "2"]]


def test_state_set_show_and_reset_of_one_node(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV.replace(",Bob", ""), encoding="utf-8")
    config = write_config(tmp_path, store_url, required='["id"]')
    result = cdp("state", "set", "g", "crm", '{"watermark": "2024-01-02"}', "-c", str(config))
    assert result.exit_code == 0, result.output
    assert 'g.crm: cursor set to {"watermark": "2024-01-02"} (was null)' in result.stdout
    shown = json.loads(cdp("state", "show", "g", "-c", str(config), "--json").stdout)
    assert shown == [
        {"node": "crm", "source": "crm.contacts", "cursor": {"watermark": "2024-01-02"}, "stored": True,
         "updated_at": shown[0]["updated_at"], "run_id": None}
    ]
    assert sync(config)["nodes"]["crm"]["records_out"] == 2, "rows after the set point only"
    assert sorted(stored(store_url)) == ["3", "4"]
    [state] = json.loads(cdp("state", "show", "g", "crm", "-c", str(config), "--json").stdout)
    assert state["cursor"] == {"watermark": "2024-01-04T00:00:00Z", "type": "timestamp"} and state["run_id"] is not None
    assert cdp("state", "reset", "g", "crm", "-c", str(config)).exit_code == 0
    [state] = json.loads(cdp("state", "show", "g", "crm", "-c", str(config), "--json").stdout)
    assert state["stored"] is False and state["cursor"] is None
    assert "none: reads from the start" in cdp("state", "show", "g", "-c", str(config)).stdout
    assert sync(config)["nodes"]["crm"]["records_out"] == 4


def test_state_changes_and_retries_wait_for_the_graphs_lease(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV, encoding="utf-8")
    config = write_config(tmp_path, store_url, need='["phone"]')
    sync(config)
    rows, cursor = quarantine(store_url), SystemStore(store_url).cursor("g", "crm")
    other = Leases(SystemStore(store_url).engine, holder="elsewhere:1:x", ttl=60)
    with other.hold("g"):
        for args in (("state", "reset", "g"), ("state", "set", "g", "crm", "null"), ("quarantine", "retry")):
            result = cdp(*args, "-c", str(config))
            assert result.exit_code == 1, (args, result.output)
            assert "sync graph 'g' is running in elsewhere:1:x" in result.output, args
    assert quarantine(store_url) == rows and SystemStore(store_url).cursor("g", "crm") == cursor
    assert [r.kind for r in SystemStore(store_url).runs("g")] == [RunKind.sync], "a busy graph starts no retry run"


def test_a_failed_retry_commits_nothing_and_is_not_a_sync(tmp_path: Path, store_url: str) -> None:
    (tmp_path / "contacts.csv").write_text(CSV.replace(",Bob", ""), encoding="utf-8")
    config = write_config(tmp_path, store_url, need='["phone"]', required='["id"]')
    sync(config)
    system = SystemStore(store_url)
    rows, synced = quarantine(store_url), last_success_start(system, "g")
    path = config.read_text().replace('need = ["phone"]', 'need = []\nfail = true')
    config.write_text(path)
    [outcome] = retry(config, code=1)
    assert outcome["run"]["status"] == "failed" and "disk full before commit" in outcome["run"]["error"]
    assert quarantine(store_url) == rows, "the batch and the removal of its rows roll back together"
    assert stored_or_empty(store_url) == {}
    config.write_text(path.replace("fail = true", ""))
    [outcome] = retry(config)
    assert outcome["run"]["status"] == "succeeded" and quarantine(store_url) == []
    assert sorted(stored(store_url)) == ["1", "2", "3", "4"]
    assert last_success_start(system, "g") == synced, "a retry never serves a schedule slot"
    latest = last_run(system, "g")
    assert latest is not None and latest.kind is RunKind.sync


def test_a_stream_without_parse_passes_whole_records_on_and_leaves_other_payloads(tmp_path: Path, store_url: str) -> None:
    body = f"""
[store]
url = "{store_url}"
[connectors.raw]
type = "raw"
[connectors.store]
type = "keyed"
[syncs.r.nodes.raw]
source = "raw.items"
[syncs.r.nodes.store]
destination = "store"
inputs = ["raw"]
"""
    path = tmp_path / "connectors.toml"
    path.write_text(body)
    loaded = plugins()
    config = load_config(path, loaded, env={})
    system = SystemStore(store_url).create()
    from cdp_core.runner import Runner

    assert Runner(config, loaded, system).run("r").status is RunStatus.succeeded
    entries = system.quarantined(graph="r")
    assert [e.reason for e in entries] == ["as a record", "bare"]
    retry = Retry(entries)
    run = retry_guarded(config, loaded, system, "r", retry, leases=Leases(system.engine))
    assert run.status is RunStatus.succeeded and run.kind is RunKind.retry
    assert retry.sent == 1 and dict(retry.skipped) == {"source 'raw' cannot read a quarantined payload again": 1}
    assert stored(store_url) == {"r1": {"n": 1}}
    assert [e.reason for e in system.quarantined(graph="r")] == ["bare"], "left as it was"
    assert [r.kind for r in system.runs("r")] == [RunKind.retry, RunKind.sync]


@pytest.mark.parametrize(
    ("raw", "fixed", "expected"),
    [
        ({"id": "7", "email": "x@example.com", "updated": "2024-02-01"}, None, {"id": "7", "email": "x@example.com", "updated": "2024-02-01"}),
        ({"id": "", "email": "x@example.com", "updated": "2024-02-01"}, None, "missing primary key id"),
        ({"id": "7", "email": "x@example.com", "updated": ""}, None, "no value in cursor field 'updated'"),
        ({"id": "7", "email": "e", "updated": "2024-02-01", "_values": ["7", "e", "2024-02-01", "n"]}, None, "4 fields, header has 3"),
        ({"id": "7", "email": "e", "updated": "2024-02-01", "_values": ["7", "e", "2024-02-01", "n"]}, "id,email,updated,name\n",
         {"id": "7", "email": "e", "updated": "2024-02-01", "name": "n"}),
        ("not a row", None, "expected the row's columns and values, got str"),
    ],
    ids=["plain", "no-key", "no-cursor", "extra-field", "extra-field-header-fixed", "not-a-row"],
)
def test_the_csv_stream_parses_a_quarantined_row_as_a_sync_reads_it(
    tmp_path: Path, raw: Any, fixed: str | None, expected: Any
) -> None:
    (tmp_path / "contacts.csv").write_text(fixed or "id,email,updated\n", encoding="utf-8")
    config = load_config(write_config(tmp_path, "sqlite://"), plugins(), env={})
    connector = config.connectors["crm"]
    from cdp_core.testing import make_context

    source = connector.roles["source"].cls(connector.config, make_context(tmp_path, "crm"))
    outcome = source.stream("contacts").parse(raw)
    if isinstance(expected, dict):
        assert isinstance(outcome, Record) and outcome.data == expected and outcome.key == "7"
        assert outcome.identifiers == {"email": expected["email"]} and outcome.stream == "crm.contacts"
    else:
        assert isinstance(outcome, Rejected) and outcome.raw == raw
        assert outcome.reason.endswith(expected) and not outcome.reason.startswith("line ")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"id": "7", "email": "x@example.com", "updated": "2024-02-01"}, "record"),
        ('{"id": "7", "email": "x@example.com", "updated": "2024-02-01"}', "record"),
        ('{"id": 7, "email": ', "invalid JSON"),
        ([1, 2], "expected a JSON object"),
    ],
    ids=["object", "fixed-text", "broken-text", "array"],
)
def test_the_jsonl_stream_parses_a_quarantined_line(tmp_path: Path, raw: Any, expected: str) -> None:
    path = tmp_path / "connectors.toml"
    path.write_text(
        '[connectors.f]\ntype = "jsonl"\n[connectors.f.streams.s]\npath = "s.jsonl"\ncursor_field = "updated"\n'
        '[connectors.o]\ntype = "jsonl_file"\npath = "o.jsonl"\n'
        '[syncs.x.nodes.f]\nsource = "f.s"\n[syncs.x.nodes.o]\ndestination = "o"\ninputs = ["f"]\n'
    )
    connector = load_config(path, plugins(), env={}).connectors["f"]
    from cdp_core.testing import make_context

    outcome = connector.roles["source"].cls(connector.config, make_context(tmp_path, "f")).stream("s").parse(raw)
    if expected == "record":
        assert isinstance(outcome, Record) and outcome.key == "7" and outcome.stream == "f.s"
    else:
        assert isinstance(outcome, Rejected) and expected in outcome.reason and outcome.raw == raw

