"""`cdp privacy forget`: a person present in every table is gone from the database's bytes, on SQLite and PostgreSQL.

The person is seen in several streams (a CRM, a shop, web events, a survey, consents), merged
from two profiles, in segments with computed traits and history, in two audience mirrors, in
quarantine and in a run's error text and node counts and a source's cursor; a second person
shares the tables and must stay exactly as they were. After the forget (through the real
CLI), the SQLite file, its WAL and its shared memory, or every column of every table on
PostgreSQL, hold none of the first person's email, phone, names, external or profile ids,
in any of the ways they are written (as given, normalized, as JSON escapes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store import engine as store_engine
from cdp_core.store import system_tables
from cdp_core.store.checkpoint import Checkpoint
from sqlalchemy import Engine, insert, select
from test_segment_refresh import pid
from typer.testing import CliRunner

from cdp_profiles.audiences import member_key, sha256_hex
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)
KEY = "k" * 40
CONFIG = """
[privacy]
key = "${CDP_PRIVACY_KEY}"

[connectors.store]
type = "profile_store"

[connectors.archive]
type = "jsonl_file"
path = "archive.jsonl"

[computed_traits.order_count]
expression = "count(orders)"

[segments.berliners]
where = "city == 'Berlin'"
"""

ANNA = {
    "email": "anna.quistorp@example.org",
    "email_as_typed": "Anna.Quistorp@Example.ORG",
    "phone": "+491711234567",
    "phone_as_typed": "0171 1234567",
    "hubspot_id": "9001234",
    "shopify_customer_id": "7770001",
    "first_name": "Annabel",
    "last_name": "Quistörp",
}
BOB = {"email": "bob.keeper@example.org", "phone": "+491719876543", "hubspot_id": "9005678",
       "shopify_customer_id": "7770002", "first_name": "Bertram", "last_name": "Keeperström"}  # fmt: skip


EVERY_TABLE = ("profiles", "identities", "id_sets", "record_index", "profile_records", "events", "orders", "nps_responses",
               "consents", "merge_log", "computed_traits", "segment_members", "segment_history", "audience_members",
               "audience_pending", "quarantine", "ingest_log")  # fmt: skip
"""The tables where each person has rows, found by their identifying values (id_sets, record_index,
consents and merge_log name them by profile id or identifier)."""
HOLDS_NO_ONE = {
    "cdp_core_version", "cdp_profiles_version", "sync_leases", "segment_refreshes",  # names and counts only
    "id_set_members",  # identifiers a limit left unowned: neither person has one here
    "sync_runs", "sync_state",  # rewritten, not deleted: checked on their own below
    "privacy_requests", "privacy_targets", "suppressions",  # keyed hashes and sealed payloads
}  # fmt: skip
"""Every other table of the store: a new table must be added to one of the two, and to forget."""


def rec(stream: str, key: str, kind: RecordKind, data: dict[str, Any], ids: dict[str, str], days: int) -> Record:
    return Record(stream=stream, key=key, kind=kind, data=data, identifiers=ids, occurred_at=T0 + timedelta(days=days))


def person_records(who: dict[str, str], tag: str) -> list[Record]:
    """Two profiles (CRM by email, shop by phone) that a later record merges; an event, an order, an NPS answer, consents."""
    names = {"first_name": who["first_name"], "last_name": who["last_name"]}
    crm, shop = {"email": who.get("email_as_typed", who["email"]), "hubspot_id": who["hubspot_id"]}, {
        "phone": who.get("phone_as_typed", who["phone"]), "shopify_customer_id": who["shopify_customer_id"]}  # fmt: skip
    return [
        rec("crm.contacts", who["hubspot_id"], RecordKind.profile, {**names, "city": "Berlin"}, crm, 0),
        rec("shop.customers", who["shopify_customer_id"], RecordKind.profile, {"phone": who["phone_as_typed" if tag == "a" else "phone"], **names}, shop, 1),
        rec("forms.signup", f"{tag}-link", RecordKind.profile, {"note": f"{who['first_name']} signed up"},
            {"email": who["email"], "phone": who["phone"]}, 2),
        rec("web.events", f"{tag}-e1", RecordKind.event, {"event": "page_view", "name_seen": who["last_name"]}, {"email": who["email"]}, 3),
        rec("shop.orders", f"{tag}-o1", RecordKind.order, {"order_id": f"{tag}-o1", "amount": "12.5", "currency": "EUR",
            "customer": {"id": who["shopify_customer_id"], "first_name": who["first_name"]}}, {"shopify_customer_id": who["shopify_customer_id"]}, 4),
        rec("survey.nps", f"{tag}-n1", RecordKind.nps_response, {"score": 9, "comment": f"{who['first_name']} likes it"}, {"email": who["email"]}, 5),
        rec("crm.consents", f"{tag}-c1", RecordKind.consent, {"purpose": "email", "status": "granted"}, {"email": who["email"]}, 6),
        rec("crm.consents", f"{tag}-c2", RecordKind.consent, {"purpose": "ads", "status": "denied"}, {"hubspot_id": who["hubspot_id"]}, 7),
    ]  # fmt: skip


def cdp(engine: Engine, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "connectors.toml"
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config.write_text(f'[store]\nurl = "{url}"\n' + CONFIG, encoding="utf-8")
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)])


def as_json(engine: Engine, tmp_path: Path, *args: str) -> Any:
    result = cdp(engine, tmp_path, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


STORE_PRAGMAS = store_engine.SQLITE_PRAGMAS
"""The store's own SQLite settings, before a fixture of this module changes them."""


@pytest.fixture(autouse=True)
def deleted_content_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's own default on every connection of this test: deleted content is left in place
    (Debian builds SQLite with SECURE_DELETE on by default, which would hide a forget that
    relied on it instead of asking for it)."""
    from cdp_core.store import engine

    monkeypatch.setattr(engine, "SQLITE_PRAGMAS", (*engine.SQLITE_PRAGMAS, "PRAGMA secure_delete=OFF"))


@pytest.fixture
def store(store_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    anna, bob = person_records(ANNA, "a"), person_records(BOB, "b")
    for run, batch in (("r1", anna[:2] + bob[:2]), ("r2", anna[2:] + bob[2:])):  # the second run merges
        checkpoint = Checkpoint(graph="t", run_id=run)
        ProfileWriter(store_engine, IdentityConfig()).write(batch, checkpoint)
        assert checkpoint.rejected == []
    as_json(store_engine, tmp_path, "segments", "refresh")
    with store_engine.begin() as conn:
        for who in (ANNA, BOB):
            profile = pid(store_engine, who["email"])
            meta_key, google_key = member_key("email", who["email"]), member_key("phone", sha256_hex(who["phone"]))
            conn.execute(insert(tables.audience_members), [
                {"destination": "meta", "audience_id": "a1", "member_key": meta_key, "row": {"EMAIL": sha256_hex(who["email"]), "EXTERN_ID": profile},
                 "row_hash": "h", "uploaded_at": T0},
                {"destination": "google", "audience_id": "l1", "member_key": google_key, "row": [{"hashedPhoneNumber": sha256_hex(who["phone"])}],
                 "row_hash": "h", "uploaded_at": T0}])  # fmt: skip
            conn.execute(insert(tables.audience_pending), [
                {"destination": "meta", "audience_id": "a1", "member_key": meta_key, "record_key": profile,
                 "row": {"EMAIL": sha256_hex(who["email"]), "EXTERN_ID": profile}, "row_hash": "h", "staged_at": T0}])  # fmt: skip
            conn.execute(insert(system_tables.ingest_log).values(
                source="web", message_id=f"m-{who['hubspot_id']}", kind="identify", received_at=T0, txid=0,
                body={"type": "identify", "userId": who["hubspot_id"], "traits": {"email": who["email"], "name": who["first_name"]}}))  # fmt: skip
            conn.execute(insert(system_tables.quarantine).values(
                run_id="r1", graph="t", node=f"crm-{who['hubspot_id']}", reason=f"contact {who['hubspot_id']} has no valid phone",
                record_key=f"c-{who['first_name']}", fingerprint=f"fp-{who['email']}", created_at=T0,
                payload={"Email": who["email"].upper(), "name": f"{who['first_name']} {who['last_name']}", "phone": "not a phone"}))  # fmt: skip
        conn.execute(insert(system_tables.sync_runs).values(
            id="run-1", graph="t", status="failed", started_at=T0, kind="sync",
            error=f"hubspot: contact {ANNA['email']} refused: duplicate of {BOB['email']} (phone {ANNA['phone']})",
            nodes={"crm": {"read": 4, "errors": [f"bad email {ANNA['email']!r}", f"bad phone {ANNA['phone'][1:]}"]}}))  # fmt: skip
        conn.execute(insert(system_tables.sync_state).values(
            graph="t", node="crm", run_id="r1", updated_at=T0,
            cursor={"mark": 1717243200000, "seen": [ANNA["hubspot_id"], BOB["hubspot_id"]]}))  # fmt: skip
    if store_engine.dialect.name == "sqlite":  # as a store's older data is: in the database file, not the WAL
        with store_engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()[0] == 0
    yield store_engine


def needles(who: dict[str, str], profile_ids: list[str]) -> set[bytes]:
    """Every way the person's identifying values may be written in the file: as given, lower-case, as JSON escapes them."""
    values = {v for k, v in who.items()} | {who["phone"][1:], "0" + who["phone"][3:]} | set(profile_ids)
    out: set[bytes] = set()
    for value in values:
        for text in (value, value.lower(), json.dumps(value)[1:-1], json.dumps(value.lower())[1:-1]):
            out.add(text.encode())
            out.add(text.encode().lower())
    return out


def found_in_sqlite(path: Path, wanted: set[bytes]) -> dict[str, list[bytes]]:
    hits: dict[str, list[bytes]] = {}
    for suffix in ("", "-wal", "-shm", "-journal"):
        file = Path(f"{path}{suffix}")
        if file.exists():
            data = file.read_bytes().lower()
            hits.update({file.name: found} if (found := sorted(n for n in wanted if n.lower() in data)) else {})
    return hits


def found_in_postgres(engine: Engine, wanted: set[bytes]) -> dict[str, list[bytes]]:
    hits: dict[str, list[bytes]] = {}
    with engine.connect() as conn:
        tables = (
            conn.execute(sa.text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")).scalars().all()
        )
        for table in tables:
            rows = conn.execute(sa.text(f'SELECT t::text FROM "{table}" AS t')).scalars().all()
            data = "\n".join(rows).encode().lower()
            if found := sorted(n for n in wanted if n.lower() in data):
                hits[table] = found
    return hits


def rows_of(engine: Engine, who: dict[str, str], profile_ids: list[str], tag: str) -> dict[str, list[str]]:
    """Every row (as JSON text) of every table that names the person or one of their records, by table
    (the privacy tables, and the run texts and cursors forget rewrites, aside)."""
    wanted = needles(who, profile_ids) | {f'"{tag}-'.encode()}
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        for name in names:
            if name in {"privacy_requests", "privacy_targets", "suppressions", "sync_runs", "sync_state"}:
                continue
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            rows = [json.dumps(dict(r._mapping), default=str, sort_keys=True) for r in conn.execute(select(table))]
            out[name] = sorted(r for r in rows if any(n in r.encode().lower() for n in wanted))
    return out


def test_forget_leaves_no_byte_of_the_person(store: Engine, tmp_path: Path) -> None:
    anna = pid(store, ANNA["email"])
    bob = pid(store, BOB["email"])
    with store.connect() as conn:
        anna_ids = sorted({anna, *conn.execute(select(sa.column("id")).select_from(sa.table("profiles"))
                                               .where(sa.column("merged_into") == anna)).scalars()})  # fmt: skip
    assert len(anna_ids) == 2  # the shop profile was merged into the CRM one
    wanted = needles(ANNA, anna_ids)
    bob_before = as_json(store, tmp_path, "profiles", "show", BOB["email"])
    bob_rows = rows_of(store, BOB, [bob], "b")
    assert [t for t in EVERY_TABLE if not bob_rows[t]] == []
    with store.connect() as conn:
        assert set(sa.inspect(conn).get_table_names()) - HOLDS_NO_ONE == set(EVERY_TABLE)
    before = (
        found_in_sqlite(Path(store.url.database or ""), wanted)
        if store.dialect.name == "sqlite"
        else found_in_postgres(store, wanted)
    )
    assert before, "the person is not in the store to begin with"
    if store.dialect.name == "sqlite":
        assert set(before) == {"store.sqlite"}, before  # checkpointed: in the database file, as older data is

    reader = (
        store.connect()
    )  # a connection open meanwhile (a scheduler's, say) keeps SQLite from removing the WAL on close
    try:
        reader.exec_driver_sql("SELECT 1").all()
        reader.rollback()
        report = as_json(
            store, tmp_path, "privacy", "forget", ANNA["phone_as_typed"], "--reason", f"ticket 12 from {ANNA['email']}"
        )
        if store.dialect.name == "sqlite":
            left = found_in_sqlite(Path(store.url.database or ""), wanted)
        else:
            left = found_in_postgres(store, wanted)
    finally:
        reader.close()
    assert left == {}, (left, report["erasure"])

    deleted = report["deleted"]
    assert deleted["profiles"] == 2 and deleted["identities"] == 4 and deleted["profile_records"] == 3
    assert all(deleted[t] >= 1 for t in ("events", "orders", "nps_responses", "consents", "record_index", "id_sets",
                                         "merge_log", "computed_traits", "segment_members", "segment_history",
                                         "audience_members", "audience_pending", "quarantine", "ingest_log"))  # fmt: skip
    assert report["scrubbed"] == {"sync_runs": 1, "sync_state": 1}
    assert report["suppressed"] == 4 and report["outcome"] == "done"
    assert report["destinations"] == {"archive": "unsupported"}
    assert report["erasure"]["wal" if store.dialect.name == "sqlite" else "vacuumed"]

    assert rows_of(store, BOB, [bob], "b") == bob_rows
    assert as_json(store, tmp_path, "profiles", "show", BOB["email"]) == bob_before
    gone = cdp(store, tmp_path, "profiles", "show", ANNA["email"])
    assert gone.exit_code == 1 and "no profile for" in gone.stderr
    with store.connect() as conn:
        run = conn.execute(select(system_tables.sync_runs)).one()
        cursor = conn.execute(select(system_tables.sync_state.c.cursor)).scalar_one()
        request = conn.execute(select(tables.privacy_requests)).one()
        suppressed = set(
            conn.execute(
                select(tables.suppressions.c.hash).where(tables.suppressions.c.type != "__key__")
            ).scalars()
        )
    assert BOB["email"] in run.error and "[forgotten]" in run.error
    assert cursor == {"mark": 1717243200000, "seen": [BOB["hubspot_id"]]}
    key = PrivacyKey(KEY)
    assert (
        request.kind == "forget"
        and request.outcome == "done"
        and request.subject == key.hash_identifier("phone", ANNA["phone"])
    )
    assert request.reason == "ticket 12 from [forgotten]" and request.details["deleted"] == deleted
    assert suppressed == {
        key.hash_identifier(t, ANNA[t]) for t in ("email", "phone", "hubspot_id", "shopify_customer_id")
    }


def test_unknown_identifier_is_one_line_and_audited(store: Engine, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "privacy", "forget", "nobody@example.org", "--reason", "asked by nobody@example.org")
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "no profile for nobody@example.org" in result.stderr
    with store.connect() as conn:
        rows = conn.execute(select(tables.privacy_requests)).all()
        assert conn.execute(select(sa.func.count()).select_from(tables.suppressions)).scalar() == 0
    assert [(r.kind, r.outcome, r.reason) for r in rows] == [("forget", "not_found", "asked by [forgotten]")]
    assert rows[0].subject == PrivacyKey(KEY).hash_identifier("email", "nobody@example.org")


def test_without_a_privacy_key_nothing_is_done(store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_PRIVACY_KEY", "short")
    result = cdp(store, tmp_path, "privacy", "forget", ANNA["email"])
    assert result.exit_code == 2 and "at least 32 characters" in result.stderr
    assert pid(store, ANNA["email"])


def test_a_destination_that_can_forget_gets_the_mirror_rows_before_they_are_deleted(
    store: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdp_core.builtins.files import JsonlDestination
    from cdp_core.forget import ForgetSubject

    monkeypatch.setattr(JsonlDestination, "supports_forget", True)
    with store.begin() as conn:  # the archive's own mirror rows for Anna, as Meta's plugin keys them
        conn.execute(
            sa.update(tables.audience_members)
            .where(tables.audience_members.c.destination == "meta")
            .values(destination="archive")
        )
    report = as_json(store, tmp_path, "privacy", "forget", f"hubspot_id:{ANNA['hubspot_id']}")
    assert report["outcome"] == "pending" and report["destinations"] == {"archive": "pending"}
    with store.connect() as conn:
        target = conn.execute(select(tables.privacy_targets)).one()
        request = conn.execute(select(tables.privacy_requests)).one()
        left = conn.execute(select(tables.audience_members.c.row)).scalars().all()
    assert request.outcome == "pending" and request.finished_at is None
    assert request.subject == PrivacyKey(KEY).hash_identifier("hubspot_id", ANNA["hubspot_id"])
    subject = ForgetSubject.model_validate_json(PrivacyKey(KEY).unseal(target.payload))
    assert subject.identifiers == {"email": [ANNA["email"]], "phone": [ANNA["phone"]],
                                   "hubspot_id": [ANNA["hubspot_id"]], "shopify_customer_id": [ANNA["shopify_customer_id"]]}  # fmt: skip
    assert [r.row["EMAIL"] for r in subject.audience_rows] == [sha256_hex(ANNA["email"])]
    assert ANNA["email"].encode() not in target.payload.encode()  # sealed
    assert sha256_hex(ANNA["email"]) not in json.dumps(left) and sha256_hex(BOB["email"]) in json.dumps(left)


def test_a_reader_on_an_older_snapshot_keeps_the_wal_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: PostgreSQL has no WAL file of the store's to empty (docs/privacy.md says what it keeps)."""
    from cdp_core.store.engine import make_engine

    from cdp_profiles.store.schema import ensure_schema

    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    monkeypatch.setenv("CDP_STORE_BUSY_TIMEOUT", "0")
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    ensure_schema(engine)
    both = person_records(ANNA, "a")[:1] + person_records(BOB, "b")[:1]
    ProfileWriter(engine, IdentityConfig()).write(both, Checkpoint(graph="t", run_id="r1"))
    reader = engine.connect()
    try:
        reader.exec_driver_sql("BEGIN")
        assert reader.exec_driver_sql("SELECT count(*) FROM profiles").scalar() == 2  # holds this snapshot
        result = cdp(engine, tmp_path, "privacy", "forget", ANNA["email"], "--json")
        assert result.exit_code == 0, result.output
        erasure = json.loads(result.stdout)["erasure"]
        assert erasure["wal"] == "busy" and "older snapshot" in erasure["problem"]
        assert ANNA["first_name"].encode() in Path(f"{tmp_path / 'store.sqlite'}-wal").read_bytes()
        human = cdp(engine, tmp_path, "privacy", "forget", BOB["email"])
        assert human.exit_code == 0 and "forgotten: request" in human.stdout
        assert "warning:" in human.stderr and "older snapshot" in human.stderr
    finally:
        reader.close()
        engine.dispose()


def test_forget_leaves_no_byte_of_what_a_resent_record_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anna's CRM record sent again with another name: the old name was in the file, in the space
    the rewrite freed. With the store's own settings over a SQLite whose default keeps deleted
    content (as SQLite's own default does), a forget leaves none of it (SQLite only: PostgreSQL's
    old row versions are not in a file a reader of the tables can reach, and its forget vacuums)."""
    from cdp_core.store.engine import make_engine

    from cdp_profiles.store.schema import ensure_schema

    monkeypatch.setattr(store_engine, "SQLITE_PRAGMAS", ("PRAGMA secure_delete=OFF", *STORE_PRAGMAS))
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    engine = make_engine(f"sqlite:///{tmp_path / 'store.sqlite'}")
    ensure_schema(engine)
    writer = ProfileWriter(engine, IdentityConfig())
    anna, bob = person_records(ANNA, "a"), person_records(BOB, "b")
    for run, batch in (("r1", anna[:2] + bob[:2]), ("r2", anna[2:] + bob[2:])):  # as the store fixture writes
        writer.write(batch, Checkpoint(graph="t", run_id=run))
    renamed = rec("crm.contacts", ANNA["hubspot_id"], RecordKind.profile, {"first_name": "Xaver", "last_name": "Zett"},
                  {"email": ANNA["email"], "hubspot_id": ANNA["hubspot_id"]}, 9)  # fmt: skip
    writer.write([renamed], Checkpoint(graph="t", run_id="r3"))
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    old_names = {ANNA["first_name"].encode(), ANNA["last_name"].encode()}
    assert found_in_sqlite(tmp_path / "store.sqlite", old_names | {b"Xaver"}), "the names are in the file to begin with"
    as_json(engine, tmp_path, "privacy", "forget", ANNA["email"], "--reason", "ticket 13")
    assert found_in_sqlite(tmp_path / "store.sqlite", old_names | {b"Xaver"}) == {}
    engine.dispose()
