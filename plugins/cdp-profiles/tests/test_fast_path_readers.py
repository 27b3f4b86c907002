"""Every reader of the profile store finds records on the activity fast path as it finds records with a set.

A store is built with the product's writer (people, then their events, orders, NPS answers and consents,
two runs, a merge); then its activity records are turned into fast-path rows in SQL, as the writer's fast
path stores them (``record_index.set_id`` NULL, ``profile_id`` and ``identifiers`` the set's), and the sets
no record uses any more go. Consents are turned too, although the writer keeps them on sets: a reader
finds every kind's person the same way (cdp_profiles/store/owners.py). Each reader must give the same
answer after the conversion as before it, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cdp_core.base import ConnectorContext
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from cdp_core.store.schema import forget_schema_cache
from sqlalchemy import Engine, select, text
from typer.testing import CliRunner

from cdp_profiles import nps, nps_drivers
from cdp_profiles.analytics.config import AnalyticsConfig, RfmConfig
from cdp_profiles.analytics.orders import histories, purchase_days
from cdp_profiles.consent import latest_consents
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.membership.refresh import refresh, touched_by
from cdp_profiles.privacy.config import RetentionConfig
from cdp_profiles.privacy.export import export_document
from cdp_profiles.privacy.log_retention import LogReaders
from cdp_profiles.privacy.person import person_of
from cdp_profiles.privacy.retention import purge
from cdp_profiles.profile_store import ProfileStoreConfig, ProfileStoreSource
from cdp_profiles.segments import compile_rules, computed_values_query, is_member, load_person, members_query
from cdp_profiles.store import activity
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.queries import find_profile, list_profiles, profile_view
from cdp_profiles.store.schema import ensure_schema

T0 = datetime(2024, 6, 1, 9, tzinfo=UTC)
NOW = T0 + timedelta(days=30)
IDENTITY = IdentityConfig()
KEY = "k" * 40
ANNA = {"email": "anna@example.org", "phone": "+491711234567", "hubspot_id": "101", "shopify_customer_id": "777"}
BOB = {"email": "bob@example.org"}
ACTIVITY = ("event", "order", "nps_response", "consent")
CONFIG = """
[privacy]
key = "${CDP_PRIVACY_KEY}"

[connectors.store]
type = "profile_store"
"""
COMPUTED = {
    "event_n": "count(events)",
    "checkouts": "count(events, where = name == 'checkout', days = 25)",
    "spent": "sum(orders.amount, where = status != 'refunded')",
    "biggest": "max(orders.amount)",
    "last_event": "last(events.name)",
    "first_order": "first(orders.order_id)",
    "top_event": "most_frequent(events.name)",
    "event_names": "distinct(events.name)",
    "recent_nps": "moving_avg(nps.score, n = 2)",
    "smooth_spend": "ewma(orders.amount, alpha = 0.5)",
    "email_consent": "consent('email')",
}
SEGMENTS = {
    "buyers": "count(orders) >= 2",
    "browsers": "count(events, where = name == 'page_view') > 0 and sum(orders.amount) < 50",
    "promoters": "avg(nps.score) >= 9",
    "mailable": "has_consent('email')",
    "silent": "count(events) == 0",
}
RULES = compile_rules(COMPUTED, SEGMENTS)


def rec(stream: str, key: str, kind: RecordKind, data: dict[str, Any], ids: dict[str, str], days: float) -> Record:
    return Record(stream=stream, key=key, kind=kind, data=data, identifiers=ids, occurred_at=T0 + timedelta(days=days))


def order(order_id: str, amount: str, currency: str, **more: str) -> dict[str, str]:
    return {"order_id": order_id, "amount": amount, "currency": currency, **more}


def batches() -> list[tuple[str, list[Record]]]:
    """Run r1: Anna's CRM and shop profiles (apart), Bob, their activity; run r2 merges Anna's two and adds an
    event of each (Bob's is the only record of his that run r2 wrote)."""
    email, shop = {"email": ANNA["email"]}, {"shopify_customer_id": ANNA["shopify_customer_id"]}
    P, E, O, N, C = RecordKind.profile, RecordKind.event, RecordKind.order, RecordKind.nps_response, RecordKind.consent
    first = [
        rec("crm.contacts", "c-anna", P, {"first_name": "Anna", "city": "Berlin"},
            {"email": ANNA["email"], "hubspot_id": ANNA["hubspot_id"]}, 0),
        rec("shop.customers", "s-anna", P, {"city": "Hamburg"}, {**shop, "phone": ANNA["phone"]}, 1),
        rec("crm.contacts", "c-bob", P, {"first_name": "Bob", "city": "Hamburg"}, BOB, 0),
        rec("web.events", "e0", E, {"event": "page_view"}, {}, 2),  # anonymous
        rec("web.events", "e1", E, {"event": "page_view", "path": "/a"}, email, 3),
        rec("web.events", "e2", E, {"event": "page_view", "path": "/b"}, email, 4),
        rec("web.events", "e3", E, {"event": "add_to_cart"}, email, 11),
        rec("web.events", "e4", E, {"event": "checkout"}, email, 12),
        rec("web.events", "eb1", E, {"event": "page_view"}, BOB, 5),
        rec("shop.orders", "o1", O, order("1001", "19.99", "EUR", status="paid"), shop, 3),
        rec("shop.orders", "o2", O, order("1002", "100", "EUR"), shop, 12),
        rec("shop.orders", "o3", O, order("1003", "50", "EUR", status="refunded"), shop, 13),
        rec("shop.orders", "ob1", O, order("2001", "30", "USD"), BOB, 6),
        rec("survey.nps", "n0", N, {"score": 2}, {}, 2),  # anonymous
        rec("survey.nps", "n1", N, {"score": 9, "comment": "great"}, email, 5),
        rec("survey.nps", "n2", N, {"score": 6, "survey": "q2"}, email, 20),
        rec("survey.nps", "nb1", N, {"score": 10}, BOB, 7),
        rec("news.consents", "k1", C, {"purpose": "email", "status": "granted"}, email, 1),
        rec("news.consents", "k2", C, {"purpose": "email", "status": "revoked"}, email, 15),
        rec("news.consents", "kb1", C, {"purpose": "email", "status": "granted"}, BOB, 2),
    ]  # fmt: skip
    second = [
        rec("forms.signup", "link", P, {"note": "signed up"}, {"email": ANNA["email"], "phone": ANNA["phone"]}, 16),
        rec("web.events", "e5", E, {"event": "checkout"}, {"email": ANNA["email"], "phone": ANNA["phone"]}, 17),
        rec("web.events", "eb2", E, {"event": "checkout"}, BOB, 18),
    ]  # fmt: skip
    return [("r1", first), ("r2", second)]


def build(url: str) -> Engine:
    """The store with every record on its set: the writer's activity fast path is off here, so that
    :func:`convert` moves every activity record of a person (the writer would take it for some)."""
    engine = make_engine(url)
    ensure_schema(engine)
    writer = ProfileWriter(engine, IDENTITY)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(activity, "split", lambda db, prepared, old: activity.Known())
        for run, batch in batches():
            checkpoint = Checkpoint(graph="t", run_id=run)
            writer.write(batch, checkpoint)
            assert checkpoint.rejected == []
    return engine


def convert(engine: Engine) -> None:
    """Activity records with a set become fast-path rows; sets no record uses any more go."""
    owner = "(SELECT s.{} FROM id_sets s WHERE s.id = record_index.set_id)"
    kinds = ", ".join(f"'{k}'" for k in ACTIVITY)
    unused = "NOT IN (SELECT set_id FROM record_index WHERE set_id IS NOT NULL)"
    with engine.begin() as conn:
        sets_before = conn.execute(text("SELECT count(*) FROM id_sets")).scalar_one()
        moved = conn.execute(text(
            f"UPDATE record_index SET profile_id = {owner.format('profile_id')}, "
            f"identifiers = {owner.format('identifiers')}, set_id = NULL "
            f"WHERE kind IN ({kinds}) AND set_id IS NOT NULL"
        )).rowcount  # fmt: skip
        conn.execute(text(f"DELETE FROM id_set_members WHERE set_id {unused}"))
        conn.execute(text(f"DELETE FROM id_sets WHERE id {unused}"))
        sets_after = conn.execute(text("SELECT count(*) FROM id_sets")).scalar_one()
        fast = conn.execute(text("SELECT count(*) FROM record_index WHERE profile_id IS NOT NULL")).scalar_one()
    assert moved == fast == 17 and sets_after < sets_before  # every activity record of a person; its sets gone


def reset(engine: Engine) -> None:
    """An empty database again, at the same URL."""
    url = engine.url
    if engine.dialect.name == "sqlite":
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{url.database}{suffix}").unlink(missing_ok=True)
        return
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    forget_schema_cache()  # the server's database is no longer at head


@dataclass
class Ctx:
    engine: Engine
    url: str
    tmp_path: Path
    anna: str
    bob: str


def people(engine: Engine) -> tuple[str, str]:
    anna, bob = (find_profile(engine, f"email:{who['email']}", IDENTITY) for who in (ANNA, BOB))
    assert anna and bob
    return anna, bob


def cdp(ctx: Ctx, *args: str) -> Any:
    config = ctx.tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "{ctx.url}"\n' + CONFIG, encoding="utf-8")
    result = CliRunner().invoke(build_app(), [*args, "-c", str(config)])
    assert result.exit_code == 0, result.output
    return result


def rows(ctx: Ctx, stmt: Any) -> list[dict[str, Any]]:
    with ctx.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(stmt)]


def sorted_rows(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(found, key=lambda r: json.dumps(r, sort_keys=True, default=str))


# -- the readers ------------------------------------------------------------------------------------


def show(ctx: Ctx) -> Any:
    """`cdp profiles show --json` and the 360 view of both people, and the list's order counts."""
    shown = [json.loads(cdp(ctx, "profiles", "show", who, "--json").stdout) for who in (ANNA["email"], BOB["email"])]
    views = [profile_view(ctx.engine, pid).model_dump() for pid in (ctx.anna, ctx.bob)]
    listed = [(p.id, p.orders, p.nps_score) for p in list_profiles(ctx.engine)]
    return shown, views, listed


def segments_sql(ctx: Ctx) -> Any:
    """Segment members and computed traits in SQL: for everyone, and limited to the profiles run r2 touched."""
    with ctx.engine.connect() as conn:
        dialect = conn.dialect.name
        members = {s: sorted(conn.execute(members_query(RULES, s, dialect, NOW)).scalars()) for s in SEGMENTS}
        values = {
            scope: sorted(tuple(r) for r in conn.execute(computed_values_query(RULES, None, dialect, NOW, limit)))
            for scope, limit in (("all", None), ("r2", touched_by("r2")), ("anna", select(sa.literal(ctx.anna))))
        }
    return members, values


def segments_person(ctx: Ctx) -> Any:
    """One person's rows loaded for in-memory evaluation, and the segments they are in."""
    out = []
    with ctx.engine.connect() as conn:
        for pid in (ctx.anna, ctx.bob):
            person = load_person(conn, pid)
            assert person is not None
            loaded = {k: sorted_rows(v) if isinstance(v, list) else v for k, v in dataclasses.asdict(person).items()}
            out.append((loaded, [s for s in SEGMENTS if is_member(RULES, s, person, NOW)]))
    return out


def nps_reads(ctx: Ctx) -> Any:
    """NPS per person (latest answer), per trait, per segment, and its drivers."""
    with ctx.engine.connect() as conn:
        promoters = members_query(RULES, "promoters", conn.dialect.name, NOW)
    return (
        nps.summary(ctx.engine),
        nps.summary(ctx.engine, latest_per_person=True),
        nps.by_trait(ctx.engine, "city"),
        nps.by_trait(ctx.engine, "first_name", latest_per_person=True),
        nps.summary(ctx.engine, members=promoters),
        dataclasses.asdict(nps_drivers.analyse(ctx.engine, min_n=1)),
    )


def analytics(ctx: Ctx) -> Any:
    """Order histories per person: the input of RFM and lifetime value."""
    config = AnalyticsConfig(currency="EUR", rates={"USD": 0.5}, rfm=RfmConfig())
    with ctx.engine.connect() as conn:
        people_, _, skipped = histories(conn, config)
        days, _, _ = purchase_days(conn, config)
    return sorted(people_, key=lambda h: h.profile_id), skipped, sorted(days, key=lambda d: (d.profile_id, d.day))


def consents(ctx: Ctx) -> Any:
    return (
        sorted_rows(rows(ctx, latest_consents())),
        sorted_rows(rows(ctx, latest_consents(["email"], profiles=[ctx.anna, ctx.bob]))),
    )


def source(ctx: Ctx) -> Any:
    """The store as a source: each activity stream's records with the profile they belong to."""
    context = ConnectorContext(name="store", store_url=ctx.url, base_dir=ctx.tmp_path)
    store = ProfileStoreSource(ProfileStoreConfig(page_size=3), context)
    return {
        name: [(r.key, r.identifiers, r.data) for page in store.stream(name).read(None) for r in page.records]
        for name in ("events", "orders", "nps_responses")
    }


def membership(ctx: Ctx) -> Any:
    """The profiles each run touched, and the computed traits and members a refresh after run r2 writes."""
    with ctx.engine.begin() as conn:
        touched = {run: sorted(conn.execute(touched_by(run)).scalars()) for run in ("r1", "r2")}
        conn.execute(text("DELETE FROM computed_traits"))  # what the refresh writes, and only that, is compared
    refresh(ctx.engine, RULES, now=NOW, run_id="r2")
    computed = rows_as_tuples(ctx, "SELECT profile_id, name, value FROM computed_traits")
    members = rows_as_tuples(ctx, "SELECT segment, profile_id FROM segment_members")
    return touched, sorted(computed, key=str), sorted(members)


def export(ctx: Ctx) -> Any:
    """A person's export: every record of theirs is in it (their sets are the writer's business, not compared)."""
    normalize = IdentifierNormalizer(IDENTITY)
    with ctx.engine.connect() as conn:
        person = person_of(conn, ctx.anna)
        document = export_document(conn, person, NOW, normalize)
    del document["identifier_sets"]
    assert sum(len(r) for r in document["records"].values()) == 15  # 3 profile records, 12 of activity
    return person.records, person.identifiers, document


def forget(ctx: Ctx) -> Any:
    """Forgetting Anna: what is left of the records, the profiles and the identifiers."""
    cdp(ctx, "privacy", "forget", ANNA["email"])
    left = {
        t: sorted(tuple(r) for r in rows_as_tuples(ctx, f"SELECT stream, key FROM {t}"))
        for t in ("record_index", "profile_records", "events", "orders", "nps_responses", "consents")
    }
    left["profiles"] = sorted(tuple(r) for r in rows_as_tuples(ctx, "SELECT id FROM profiles"))
    left["identities"] = sorted(tuple(r) for r in rows_as_tuples(ctx, "SELECT type, value FROM identities"))
    stored = [i for (i,) in rows_as_tuples(ctx, "SELECT identifiers FROM record_index WHERE identifiers IS NOT NULL")]
    stored_values = {v for i in stored for _, v in (json.loads(i) if isinstance(i, str) else i)}
    assert not stored_values & set(ANNA.values())  # the fast-path rows of theirs went with their identifiers
    return left


def retention(ctx: Ctx) -> Any:
    """A purge: old activity goes (with its index rows), each person's consent in force stays."""
    config = RetentionConfig(events="20d", orders="20d", nps_responses="15d", consents="1d")
    counts = purge(ctx.engine, config, LogReaders(), NOW).counts
    return counts, sorted(rows_as_tuples(ctx, "SELECT kind, stream, key FROM record_index"))


def rows_as_tuples(ctx: Ctx, sql: str) -> list[tuple[Any, ...]]:
    with ctx.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


Reader = Callable[[Ctx], Any]
READERS: dict[str, tuple[Reader, bool]] = {
    "show": (show, False),
    "segments_sql": (segments_sql, False),
    "segments_person": (segments_person, False),
    "nps": (nps_reads, False),
    "analytics": (analytics, False),
    "consents": (consents, False),
    "source": (source, False),
    "membership": (membership, False),
    "export": (export, False),
    "forget": (forget, True),
    "retention": (retention, True),
}
"""name -> (the reader, whether it changes the store: then the store is built again before the conversion)."""


@pytest.mark.parametrize("name", list(READERS))
def test_a_reader_gives_the_same_answer_after_the_activity_records_move_to_the_fast_path(
    name: str, store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CDP_PRIVACY_KEY", KEY)
    reader, destructive = READERS[name]
    engine = build(store_url)
    url = engine.url.render_as_string(hide_password=False).replace("+psycopg", "")
    ctx = Ctx(engine, url, tmp_path, *people(engine))
    try:
        before = reader(ctx)
        if destructive:
            reset(engine)
            engine = ctx.engine = build(store_url)
            assert people(engine) == (ctx.anna, ctx.bob)  # the same data in the same batches: the same ids
        convert(engine)
        after = reader(ctx)
    finally:
        ctx.engine.dispose()
    assert after == before


def test_the_writer_puts_a_known_persons_event_on_the_fast_path(store_url: str) -> None:
    """Bob's event of run r2 (he is known and settled by then) is stored with his profile and no set,
    and his 360 view and the events stream show it as his."""
    engine = make_engine(store_url)
    ensure_schema(engine)
    writer = ProfileWriter(engine, IDENTITY)
    for run, batch in batches():
        writer.write(batch, Checkpoint(graph="t", run_id=run))
    _, bob = people(engine)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT set_id, profile_id, identifiers FROM record_index WHERE stream = 'web.events' AND key = 'eb2'")
        ).one()
    assert stored.set_id is None and stored.profile_id == bob
    identifiers = stored.identifiers if isinstance(stored.identifiers, list) else json.loads(stored.identifiers)
    assert [tuple(i) for i in identifiers] == [("email", BOB["email"])]
    view = profile_view(engine, bob)
    assert ("web.events", "eb2") in {(r.stream, r.key) for r in view.records}
    assert "checkout" in {e.name for e in view.events}
    engine.dispose()
