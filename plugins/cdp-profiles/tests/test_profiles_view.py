"""The read side of the profile store: finding a profile, its 360° view, lists, and `cdp profiles`.

Each test builds its store with the real writer (identity resolution included), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from cdp_core.cli import build_app
from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from sqlalchemy import Engine
from typer.testing import CliRunner

from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store import tables
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.queries import (
    ProfileNotFound,
    find_profile,
    list_profiles,
    lookup_profile,
    profile_view,
)
from cdp_profiles.store.schema import ensure_schema

IDENTITY = IdentityConfig()
MERGE_REASON = "phone '+491712345678' on record crm.contacts|c2 belongs to both profiles"


def day(d: int, hour: int = 9) -> datetime:
    return datetime(2024, 5, d, hour, tzinfo=UTC)


def first_batch() -> list[Record]:
    anna = {"email": "anna@x.de"}
    records = [
        Record(
            stream="crm.contacts",
            key="c1",
            data={"first_name": "Anna", "last_name": "Schmidt", "city": "Berlin"},
            identifiers={"email": " Anna@X.de ", "hubspot_contact_id": "101"},
            occurred_at=day(1),
        ),
        # Anna again, as the shop knows her: no email, so a second profile for now.
        Record(
            stream="shop.customers",
            key="s1",
            data={"city": "Hamburg"},
            identifiers={"shopify_customer_id": "777", "phone": "0171 2345678"},
            occurred_at=day(2),
        ),
        Record(stream="crm.contacts", key="c9", data={"first_name": "Bob", "city": "Berlin"},
               identifiers={"email": "bob@y.de"}, occurred_at=day(3)),
        Record(stream="crm.contacts", key="c7", data={"name": "Carla Diaz", "city": "München", "note": "[red]vip[/]"},
               identifiers={"hubspot_contact_id": "777"}, occurred_at=day(3)),
    ]  # fmt: skip
    orders = [
        ("o1", {"order_id": "1001", "amount": "19.99", "currency": "EUR", "status": "paid"}, day(3)),
        ("o2", {"order_id": "1002", "total_price": "100", "currency": "EUR"}, day(10)),
        ("o3", {"order_id": "1003", "amount": "50", "currency": "EUR", "status": "refunded"}, day(11)),
        ("o4", {"order_id": "1004", "amount": "12.5", "currency": "USD", "items": [{"sku": "A1"}]}, day(12)),
    ]
    for key, data, when in orders:
        records.append(
            Record(stream="shop.orders", kind=RecordKind.order, key=key, data=data,
                   identifiers={"shopify_customer_id": "777"}, occurred_at=when)
        )  # fmt: skip
    for i in range(22):
        records.append(
            Record(stream="web.events", kind=RecordKind.event, key=f"e{i:02d}",
                   data={"event": "page_viewed", "path": f"/p/{i}"}, identifiers=anna,
                   occurred_at=day(5, 0) + timedelta(hours=i))
        )  # fmt: skip
    records += [
        Record(stream="survey.nps", kind=RecordKind.nps_response, key="n0", data={"score": 2}),  # anonymous
        Record(stream="survey.nps", kind=RecordKind.nps_response, key="n1", data={"score": 9, "comment": "great"},
               identifiers=anna, occurred_at=day(6)),
        Record(stream="survey.nps", kind=RecordKind.nps_response, key="n2",
               data={"score": "6", "comment": "slow delivery", "survey": "q2"}, identifiers=anna, occurred_at=day(20)),
        Record(stream="news.consents", kind=RecordKind.consent, key="k1",
               data={"purpose": "email", "status": "granted", "source": "signup form"}, identifiers=anna,
               occurred_at=day(1, 10)),
        Record(stream="news.consents", kind=RecordKind.consent, key="k2",
               data={"purpose": "email", "status": "revoked"}, identifiers=anna, occurred_at=day(15)),
        Record(stream="shop.consents", kind=RecordKind.consent, key="k3", data={"purpose": "ads", "status": "denied"},
               identifiers={"phone": "+49 171 2345678"}, occurred_at=day(2, 10)),
    ]  # fmt: skip
    return records


def second_batch() -> list[Record]:
    """One record with Anna's email and phone: it joins the CRM and the shop profile into one."""
    return [
        Record(stream="crm.contacts", key="c2", data={"last_name": "Schmidt-Meyer"},
               identifiers={"email": "anna@x.de", "phone": "+49 171 2345678"}, occurred_at=day(25)),
    ]  # fmt: skip


@dataclass
class Store:
    url: str
    engine: Engine
    anna: str
    shop_anna: str  # Anna's shop profile, merged into ``anna`` by the second batch


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    engine = make_engine(store_url)
    ensure_schema(engine)
    writer = ProfileWriter(engine, IDENTITY)
    first = Checkpoint(graph="t", run_id="r1")
    writer.write(first_batch(), first)
    assert first.rejected == []
    anna = find_profile(engine, "email:anna@x.de", IDENTITY)
    shop_anna = find_profile(engine, "shopify_customer_id:777", IDENTITY)
    assert anna and shop_anna and anna != shop_anna
    writer.write(second_batch(), Checkpoint(graph="t", run_id="r2"))
    try:
        yield Store(store_url, engine, anna, shop_anna)
    finally:
        engine.dispose()


def test_view_shows_everything_known_about_the_person(store: Store) -> None:
    view = profile_view(store.engine, store.anna)

    assert view.profile.id == store.anna
    assert view.profile.merged_ids == [store.shop_anna]
    assert view.profile.created_at is not None and view.profile.created_at.tzinfo is UTC
    assert [(t.name, t.value, t.source, t.set_at) for t in view.traits] == [
        ("city", "Hamburg", "shop.customers", day(2)),
        ("first_name", "Anna", "crm.contacts", day(1)),
        ("last_name", "Schmidt-Meyer", "crm.contacts", day(25)),
        ("nps_category", "detractor", "survey.nps", day(20)),
        ("nps_score", 6, "survey.nps", day(20)),
    ]
    assert [(i.type, i.value, i.source, i.first_seen, i.record) for i in view.identities] == [
        ("email", "anna@x.de", "crm.contacts", day(1), "crm.contacts|c1"),
        ("phone", "+491712345678", "shop.customers", day(2), "shop.customers|s1"),
        ("hubspot_contact_id", "101", "crm.contacts", day(1), "crm.contacts|c1"),
        ("shopify_customer_id", "777", "shop.customers", day(2), "shop.customers|s1"),
    ]

    assert len(view.merges) == 1
    merge = view.merges[0]
    assert (merge.winner, merge.loser, merge.run_id) == (store.anna, store.shop_anna, "r2")
    assert (merge.identifier_type, merge.identifier_value) == ("phone", "+491712345678")
    assert merge.record == "crm.contacts|c2"
    assert merge.reason == MERGE_REASON
    assert merge.undone_at is None

    assert view.event_count == 22
    assert [e.key for e in view.events] == [f"e{i:02d}" for i in range(21, 1, -1)]  # the last 20, newest first
    assert (view.events[0].name, view.events[0].properties["path"], view.events[0].occurred_at) == (
        "page_viewed", "/p/21", day(5, 0) + timedelta(hours=21),
    )  # fmt: skip

    orders = view.orders
    assert orders.count == 4
    assert orders.totals == {"EUR": Decimal("119.99"), "USD": Decimal("12.50")}  # the refunded order is left out
    assert (orders.first_order_at, orders.last_order_at) == (day(3), day(12))
    assert [(o.order_id, o.amount, o.currency, o.status) for o in orders.recent] == [
        ("1004", Decimal("12.50"), "USD", None),
        ("1003", Decimal("50.00"), "EUR", "refunded"),
        ("1002", Decimal("100.00"), "EUR", None),
        ("1001", Decimal("19.99"), "EUR", "paid"),
    ]
    assert orders.recent[0].items == [{"sku": "A1"}]

    assert [(n.score, n.category, n.comment, n.survey, n.answered_at) for n in view.nps] == [
        (6, "detractor", "slow delivery", "q2", day(20)),
        (9, "promoter", "great", None, day(6)),
    ]
    consents = view.consents
    assert [(c.purpose, c.status, c.source, c.stream, c.occurred_at) for c in consents.latest] == [
        ("ads", "denied", None, "shop.consents", day(2, 10)),
        ("email", "revoked", None, "news.consents", day(15)),
    ]
    assert [(c.key, c.purpose, c.status, c.source) for c in consents.history] == [
        ("k2", "email", "revoked", None),
        ("k3", "ads", "denied", None),
        ("k1", "email", "granted", "signup form"),
    ]

    expected = {("crm.contacts", k, "profile") for k in ("c1", "c2")} | {("shop.customers", "s1", "profile")}
    expected |= {("shop.orders", f"o{i}", "order") for i in range(1, 5)}
    expected |= {("web.events", f"e{i:02d}", "event") for i in range(22)}
    expected |= {("survey.nps", "n1", "nps_response"), ("survey.nps", "n2", "nps_response")}
    expected |= {("news.consents", k, "consent") for k in ("k1", "k2")} | {("shop.consents", "k3", "consent")}
    assert {(r.stream, r.key, r.kind) for r in view.records} == expected
    assert len(view.records) == len(expected)
    assert view.records[0].key == "c1" and view.records[-1].key == "c2"  # oldest first

    # A merged-away id shows the surviving profile, with the same content.
    assert profile_view(store.engine, store.shop_anna) == view
    with pytest.raises(ProfileNotFound):
        profile_view(store.engine, "0" * 32)


def test_a_person_with_little_data_has_empty_sections(store: Store) -> None:
    bob = find_profile(store.engine, "bob@y.de", IDENTITY)
    assert bob is not None
    view = profile_view(store.engine, bob)
    assert [(t.name, t.value) for t in view.traits] == [("city", "Berlin"), ("first_name", "Bob")]
    assert view.merges == [] and view.events == [] and view.event_count == 0 and view.nps == []
    assert view.orders.count == 0 and view.orders.totals == {} and view.orders.first_order_at is None
    assert view.consents.latest == [] and view.profile.merged_ids == []


@pytest.mark.parametrize(
    "identifier",
    [
        "email:anna@x.de",
        "email: ANNA@X.DE ",  # normalized like the store does
        " Anna@X.de ",  # a bare email
        "0171 2345678",  # a bare phone in national format (default region DE)
        "phone:0171/2345678",
        "+49 171 2345678",
        "phone:+491712345678",
        "hubspot_contact_id:101",
        "shopify_customer_id:777",
        "101",  # a bare value of any identifier type, matched exactly
    ],
)
def test_every_identifier_form_finds_the_profile(store: Store, identifier: str) -> None:
    found = lookup_profile(store.engine, identifier, IDENTITY)
    assert found.profile_id == store.anna, found
    assert found.merged_from is None and found.problem is None
    assert find_profile(store.engine, identifier, IDENTITY) == store.anna


def test_profile_ids_and_merged_away_ids(store: Store) -> None:
    for identifier in (store.anna, f"profile:{store.anna}", f"profile:{store.anna.upper()}"):
        found = lookup_profile(store.engine, identifier, IDENTITY)
        assert (found.profile_id, found.merged_from, found.matched) == (store.anna, None, f"profile:{store.anna}")
    for identifier in (store.shop_anna, f"profile:{store.shop_anna}"):
        found = lookup_profile(store.engine, identifier, IDENTITY)
        assert (found.profile_id, found.merged_from) == (store.anna, store.shop_anna)


@pytest.mark.parametrize(
    ("identifier", "problem"),
    [
        ("email:nobody@x.de", None),
        ("nobody@x.de", None),
        ("email:not-an-email", "not a valid email address: 'not-an-email'"),
        ("email:test@test.com", "email 'test@test.com' is blocked"),
        ("phone:12", "not a valid phone number for region DE: '12'"),
        ("profile:" + "0" * 32, "no profile has that id"),
        ("0" * 32, None),
        ("meta_lead_id:101", None),  # the value exists, but as another type
        ("", "an empty identifier"),
    ],
)
def test_unknown_identifiers_find_nothing_and_say_why(store: Store, identifier: str, problem: str | None) -> None:
    found = lookup_profile(store.engine, identifier, IDENTITY)
    assert (found.profile_id, found.problem) == (None, problem)
    assert find_profile(store.engine, identifier, IDENTITY) is None


def test_a_bare_value_two_people_share_is_ambiguous(store: Store) -> None:
    # "777" is Anna's shopify_customer_id and Carla's hubspot_contact_id.
    found = lookup_profile(store.engine, "777", IDENTITY)
    assert found.profile_id is None
    assert found.problem is not None and found.problem.startswith("ambiguous: ")
    assert "shopify_customer_id:777" in found.problem and "hubspot_contact_id:777" in found.problem
    carla = find_profile(store.engine, "hubspot_contact_id:777", IDENTITY)
    assert carla not in (None, store.anna)


def test_list_profiles_with_filters(store: Store) -> None:
    everyone = list_profiles(store.engine)
    names = {p.name for p in everyone}
    assert names == {"Anna Schmidt-Meyer", "Bob", "Carla Diaz"}  # the merged-away profile is not listed
    assert everyone[0].id == store.anna  # most recently updated first
    anna = everyone[0]
    assert (anna.email, anna.phone, anna.orders, anna.nps_score, anna.nps_category) == (
        "anna@x.de", "+491712345678", 4, 6, "detractor",
    )  # fmt: skip
    bob = next(p for p in everyone if p.name == "Bob")
    assert (bob.email, bob.phone, bob.orders, bob.nps_score) == ("bob@y.de", None, 0, None)

    def names_for(**kwargs: Any) -> list[str | None]:
        return sorted(p.name or "" for p in list_profiles(store.engine, **kwargs))

    assert names_for(where={"city": "berlin"}) == ["Bob"]  # Anna's latest city is Hamburg
    assert names_for(where={"city": "HAMBURG"}) == ["Anna Schmidt-Meyer"]
    assert names_for(where={"city": "münchen"}) == ["Carla Diaz"]
    assert names_for(where={"nps_score": "6"}) == ["Anna Schmidt-Meyer"]  # a number trait
    assert names_for(where={"city": "Berlin", "first_name": "Bob"}) == ["Bob"]
    assert names_for(where={"city": "Berlin", "first_name": "Anna"}) == []
    assert names_for(where={"no_such_trait": "x"}) == []
    assert names_for(has="phone") == ["Anna Schmidt-Meyer"]
    assert names_for(has="hubspot_contact_id") == ["Anna Schmidt-Meyer", "Carla Diaz"]
    assert names_for(has="meta_lead_id") == []
    page = list_profiles(store.engine, limit=2) + list_profiles(store.engine, limit=2, offset=2)
    assert [p.id for p in page] == [p.id for p in everyone]


STORE_CONNECTOR = '[connectors.store]\ntype = "profile_store"\n'
"""A config is not empty (an empty one is a problem): the store as a connector."""


# -- the CLI --------------------------------------------------------------------------------


def cdp(store: Store, tmp_path: Path, *args: str) -> Any:
    config = tmp_path / "connectors.toml"
    config.write_text(f'[store]\nurl = "{store.url}"\n' + STORE_CONNECTOR, encoding="utf-8")
    return CliRunner().invoke(build_app(), [*args, "-c", str(config)])


def test_cli_show_json_is_pure_json(store: Store, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "profiles", "show", "email: ANNA@X.DE", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing but JSON on stdout
    assert data["lookup"]["matched"] == "email:anna@x.de" and data["lookup"]["merged_from"] is None
    assert data["profile"]["id"] == store.anna
    assert data["merges"][0]["reason"] == MERGE_REASON
    assert data["orders"]["totals"] == {"EUR": "119.99", "USD": "12.50"}
    assert data["orders"]["first_order_at"] == "2024-05-03T09:00:00Z"
    assert [n["score"] for n in data["nps"]] == [6, 9]
    assert {t["name"]: t["value"] for t in data["traits"]}["city"] == "Hamburg"


def test_cli_show_explains_a_merged_id(store: Store, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "profiles", "show", store.shop_anna)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert f"profile {store.shop_anna} was merged into this one" in out
    assert store.anna in out and "Anna Schmidt-Meyer" in out
    assert MERGE_REASON in out  # why the two are one person
    for text in ("Hamburg", "slow delivery", "revoked", "119.99 EUR", "12.50 USD", "events (last 20 of 22)"):
        assert text in out, text

    as_json = cdp(store, tmp_path, "profiles", "show", store.shop_anna, "--json")
    assert json.loads(as_json.stdout)["lookup"]["merged_from"] == store.shop_anna


def test_show_gives_per_purpose_the_decision_in_force_its_source_and_time_and_whether_it_allows_sending(
    store: Store, tmp_path: Path
) -> None:
    (tmp_path / "connectors.toml").write_text(
        f'[store]\nurl = "{store.url}"\n' + STORE_CONNECTOR + '[consent.purposes.partners]\npolicy = "opt_out"\n'
    )
    result = CliRunner().invoke(build_app(), ["profiles", "show", "email:anna@x.de", "-c", str(tmp_path / "connectors.toml"), "--json"])
    assert result.exit_code == 0, result.output
    purposes = {p["purpose"]: p for p in json.loads(result.stdout)["consents"]["purposes"]}
    assert list(purposes) == ["ads", "analytics", "crm", "email", "partners", "personalization"]
    # ads: opt-in and denied (merged in from the shop profile) -> no
    assert {k: purposes["ads"][k] for k in ("policy", "status", "stream", "key", "occurred_at", "allowed")} == {
        "policy": "opt_in", "status": "denied", "stream": "shop.consents", "key": "k3",
        "occurred_at": "2024-05-02T10:00:00Z", "allowed": False,
    }  # fmt: skip
    # email: granted on day 1 by the signup form, revoked on day 15: the revocation is in force
    assert (purposes["email"]["status"], purposes["email"]["occurred_at"], purposes["email"]["allowed"]) == (
        "revoked", "2024-05-15T09:00:00Z", False
    )
    # opt-out purposes without a decision allow sending; a configured one is listed too
    assert [(purposes[p]["status"], purposes[p]["allowed"]) for p in ("analytics", "partners")] == [(None, True)] * 2

    out = cdp(store, tmp_path, "profiles", "show", "email:anna@x.de").stdout
    assert "consent by purpose" in out and "consent history" in out
    table, history = out.split("consent by purpose")[1].split("consent history")
    [ads] = [line for line in table.splitlines() if line.lstrip().startswith("ads ")]
    assert "opt_in" in ads and "denied" in ads and "2024-05-02 10:00" in ads and "shop.consents" in ads
    assert ads.rstrip().endswith("no")
    [analytics] = [line for line in table.splitlines() if line.lstrip().startswith("analytics ")]
    assert "no decision" in analytics and analytics.rstrip().endswith("yes")
    [signup] = [line for line in history.splitlines() if "signup form" in line]
    assert "granted" in signup and "in force" not in signup  # the history: superseded by the revocation


def test_cli_show_unknown_identifier_fails(store: Store, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "profiles", "show", "email:nobody@x.de")
    assert result.exit_code == 1
    assert "no profile for email:nobody@x.de" in result.stderr
    as_json = cdp(store, tmp_path, "profiles", "show", "email:nobody@x.de", "--json")
    assert (as_json.exit_code, as_json.stdout) == (1, "")
    invalid = cdp(store, tmp_path, "profiles", "show", "email:nope")
    assert invalid.exit_code == 1 and "not a valid email address" in invalid.stderr


def test_cli_list(store: Store, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "profiles", "list", "--json", "--where", "city=Berlin", "--where", "first_name=bob")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["name"], r["email"], r["orders"]) for r in rows] == [("Bob", "bob@y.de", 0)]

    human = cdp(store, tmp_path, "profiles", "list", "--has", "phone", "--limit", "5")
    assert human.exit_code == 0, human.output
    assert store.anna in human.stdout and "Anna Schmidt-Meyer" in human.stdout and "Bob" not in human.stdout

    empty = cdp(store, tmp_path, "profiles", "list", "--where", "city=Atlantis")
    assert empty.exit_code == 0 and "no profiles match" in empty.stderr
    bad = cdp(store, tmp_path, "profiles", "list", "--where", "city ==")
    assert bad.exit_code == 2 and "--where 'city =='" in bad.stderr


def test_cli_prints_data_as_text_not_markup(store: Store, tmp_path: Path) -> None:
    result = cdp(store, tmp_path, "profiles", "show", "hubspot_contact_id:777")
    assert result.exit_code == 0, result.output
    assert "[red]vip[/]" in result.stdout and "Carla Diaz" in result.stdout


# -- traits written straight into profiles.traits and profiles.trait_sources ---------------------


def key(source: str | None = "crm", when: str | None = "2024-05-01T09:00:00.000000", record: str = "c1") -> str:
    """The sort key of a trait's deciding record, TIME|STREAM|KEY (TIME naive UTC, "~": unknown)."""
    return f"{when or '~'}|{source or ''}|{record}"


def written(traits: dict[str, tuple[Any, str]], **exact: str) -> dict[str, Any]:
    """The columns as the writer makes them: name -> (value, sort key); "x" (exact sums) is its own state."""
    refs = list(dict.fromkeys(k for _, k in traits.values()))
    sources: dict[str, Any] = {"r": refs, "n": {name: refs.index(k) for name, (_, k) in traits.items()}}
    if exact:
        sources["x"] = exact
    return {"traits": {name: value for name, (value, _) in traits.items()}, "trait_sources": sources}


def migrated(traits: dict[str, tuple[Any, str]]) -> dict[str, Any]:
    """The columns as migration 0005 makes them: "n" gives the sort key itself (no record key)."""
    return {
        "traits": {name: value for name, (value, _) in traits.items()},
        "trait_sources": {"r": [], "n": {name: k for name, (_, k) in traits.items()}},
    }


ANN, BEN, OLD = "a" * 32, "b" * 32, "c" * 32  # OLD was merged into ANN
COLUMNS: dict[str, dict[str, Any]] = {
    ANN: written(
        {
            "last_name": ("Schmidt", key()),
            "first_name": ("Anna", key()),
            "city": ("München", key("shop", "2024-05-02T09:00:00.250000", "o7")),
            "nps_score": (6, key("survey.nps", "2024-05-20T09:00:00.000000", "r1")),
            "nps_category": ("detractor", key("survey.nps", "2024-05-20T09:00:00.000000", "r1")),
            "vip": (True, key()),
            "tags": (["a", "b"], key(when=None)),
            "visits": (3, key()),
            "note": (None, key(None, None)),
            "Zip": ("80331", key()),
            'say "hi"': ("hello", key()),
        },
        visits="3",
    ),
    BEN: migrated(
        {
            "name": ("Ben Bauer", key(record="")),
            "nps_score": ("7", key(record="")),
            "city": ("Berlin", key("shop", None, "")),
        }
    ),
    OLD: written({"city": ("Ulm", key())}),
}


@pytest.fixture
def traits_engine(store_url: str) -> Iterator[Engine]:
    engine = make_engine(store_url)
    ensure_schema(engine)
    profiles, identities = tables.profiles, tables.identities
    with engine.begin() as conn:
        conn.execute(
            profiles.insert(),
            [
                {"id": pid, "founder": "s", "sort_key": "k", "created_at": day(1), "updated_at": day(1 + i),
                 "merged_into": ANN if pid == OLD else None, **columns}
                for i, (pid, columns) in enumerate(COLUMNS.items())
            ],
        )  # fmt: skip
        conn.execute(
            identities.insert(),
            [{"type": "email", "value": "anna@x.de", "profile_id": ANN, "source": "crm", "first_seen": None}],
        )
    try:
        yield engine
    finally:
        engine.dispose()


def test_view_reads_the_traits_and_their_sources(traits_engine: Engine) -> None:
    view = profile_view(traits_engine, ANN)
    assert [(t.name, t.value, t.source, t.set_at) for t in view.traits] == [
        ("Zip", "80331", "crm", day(1)),
        ("city", "München", "shop", day(2).replace(microsecond=250_000)),
        ("first_name", "Anna", "crm", day(1)),
        ("last_name", "Schmidt", "crm", day(1)),
        ("note", None, None, None),
        ("nps_category", "detractor", "survey.nps", day(20)),
        ("nps_score", 6, "survey.nps", day(20)),
        ('say "hi"', "hello", "crm", day(1)),
        ("tags", ["a", "b"], "crm", None),
        ("vip", True, "crm", day(1)),
        ("visits", 3, "crm", day(1)),
    ]
    assert all(t.set_at is None or t.set_at.tzinfo is UTC for t in view.traits)
    dumped = view.model_dump(mode="json")["traits"]
    assert {field for t in dumped for field in t} == {"name", "value", "source", "set_at"}  # no sort key, no "x"
    assert profile_view(traits_engine, OLD).traits == view.traits  # a merged-away id shows the survivor's traits
    # a migrated store: "n" gives the sort key itself, and "~" (no time) gives no set_at
    assert [(t.name, t.value, t.source, t.set_at) for t in profile_view(traits_engine, BEN).traits] == [
        ("city", "Berlin", "shop", None),
        ("name", "Ben Bauer", "crm", day(1)),
        ("nps_score", "7", "crm", day(1)),
    ]


def test_list_reads_the_traits(traits_engine: Engine) -> None:
    rows = list_profiles(traits_engine)
    assert [(r.id, r.name, r.nps_score, r.nps_category) for r in rows] == [
        (BEN, "Ben Bauer", None, None),  # a score that is not a number is not shown as one
        (ANN, "Anna Schmidt", 6, "detractor"),
    ]

    def ids(**where: str) -> list[str]:
        return [r.id for r in list_profiles(traits_engine, where=where)]

    assert ids(city="münchen") == [ANN]
    assert ids(city="ulm") == []  # the merged-away profile is not listed
    assert ids(nps_score="6") == [ANN] and ids(nps_score="7") == [BEN]  # number and string compare as text
    assert ids(vip="TRUE") == [ANN] and ids(visits="3") == [ANN]
    assert ids(tags="a") == []  # lists are not searched inside
    assert ids(note="null") == [] and ids(note="") == []  # a null value matches nothing
    assert ids(**{'say "hi"': "Hello"}) == [ANN]
    assert ids(city="Berlin", name="ben bauer") == [BEN]
    assert ids(city="Berlin", first_name="Anna") == []
    assert ids(r=key()) == [] and ids(x="3") == [] and ids(no_such_trait="x") == []  # trait_sources holds no traits
