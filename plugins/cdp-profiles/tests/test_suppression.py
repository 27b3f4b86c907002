"""Suppression, end to end on both databases: CSV and JSONL files synced into the store, one person removed.

Anna is synced once, then removed (:func:`remove_person`: each of her identifiers
suppressed); the same files, with more of her in them (a changed trait, a new event, a
new email next to her CRM id, rows too malformed to read, a row without identifiers that
names her), are synced again and again. Nothing of hers is stored or quarantined again,
the runs count her as suppressed on the nodes that dropped her, and Bob and Cleo are
synced as ever.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.runinfo import RunInfo
from cdp_core.store import Checkpoint, SystemStore
from cdp_core.store.engine import make_engine
from sqlalchemy import Engine, text
from typer.testing import CliRunner

KEY = "k" * 40
ANNA = ["anna@example.org", "phone:+49 171 5550123", "crm_id:A-1"]
"""Every identifier of Anna, as an operator names them."""
ANNA_TRACES = ("anna", "5550123", "A-1")
"""What no quarantine row may hold once she is removed (any spelling of her identifiers)."""

PEOPLE_HEADER = "id,email,phone,crm_id,first_name,city,note\n"
PEOPLE = [
    "1,anna@example.org,+49 171 5550123,A-1,Anna,Berlin,\n",
    "2,bob@example.org,+49 171 5550456,B-2,Bob,Hamburg,\n",
    "3,cleo@example.org,,C-3,Cleo,Köln,\n",
]
EVENTS = [
    {"id": "e1", "email": "anna@example.org", "event": "page_view", "at": "2024-05-01T09:00:00Z"},
    {"id": "e2", "email": "bob@example.org", "event": "page_view", "at": "2024-05-01T10:00:00Z"},
    {"id": "e3", "email": "cleo@example.org", "event": "signup", "at": "2024-05-01T11:00:00Z"},
]

MORE_PEOPLE = [
    "1,anna@example.org,+49 171 5550123,A-1,Anna,München,\n",  # her trait changed
    "7,anna.new@example.org,,A-1,Anna,München,\n",  # a new address next to her CRM id
    "8,anna@example.org,+49 171 5550123,A-1,Anna,München,x,too many\n",  # malformed: the source rejects it
    "9,bob@example.org,,B-2,Bob,Hamburg,x,too many\n",  # malformed too: Bob's is quarantined
    "10,,,,Nobody,Berlin,referred by anna@example.org\n",  # no identifier: the store rejects it
]
MORE_EVENTS = [
    json.dumps({"id": "e4", "email": "anna@example.org", "event": "purchase", "at": "2024-05-02T09:00:00Z"}) + "\n",
    '{"id": "e5", "email": "anna@example.org", "event": \n',  # not JSON: the source rejects its text
    json.dumps({"id": "e6", "email": "bob@example.org", "event": "purchase", "at": "2024-05-02T10:00:00Z"}) + "\n",
]


def config_text(store_url: str, key: bool = True) -> str:
    privacy = '[privacy]\nkey = "${CDP_PRIVACY_KEY}"\n' if key else ""
    return f"""
[store]
url = "{store_url}"
{privacy}
[connectors.files]
type = "csv"
streams.people = {{ path = "people.csv", identifiers = {{ email = "email", phone = "phone", crm_id = "crm_id" }} }}

[connectors.feed]
type = "jsonl"
streams.events = {{ path = "events.jsonl", kind = "event", timestamp_field = "at", identifiers = {{ email = "email" }} }}

[connectors.store]
type = "profile_store"

[syncs.ingest.nodes.people]
source = "files.people"

[syncs.ingest.nodes.events]
source = "feed.events"

[syncs.ingest.nodes.store]
destination = "store"
inputs = ["people", "events"]
"""


class Setup:
    def __init__(self, folder: Path, store_url: str) -> None:
        self.folder = folder
        self.store_url = store_url
        self.config = folder / "connectors.toml"
        self.config.write_text(config_text(store_url), encoding="utf-8")
        (folder / "people.csv").write_text(PEOPLE_HEADER + "".join(PEOPLE), encoding="utf-8")
        (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in EVENTS), encoding="utf-8")
        self.engine: Engine = make_engine(store_url)

    def cdp(self, *args: str) -> Any:
        result = CliRunner().invoke(build_app(), [*args, "-c", str(self.config)])
        return result

    def sync(self) -> RunInfo:
        result = self.cdp("sync", "ingest")
        [run] = SystemStore(self.engine).runs("ingest", 1)
        assert result.exit_code in (0, 1), result.output
        return run

    def add_rows(self) -> None:
        with (self.folder / "people.csv").open("a", encoding="utf-8") as f:
            f.write("".join(MORE_PEOPLE))
        with (self.folder / "events.jsonl").open("a", encoding="utf-8") as f:
            f.write("".join(MORE_EVENTS))

    def held(self, who: str) -> list[tuple[Any, ...]]:
        """Every stored row that names ``who`` (a first name or an address), table by table."""
        rows: list[tuple[Any, ...]] = []
        with self.engine.connect() as conn:
            for table in ("profile_records", "events"):
                found = conn.execute(text(f"SELECT stream, key, data FROM {table}" if table == "profile_records"
                                          else f"SELECT stream, key, name FROM {table}")).all()  # fmt: skip
                keys = _keys_of(who)
                rows += [(table, *r) for r in found if r[1] in keys]
            rows += [("identities", *r) for r in conn.execute(text("SELECT type, value FROM identities")).all()
                     if who in r[1] or r[1] in _ids_of(who)]  # fmt: skip
        return sorted(rows, key=repr)

    def quarantine(self) -> list[dict[str, Any]]:
        return SystemStore(self.engine).quarantine(limit=1000)


def _keys_of(who: str) -> set[str]:
    return {"anna": {"1", "7", "8", "e1", "e4", "e5"}, "bob": {"2", "9", "e2", "e6"}, "cleo": {"3", "e3"}}[who]


def _ids_of(who: str) -> set[str]:
    return {"anna": {"+491715550123", "A-1"}, "bob": {"+491715550456", "B-2"}, "cleo": {"C-3"}}[who]


def remove_person(setup: Setup, identifiers: list[str]) -> None:
    """Remove a person so that they never come back: each identifier suppressed."""
    for identifier in identifiers:
        result = setup.cdp("privacy", "suppress", identifier, "--reason", f"request by {identifier}")
        assert result.exit_code == 0, result.output


@pytest.fixture
def setup(tmp_path: Path, store_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    made = Setup(tmp_path, store_url)
    yield made
    made.engine.dispose()


def no_trace_of_anna(rows: list[dict[str, Any]]) -> None:
    text_of_rows = json.dumps([[r["payload"], r["reason"], r["record_key"]] for r in rows], default=str)
    for trace in ANNA_TRACES:
        assert trace not in text_of_rows and trace.lower() not in text_of_rows.lower()


def forget_person(setup: Setup, identifier: str) -> None:
    """Forget a person (cdp privacy forget): everything deleted, each of their identifiers suppressed."""
    result = setup.cdp("privacy", "forget", identifier, "--reason", "erasure request")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("how", ["forget", "suppress"])
def test_a_removed_person_never_comes_back_and_is_counted_as_suppressed(setup: Setup, how: str) -> None:
    first = setup.sync()
    assert first.status == "succeeded", first.error
    assert setup.held("anna"), "Anna was stored by the first sync"
    if how == "forget":
        forget_person(setup, ANNA[0])
        assert setup.held("anna") == [], "forget deleted everything of hers"
    else:
        remove_person(setup, ANNA)
    removed = setup.held("anna")  # what the store still holds right after the removal
    bob_before, cleo = setup.held("bob"), setup.held("cleo")
    setup.add_rows()
    for attempt in range(3):
        run = setup.sync()
        assert run.status == "succeeded", run.error
        people, events, store = run.nodes["people"], run.nodes["events"], run.nodes["store"]
        # Dropped where they entered: her two rows (the first and the changed one), the new address next
        # to her CRM id and the row too malformed to read at the CSV source; her events (and the line that
        # is not JSON) at the JSONL source.
        assert (people.records_out, people.rejected, people.suppressed) == (3, 1, 4)
        assert (events.records_out, events.rejected, events.suppressed) == (3, 0, 3)
        # The row without identifiers that names her reached the store, which rejected it: dropped, not quarantined.
        assert (store.records_in, store.records_out, store.rejected, store.suppressed) == (6, 5, 0, 1)
        assert run.totals().suppressed == 8
        assert setup.held("anna") == removed, f"sync {attempt + 2} stored something of hers"
        rows = setup.quarantine()
        assert [(r["node"], r["record_key"]) for r in rows] == [("people", None)]
        assert "bob@example.org" in json.dumps(rows[0]["payload"])
        no_trace_of_anna(rows)
    # Bob and Cleo are synced as ever: Bob's new event is stored.
    assert setup.held("cleo") == cleo
    assert len(setup.held("bob")) == len(bob_before) + 1
    # `cdp runs` tells who dropped what.
    shown = setup.cdp("runs", "--graph", "ingest", "--limit", "1", "--json")
    assert [n["suppressed"] for n in json.loads(shown.stdout)[0]["nodes"].values()] == [4, 3, 1]


def test_a_non_empty_list_without_the_key_fails_the_run_before_anything_is_written(setup: Setup) -> None:
    remove_person(setup, ANNA[:1])
    setup.config.write_text(config_text(setup.store_url, key=False), encoding="utf-8")
    run = setup.sync()
    assert run.status == "failed" and "privacy.key" in (run.error or "")
    assert setup.held("bob") == [] and setup.held("cleo") == [] and setup.quarantine() == []
    assert all(stats.records_in == stats.records_out == 0 for stats in run.nodes.values())


def test_an_empty_list_needs_no_key(setup: Setup) -> None:
    setup.config.write_text(config_text(setup.store_url, key=False), encoding="utf-8")
    run = setup.sync()
    assert run.status == "succeeded", run.error
    assert setup.held("anna") and run.totals().suppressed == 0


def test_suppressing_someone_the_store_never_held_and_lifting_it(setup: Setup) -> None:
    remove_person(setup, ANNA)  # before any sync: the store never held her
    run = setup.sync()
    assert run.totals().suppressed == 2 and setup.held("anna") == []
    assert setup.held("bob") and setup.held("cleo")
    for identifier in ANNA:
        result = setup.cdp("privacy", "unsuppress", identifier)
        assert result.exit_code == 0, result.output
    again = setup.sync()
    assert again.totals().suppressed == 0 and setup.held("anna")


def test_a_quarantine_retry_drops_what_was_quarantined_before_the_suppression(setup: Setup) -> None:
    setup.add_rows()
    first = setup.sync()
    assert any("anna" in json.dumps(r["payload"]) for r in setup.quarantine()), "her malformed rows are in quarantine"
    assert first.totals().suppressed == 0
    remove_person(setup, ANNA)
    result = setup.cdp("quarantine", "retry", "--graph", "ingest", "--json")
    [outcome] = json.loads(result.stdout)
    assert outcome["suppressed"] == 3  # her CSV row, her JSON line, the row that names her
    no_trace_of_anna(setup.quarantine())
    assert [r["record_key"] for r in setup.quarantine()] == [None]  # Bob's malformed row stays


def test_suppress_and_unsuppress_write_the_audit_log_and_no_identifier(setup: Setup) -> None:
    remove_person(setup, ["Anna@Example.org "])
    again = setup.cdp("privacy", "suppress", "anna@example.org", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["added"] is False
    missing = setup.cdp("privacy", "unsuppress", "bob@example.org")
    assert missing.exit_code == 1 and "not suppressed" in missing.output and len(missing.output.splitlines()) == 1
    unknown_type = setup.cdp("privacy", "suppress", "crmid:A-1")
    assert unknown_type.exit_code == 2 and "unknown identifier type 'crmid'" in unknown_type.output
    bare = setup.cdp("privacy", "suppress", "Anna")
    assert bare.exit_code == 2 and "TYPE:VALUE" in bare.output
    done = setup.cdp("privacy", "unsuppress", "email:ANNA@example.org")
    assert done.exit_code == 0, done.output
    with setup.engine.connect() as conn:
        requests = conn.execute(text("SELECT kind, outcome, subject, reason, details FROM privacy_requests")).all()
        suppressions = conn.execute(text("SELECT hash, type FROM suppressions WHERE type <> '__key__'")).all()
    assert sorted((r.kind, r.outcome) for r in requests) == [
        ("suppress", "done"), ("suppress", "done"), ("unsuppress", "done"), ("unsuppress", "not_found"),
    ]  # fmt: skip
    assert suppressions == []
    assert len({r.subject for r in requests}) == 2 and all(len(r.subject) == 64 for r in requests)
    dump = json.dumps([list(r) for r in requests], default=str).lower()
    assert "anna" not in dump and "bob" not in dump
    assert [r.reason.strip() for r in requests if r.reason] == ["request by [identifier]"]


def test_a_retry_of_a_destination_reject_is_screened_in_the_stores_own_transaction(setup: Setup) -> None:
    """A destination reject handed to the store's checkpoint (committed in the store's transaction)."""
    remove_person(setup, ANNA)
    from cdp_core.records import Record, Rejected

    system = SystemStore(setup.engine)
    record = Record(stream="files.people", key="77", data={"note": "ex anna@example.org"}, identifiers={"email": "x@y.org"})
    system.commit(Checkpoint("ingest", "r0", {}, [("store", Rejected(reason="old", raw=record.raw(), key="77"))]))
    result = setup.cdp("quarantine", "retry", "--graph", "ingest", "--json")
    [outcome] = json.loads(result.stdout)
    assert outcome["suppressed"] == 1 and outcome["run"]["nodes"]["store"]["suppressed"] == 1
    assert setup.quarantine() == [] and setup.held("anna") == []


def test_quarantine_payloads_are_read_as_every_type_the_list_holds() -> None:
    from pydantic import SecretStr

    from cdp_profiles.identifiers import IdentifierNormalizer
    from cdp_profiles.identity import IdentityConfig
    from cdp_profiles.privacy.keys import PrivacyKey
    from cdp_profiles.privacy.suppression import SuppressionList

    key = PrivacyKey.of(SecretStr(KEY))
    entries = {"email": "anna@example.org", "phone": "+491715550123", "hubspot_id": "42"}
    hashes = {t: frozenset({key.hash_identifier(t, v)}) for t, v in entries.items()}
    engine = make_engine("sqlite://")
    found = SuppressionList(hashes, key, IdentifierNormalizer(IdentityConfig())).mentions
    assert found({"text": 'x,"Anna <ANNA@example.org>",y'})
    assert found({"text": "2,bob,0171 555 0123,Berlin"})  # her number as a German would write it
    assert found({"row": {"hubspot_id": 42}})
    assert found(["a", ["b", {"c": "  anna@example.org "}]])
    assert not found({"text": "anna@example.com, +49 171 5550124, 421, 2024-05-01"})
    assert not found({"email": "bob@example.org", "n": True, "x": None, "f": 42.0})
    engine.dispose()


def test_a_changed_privacy_key_is_refused_not_silently_ignored(setup: Setup, monkeypatch: pytest.MonkeyPatch) -> None:
    remove_person(setup, ANNA[:1])
    monkeypatch.setenv("CDP_PRIVACY_KEY", "another key entirely, also long enough")
    run = setup.sync()  # with another key no hash would match: every suppressed person would come back
    assert run.status == "failed" and "not the key the suppression list was written with" in (run.error or "")
    assert setup.held("anna") == [] and setup.held("bob") == []
    again = setup.cdp("privacy", "suppress", "email:cleo@example.org")
    assert again.exit_code == 2 and "privacy.key is not the key" in again.output
    forgot = setup.cdp("privacy", "forget", "email:cleo@example.org")
    assert forgot.exit_code in (1, 2)  # nobody to forget yet, or the key refused: nothing written either way
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)  # the right key back: the list works again
    assert setup.sync().totals().suppressed > 0 and setup.held("anna") == []
