"""`cdp privacy export`: the document holds every row the store has about the person, and nothing of anyone
else (read from the tables directly, compared both ways), on SQLite and PostgreSQL; and it is audited."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store import system_tables
from sqlalchemy import Engine, insert, or_, select
from test_segment_refresh import write
from typer.testing import CliRunner

from cdp_profiles.audiences import member_key, sha256_hex
from cdp_profiles.membership.refresh import refresh
from cdp_profiles.privacy.export import EXPORT_VERSION, KIND_TABLES, plain
from cdp_profiles.privacy.keys import PrivacyKey
from cdp_profiles.segments import compile_rules
from cdp_profiles.store import tables

T0 = datetime(2024, 6, 1, 12, tzinfo=UTC)
KEY = "k" * 40
ANNA, ANNA_PHONE, BOB = "anna@example.com", "+491711234567", "bob@example.com"
RULES = compile_rules({"order_count": "count(orders)"}, {"berliners": "city == 'Berlin'", "promoters": "nps_score >= 9"})
CONFIG = """
[connectors.store]
type = "profile_store"

[privacy]
key = "${CDP_PRIVACY_KEY}"
"""


def rec(stream: str, kind: RecordKind, key: str, data: dict[str, Any], ids: dict[str, str], days: int) -> Record:
    return Record(stream=stream, kind=kind, key=key, data=data, identifiers=ids, occurred_at=T0 - timedelta(days=days))


@pytest.fixture
def engine(store_engine: Engine) -> Iterator[Engine]:
    """Anna in five streams of four sources, first as two people (her email; her phone) merged by a later CRM row;
    Bob in the same streams; segments refreshed before and after the merge; audience mirror rows; quarantine."""
    P, E, O, N, C = RecordKind.profile, RecordKind.event, RecordKind.order, RecordKind.nps_response, RecordKind.consent
    email, phone, bob = {"email": ANNA}, {"phone": ANNA_PHONE}, {"email": BOB}
    write(store_engine, "r1",
          rec("crm.contacts", P, "c1", {"first_name": "Anna", "city": "Berlin"}, email, 100),
          rec("web.events", E, "e1", {"event": "page_view", "path": "/shoes"}, phone, 50),
          rec("survey.nps", N, "n1", {"score": 10, "comment": "great shoes"}, phone, 30),
          rec("crm.contacts", P, "b1", {"first_name": "Bob", "city": "Berlin"}, bob, 100),
          rec("web.events", E, "e2", {"event": "page_view", "path": "/bob"}, bob, 50),
          rec("survey.nps", N, "n2", {"score": 3}, bob, 30),
          rec("web.events", E, "anon", {"event": "page_view"}, {}, 50))  # fmt: skip
    refresh(store_engine, RULES, now=T0 - timedelta(days=20))  # the phone profile is a promoter, for now
    write(store_engine, "r2",
          rec("crm.contacts", P, "c2", {"city": "Hamburg"}, {**email, **phone}, 10),  # links the two: a merge
          rec("shop.orders", O, "o1", {"order_id": "1001", "amount": "59.90", "currency": "EUR"}, email, 40),
          rec("cmp.consents", C, "k1", {"purpose": "ads", "status": "granted"}, email, 90),
          rec("cmp.consents", C, "k2", {"purpose": "ads", "status": "revoked"}, email, 5),
          rec("shop.orders", O, "o2", {"order_id": "2002", "amount": "10", "currency": "EUR"}, bob, 40),
          rec("cmp.consents", C, "k3", {"purpose": "ads", "status": "granted"}, bob, 90))  # fmt: skip
    refresh(store_engine, RULES, now=T0)  # the merged-away profile leaves; Anna moves out of Berlin
    audience = [("meta", "aud-1", member_key("email", ANNA)), ("gads", "list-9", member_key("phone", sha256_hex(ANNA_PHONE))),
                ("meta", "aud-1", member_key("email", BOB))]  # fmt: skip
    with store_engine.begin() as conn:
        conn.execute(insert(tables.audience_members), [
            {"destination": d, "audience_id": aid, "member_key": k, "row": {"EMAIL": k[:8]}, "row_hash": k,
             "uploaded_at": T0 - timedelta(days=3)} for d, aid, k in audience])  # fmt: skip
        conn.execute(insert(tables.audience_pending), [
            {"destination": "meta", "audience_id": "aud-1", "member_key": audience[0][2], "record_key": "x",
             "row": {}, "row_hash": "h", "run_id": "r3", "staged_at": T0}])  # fmt: skip
        conn.execute(insert(system_tables.quarantine), [
            {"run_id": "r1", "graph": "g", "node": "n", "reason": "bad date", "record_key": "q1", "fingerprint": "f1",
             "payload": {"email": "ANNA@example.com", "birthday": "31.02."}, "created_at": T0},
            {"run_id": "r1", "graph": "g", "node": "n", "reason": "bad date", "record_key": "q2", "fingerprint": "f2",
             "payload": {"email": BOB}, "created_at": T0}])  # fmt: skip
    yield store_engine


def cdp(engine: Engine, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "connectors.toml"
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config.write_text(f'[store]\nurl = "{url}"\n' + CONFIG, encoding="utf-8")
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)])


def rows(engine: Engine, stmt: Any) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [{k: plain(v) for k, v in r._mapping.items()} for r in conn.execute(stmt)]


def held_about(engine: Engine, email: str) -> dict[str, Any]:
    """What the tables hold about the person with ``email``, read directly, each table on its own."""
    ids, profiles, sets, index = tables.identities, tables.profiles, tables.id_sets, tables.record_index
    live = rows(engine, select(ids.c.profile_id).where(ids.c.type == "email", ids.c.value == email))[0]["profile_id"]
    pids = [live] + [r["id"] for r in rows(engine, select(profiles.c.id).where(profiles.c.merged_into == live))]
    set_ids = [r["id"] for r in rows(engine, select(sets.c.id).where(sets.c.profile_id.in_(pids)))]
    indexed = rows(engine, select(index).where(index.c.set_id.in_(set_ids)))
    records = {}
    for kind, table in KIND_TABLES.items():
        keys = [(r["stream"], r["key"]) for r in indexed if r["kind"] == kind]
        found = rows(engine, select(table).where(or_(*[(table.c.stream == st) & (table.c.key == k) for st, k in keys])))
        records[kind] = sorted(found, key=lambda r: (r["stream"], r["key"])) if keys else []
    merges, members, history = tables.merge_log, tables.segment_members, tables.segment_history
    return {
        "pids": pids,
        "records": records,
        "index": {(r["kind"], r["stream"], r["key"]) for r in indexed},
        "identities": {(r["type"], r["value"]) for r in rows(engine, select(ids).where(ids.c.profile_id.in_(pids)))},
        "merges": {r["id"] for r in rows(engine, select(merges).where(or_(merges.c.winner.in_(pids), merges.c.loser.in_(pids))))},
        "segments": {(r["segment"], r["profile_id"]) for r in rows(engine, select(members).where(members.c.profile_id.in_(pids)))},
        "history": {r["id"] for r in rows(engine, select(history).where(history.c.profile_id.in_(pids)))},
    }  # fmt: skip


def test_the_export_holds_every_row_the_store_has_about_the_person_and_nothing_of_anyone_else(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    result = cdp(engine, tmp_path, "privacy", "export", f"phone:{ANNA_PHONE}")  # her merged-away profile's id
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    held = held_about(engine, ANNA)
    assert doc["format"] == "cdp-privacy-export" and doc["version"] == EXPORT_VERSION
    assert doc["profile_id"] == held["pids"][0] and doc["merged_profile_ids"] == held["pids"][1:] != []
    assert sorted(p["id"] for p in doc["profiles"]) == sorted(held["pids"])

    # every record of every kind, whole, both ways
    for kind, table_rows in held["records"].items():
        exported = [{k: v for k, v in r.items() if k not in ("stored_at", "run_id")} for r in doc["records"][kind]]
        assert exported == table_rows, kind
    assert {(k, r["stream"], r["key"]) for k, rs in doc["records"].items() for r in rs} == held["index"]
    assert {(k, r["key"]) for k, rs in doc["records"].items() for r in rs} == {
        ("profile", "c1"), ("profile", "c2"), ("event", "e1"), ("order", "o1"), ("nps_response", "n1"),
        ("consent", "k1"), ("consent", "k2"),
    }  # fmt: skip
    assert all(r["stored_at"] and r["run_id"] in ("r1", "r2") for rs in doc["records"].values() for r in rs)
    assert [c["status"] for c in doc["records"]["consent"]] == ["granted", "revoked"]  # the history, not just the latest
    assert [(c["purpose"], c["status"]) for c in doc["consents_in_force"]] == [("ads", "revoked")]

    assert {(i["type"], i["value"]) for i in doc["identities"]} == held["identities"] == {("email", ANNA), ("phone", ANNA_PHONE)}
    origins = {i["type"]: (i["source"], i["record"]) for i in doc["identities"]}
    assert origins == {"email": ("crm.contacts", "crm.contacts|c1"), "phone": ("web.events", "web.events|e1")}
    assert {m["id"] for m in doc["merges"]} == held["merges"] and len(held["merges"]) == 1
    assert {(x["segment"], x["profile_id"]) for x in doc["segments"]} == held["segments"] == {("promoters", held["pids"][0])}
    assert {x["id"] for x in doc["segment_history"]} == held["history"]
    assert {(h["segment"], h["profile_id"] == held["pids"][0], h["left_at"] is None) for h in doc["segment_history"]} == {
        ("berliners", True, False), ("promoters", False, False), ("promoters", True, True),
    }  # fmt: skip  # in Berlin until she moved; the merged-away phone profile left promoters, Anna entered
    traits = {t["name"]: t for t in doc["traits"]}
    assert traits["city"]["value"] == "Hamburg" and traits["city"]["record"] == "crm.contacts|c2"
    assert traits["city"]["source"] == "crm.contacts" and traits["city"]["set_at"] == (T0 - timedelta(days=10)).isoformat()
    assert traits["nps_score"]["value"] == 10 and traits["nps_score"]["record"] == "survey.nps|n1"
    assert [(c["name"], c["value"]) for c in doc["computed_traits"]] == [("order_count", 1)]
    assert {(x["destination"], x["audience_id"], x["uploaded_at"]) for x in doc["audiences"]} == {
        ("meta", "aud-1", (T0 - timedelta(days=3)).isoformat()), ("gads", "list-9", (T0 - timedelta(days=3)).isoformat()),
    }  # fmt: skip
    assert [x["staged_at"] for x in doc["audiences_staged"]] == [T0.isoformat()]
    assert [q["record_key"] for q in doc["quarantine"]] == ["q1"]
    text = result.stdout.lower()
    assert "bob" not in text, [line for line in text.splitlines() if "bob" in line]

    # the audit row: kind export, the subject as a keyed hash, counts only
    with engine.connect() as conn:
        audit = [dict(r._mapping) for r in conn.execute(select(tables.privacy_requests))]
    assert len(audit) == 1 and audit[0]["kind"] == "export" and audit[0]["outcome"] == "done"
    assert audit[0]["id"] == doc["request_id"]
    assert audit[0]["subject"] == PrivacyKey(KEY).hash_identifier("phone", ANNA_PHONE)
    assert audit[0]["details"]["records"] == {"profile": 2, "event": 1, "order": 1, "nps_response": 1, "consent": 2}
    assert "anna" not in json.dumps(audit, default=str).lower() and "1711234567" not in json.dumps(audit, default=str)


def test_export_to_a_file_and_the_audit_log(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    out = tmp_path / "anna.json"
    result = cdp(engine, tmp_path, "privacy", "export", ANNA, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and stat.S_IMODE(out.stat().st_mode) == 0o600
    assert json.loads(out.read_text(encoding="utf-8"))["identities"][0]["value"] == ANNA
    assert [f.name for f in tmp_path.iterdir() if f.name.startswith(".anna")] == []  # no temporary file left

    unknown = cdp(engine, tmp_path, "privacy", "export", "email:nobody@example.com")
    assert unknown.exit_code == 1 and "no profile for email:nobody@example.com" in unknown.output

    log = cdp(engine, tmp_path, "privacy", "log", "--json")
    assert log.exit_code == 0, log.output
    entries = json.loads(log.stdout)
    assert [(e["kind"], e["outcome"]) for e in entries] == [("export", "not_found"), ("export", "done")]  # newest first
    hashes = {e["outcome"]: e["subject"] for e in entries}
    assert hashes["done"] == PrivacyKey(KEY).hash_identifier("email", ANNA)[:12]
    assert hashes["not_found"] == PrivacyKey(KEY).hash_identifier("email", "nobody@example.com")[:12]
    assert entries[0]["details"] is None and entries[1]["details"]["identities"] == 2
    human = cdp(engine, tmp_path, "privacy", "log")
    assert human.exit_code == 0 and "not_found" in human.stdout and hashes["done"] in human.stdout
    assert "records.consent 2" in " ".join(human.stdout.split())
    for shown in (log.stdout, human.stdout):
        assert "anna" not in shown.lower() and "nobody" not in shown
    assert cdp(engine, tmp_path, "privacy", "log", "--kind", "exprot").exit_code == 2


def test_without_a_privacy_key_the_export_is_audited_without_its_subject(engine: Engine, tmp_path: Path) -> None:
    config = tmp_path / "connectors.toml"
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    config.write_text(f'[store]\nurl = "{url}"\n[connectors.store]\ntype = "profile_store"\n', encoding="utf-8")
    result = CliRunner().invoke(build_app(), ["privacy", "export", ANNA, "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["profile_id"]
    assert "no privacy key ([privacy] key)" in result.stderr
    with engine.connect() as conn:
        audit = conn.execute(select(tables.privacy_requests)).one()
    assert audit.kind == "export" and audit.outcome == "done" and audit.subject is None


def test_an_identifier_a_limit_kept_with_someone_else_leads_to_none_of_their_rows(store_engine: Engine) -> None:
    """A set of one person may hold an identifier another owns (a limit kept it apart): the audience rows and
    quarantine entries found by that identifier are the owner's, not part of the first person's export."""
    from cdp_core.store.checkpoint import Checkpoint

    from cdp_profiles.identifiers import IdentifierNormalizer
    from cdp_profiles.identity import IdentityConfig
    from cdp_profiles.privacy.export import export_document
    from cdp_profiles.privacy.person import person_of
    from cdp_profiles.store.profiles import ProfileWriter

    shared, profile = "sam@example.com", RecordKind.profile
    records = [rec("crm.contacts", profile, "a1", {}, {"email": ANNA, "phone": ANNA_PHONE}, 30),
               rec("crm.contacts", profile, "s1", {}, {"email": shared}, 20),
               rec("crm.contacts", profile, "s2", {}, {"email": shared, "phone": ANNA_PHONE}, 10)]  # fmt: skip
    checkpoint = Checkpoint(graph="t", run_id="r1")
    ProfileWriter(store_engine, IdentityConfig(limits={"email": 1})).write(records, checkpoint)
    assert checkpoint.rejected == []
    keys = {"anna": member_key("phone", ANNA_PHONE.lstrip("+")), "sam": member_key("email", shared)}
    with store_engine.begin() as conn:
        conn.execute(insert(tables.audience_members), [
            {"destination": "meta", "audience_id": "aud-1", "member_key": k, "row": {}, "row_hash": k, "uploaded_at": T0}
            for k in keys.values()])  # fmt: skip
        conn.execute(insert(system_tables.quarantine), [
            {"run_id": "r1", "graph": "g", "node": "n", "reason": "bad", "record_key": "q1", "fingerprint": "f1",
             "payload": {"phone": ANNA_PHONE}, "created_at": T0}])  # fmt: skip
    identities = tables.identities
    with store_engine.connect() as conn:
        sam = conn.execute(select(identities.c.profile_id).where(identities.c.value == shared)).scalar_one()
        person = person_of(conn, sam)
        assert ("phone", ANNA_PHONE) in person.identifiers  # a set of Sam's holds it; Anna's profile owns it
        doc = export_document(conn, person, T0, IdentifierNormalizer(IdentityConfig()))
    assert [x["member_key"] for x in doc["audiences"]] == [keys["sam"]] and doc["quarantine"] == []
