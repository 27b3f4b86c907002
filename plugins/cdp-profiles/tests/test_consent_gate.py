"""The consent gate on its own: policies, the latest decision, merged profiles, unknown people; SQLite and PostgreSQL.

The store is built with the real writer (identity resolution included); the gate is
handed records as the runner would hand them to a destination node's write.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from cdp_core.base import ConnectorContext
from cdp_core.records import Record, RecordKind
from cdp_core.store.checkpoint import Checkpoint
from cdp_core.store.engine import make_engine
from sqlalchemy import Engine, event

from cdp_profiles.consent import ConsentConfig, Policy, Purpose
from cdp_profiles.consent_gate import ConsentGate
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.store.profiles import ProfileWriter
from cdp_profiles.store.queries import find_profile
from cdp_profiles.store.schema import ensure_schema

IDENTITY = IdentityConfig()


def day(d: int) -> datetime:
    return datetime(2024, 5, d, 9, tzinfo=UTC)


def person(key: str, email: str, **identifiers: str) -> Record:
    return Record(stream="crm.contacts", key=key, data={"first_name": key}, identifiers={"email": email, **identifiers})


def consent(key: str, who: dict[str, str], purpose: str, status: str, when: datetime | None) -> Record:
    return Record(
        stream="consents", kind=RecordKind.consent, key=key, identifiers=who,
        data={"purpose": purpose, "status": status, "source": "test"}, occurred_at=when,
    )  # fmt: skip


@dataclass
class Store:
    url: str
    engine: Engine

    def id(self, identifier: str) -> str:
        found = find_profile(self.engine, identifier, IDENTITY)
        assert found is not None, identifier
        return found


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    engine = make_engine(store_url)
    ensure_schema(engine)
    writer = ProfileWriter(engine, IDENTITY)
    records = [
        person("granted", "granted@x.de"),
        person("none", "none@x.de"),
        person("denied", "denied@x.de"),
        person("revoked", "revoked@x.de"),
        person("regranted", "regranted@x.de"),
        person("timeless", "timeless@x.de"),
        # two profiles (no shared identifier yet): the shop one revoked ads, the CRM one granted it earlier
        person("crm_anna", "anna@x.de"),
        Record(stream="shop.customers", key="shop_anna", data={}, identifiers={"phone": "+491712345678"}),
        consent("k1", {"email": "granted@x.de"}, "ads", "granted", day(1)),
        consent("k2", {"email": "denied@x.de"}, "ads", "denied", day(1)),
        consent("k3", {"email": "revoked@x.de"}, "ads", "granted", day(1)),
        consent("k4", {"email": "revoked@x.de"}, "ads", "revoked", day(5)),  # later: wins
        consent("k5", {"email": "regranted@x.de"}, "ads", "revoked", day(2)),
        consent("k6", {"email": "regranted@x.de"}, "ads", "granted", day(6)),  # later: wins
        consent("k7", {"email": "timeless@x.de"}, "ads", "revoked", None),  # no time: oldest
        consent("k8", {"email": "timeless@x.de"}, "ads", "granted", day(1)),
        consent("k9", {"email": "revoked@x.de"}, "analytics", "revoked", day(5)),
        consent("k10", {"email": "anna@x.de"}, "ads", "granted", day(1)),
        consent("k11", {"phone": "+491712345678"}, "ads", "revoked", day(3)),
    ]
    checkpoint = Checkpoint(graph="t", run_id="r1")
    writer.write(records, checkpoint)
    assert checkpoint.rejected == []
    try:
        yield Store(store_url, engine)
    finally:
        engine.dispose()


def gate(store: Store, purpose: str = "ads", consent_config: ConsentConfig | None = None) -> ConsentGate:
    sections = {"consent": consent_config or ConsentConfig(), "identity": IDENTITY}
    return ConsentGate(ConnectorContext(name="out", store_url=store.url, sections=sections), purpose)


def by_email(*emails: str) -> list[Record]:
    return [Record(stream="x.y", key=e, data={}, identifiers={"email": e}) for e in emails]


def keys(records: list[Record]) -> list[str]:
    return [r.key for r in records]


def test_opt_in_sends_only_those_whose_latest_decision_is_granted(store: Store) -> None:
    check = gate(store)
    kept, held = check.check(by_email("granted@x.de", "none@x.de", "denied@x.de", "revoked@x.de", "regranted@x.de"))
    check.close()
    assert keys(kept) == ["granted@x.de", "regranted@x.de"]
    assert held == {"no ads consent": 1, "ads consent denied": 1, "ads consent revoked": 1}


def test_opt_out_sends_everyone_but_those_who_denied_or_revoked(store: Store) -> None:
    check = gate(store, "analytics")
    kept, held = check.check(by_email("granted@x.de", "none@x.de", "revoked@x.de", "stranger@x.de"))
    assert keys(kept) == ["granted@x.de", "none@x.de", "stranger@x.de"]
    assert held == {"analytics consent revoked": 1}


def test_the_policy_comes_from_the_consent_section(store: Store) -> None:
    config = ConsentConfig(purposes={"ads": Purpose(policy=Policy.opt_out)})
    kept, held = gate(store, "ads", config).check(by_email("none@x.de", "revoked@x.de", "stranger@x.de"))
    assert keys(kept) == ["none@x.de", "stranger@x.de"] and held == {"ads consent revoked": 1}


def test_the_latest_decision_wins_and_one_without_a_time_counts_as_oldest(store: Store) -> None:
    kept, held = gate(store).check(by_email("revoked@x.de", "regranted@x.de", "timeless@x.de"))
    assert keys(kept) == ["regranted@x.de", "timeless@x.de"] and held == {"ads consent revoked": 1}


def test_an_unknown_person_has_no_decision(store: Store) -> None:
    kept, held = gate(store).check(by_email("stranger@x.de") + [Record(stream="x.y", key="nobody", data={})])
    assert kept == [] and held == {"no ads consent": 2}


def test_identifiers_are_normalized_as_the_store_normalizes_them(store: Store) -> None:
    kept, _ = gate(store).check(by_email(" Granted@X.de "))
    assert keys(kept) == [" Granted@X.de "]


def test_records_from_the_store_are_found_by_their_profile_id(store: Store) -> None:
    granted, revoked = store.id("email:granted@x.de"), store.id("email:revoked@x.de")
    batch = [
        Record(stream="store.profiles", key=granted, data={"profile_id": granted}, identifiers={"email": "revoked@x.de"}),
        Record(stream="store.events", kind=RecordKind.event, key="e|1", data={}, identifiers={"cdp_profile_id": revoked}),
        Record(stream="store.profiles", key=revoked, data={"profile_id": revoked}),
    ]
    kept, held = gate(store).check(batch)
    # the profile id decides, not an identifier the record also carries
    assert keys(kept) == [granted] and held == {"ads consent revoked": 2}


def test_merged_profiles_answer_with_the_survivors_latest_decision(store: Store) -> None:
    crm_anna, shop_anna = store.id("email:anna@x.de"), store.id("phone:+491712345678")
    assert crm_anna != shop_anna
    # apart: the CRM profile granted ads, the shop profile revoked it
    kept, held = gate(store).check(by_email("anna@x.de"))
    assert len(kept) == 1 and held == {}
    # one record with both identifiers merges them: the latest decision of the person is the revocation
    writer = ProfileWriter(store.engine, IDENTITY)
    writer.write([person("link", "anna@x.de", phone="+491712345678")], Checkpoint(graph="t", run_id="r2"))
    assert store.id("email:anna@x.de") == store.id("phone:+491712345678")
    stale = [Record(stream="store.profiles", key=pid, data={"profile_id": pid}) for pid in (crm_anna, shop_anna)]
    kept, held = gate(store).check(stale + by_email("anna@x.de"))
    assert kept == [] and held == {"ads consent revoked": 3}


def test_a_record_that_stands_for_two_people_is_sent_only_if_both_may_be(store: Store) -> None:
    both = Record(stream="x.y", key="both", data={}, identifiers={"email": "granted@x.de", "phone": "+491712345678"})
    kept, held = gate(store).check([both])
    assert kept == [] and held == {"ads consent revoked": 1}


def test_an_unknown_purpose_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown consent purpose 'adz'; purposes: ads, analytics, crm, email, personalization"):
        gate(store, "adz")


def test_a_batch_costs_the_same_queries_whatever_its_size(store: Store) -> None:
    check = gate(store)
    check.check(by_email("granted@x.de"))  # opens the engine, migrates: not counted
    statements: list[str] = []
    event.listen(check.engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    check.check(by_email("granted@x.de", "stranger@x.de"))
    small = len(statements)
    statements.clear()
    check.check(by_email(*(f"p{i}@x.de" for i in range(500)), "granted@x.de", "revoked@x.de"))
    assert len(statements) == small <= 3
    check.close()
