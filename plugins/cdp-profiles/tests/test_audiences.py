"""The audience mirror (cdp_profiles/audiences.py): staging, the diff, confirming, failed runs.

Every test with ``store_url`` runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from cdp_core.records import Record

from cdp_profiles.audiences import (
    AudienceMirror,
    Member,
    chunked,
    member_key,
    person_fields,
    row_hash,
    sha256_hex,
)


def _member(name: str, **row: str) -> Member:
    return Member(member_key("email", f"{name}@example.com"), {"EMAIL": sha256_hex(f"{name}@example.com"), **row}, name)


@pytest.fixture
def mirror(store_url: str) -> Iterator[AudienceMirror]:
    mirror = AudienceMirror(store_url, "ads", "aud-1").open()
    yield mirror
    mirror.close()


def _pass(mirror: AudienceMirror, members: list[Member]) -> tuple[list[Member], list[Member]]:
    """One complete pass as a destination's finish() runs it: upload everything, confirm, clear."""
    mirror.stage(members)
    upserts = [c.member for chunk in mirror.upserts() for c in chunk]
    removals = [m for chunk in mirror.removals() for m in chunk]
    mirror.confirm_removed(removals)
    mirror.confirm_upserted(upserts)
    mirror.clear_pending()
    return upserts, removals


# -- helpers -----------------------------------------------------------------------------------


def test_sha256_hex_is_hashlib_of_the_utf8_bytes() -> None:
    assert sha256_hex("john.doe@example.com") == hashlib.sha256(b"john.doe@example.com").hexdigest()
    assert sha256_hex("zoë") == hashlib.sha256("zoë".encode()).hexdigest()


def test_member_key_names_the_identifier_kind() -> None:
    assert member_key("email", "a@x.com") == sha256_hex("email:a@x.com")
    assert member_key("email", "491") != member_key("phone", "491")


def test_row_hash_ignores_key_order() -> None:
    assert row_hash({"A": "1", "B": "2"}) == row_hash({"B": "2", "A": "1"})
    assert row_hash({"A": "1"}) != row_hash({"A": "2"})


def test_chunked() -> None:
    assert [list(c) for c in chunked([1, 2, 3, 4, 5], 2)] == [[1, 2], [3, 4], [5]]
    assert list(chunked([], 3)) == []
    with pytest.raises(ValueError):
        list(chunked([1], 0))


def test_person_fields_prefers_identifiers_then_traits() -> None:
    record = Record(
        stream="store.profiles_all",
        key="p1",
        data={"email": "old@x.com", "firstname": "Zoë", "address": {"zip": "10115"}, "city": " ", "profile_id": "p1"},
        identifiers={"email": "new@x.com", "phone": "+491711234567"},
    )
    fields = person_fields(record)
    assert fields.get("email") == "new@x.com"
    assert fields.get("phone") == "+491711234567"
    assert fields.get("first_name") == "Zoë"
    assert fields.get("city") is None  # blank counts as absent
    assert fields.get("extern_id") == "p1"
    overridden = person_fields(record, {"zip": "data.address.zip", "email": "email", "crm": "identifiers.phone"})
    assert overridden.get("zip") == "10115"
    assert overridden.get("email") == "old@x.com"
    assert overridden.get("crm") == "+491711234567"


# -- the mirror --------------------------------------------------------------------------------


def test_first_pass_is_a_full_upload(mirror: AudienceMirror) -> None:
    members = [_member(n) for n in ("ann", "bob", "cy")]
    assert mirror.stage(members, run_id="r1") == 3
    plan = mirror.plan()
    assert (plan.staged, plan.confirmed, plan.additions, plan.changed, plan.removals) == (3, 0, 3, 0, 0)
    assert plan.first_upload and not plan.empties_audience
    changes = [c for chunk in mirror.upserts() for c in chunk]
    assert sorted(c.member.record_key for c in changes) == ["ann", "bob", "cy"]
    assert {c.kind for c in changes} == {"add"}
    assert [m for chunk in mirror.removals() for m in chunk] == []
    mirror.confirm_upserted(c.member for c in changes)
    mirror.clear_pending()
    assert mirror.confirmed() == {m.key: m.row for m in members}
    assert mirror.staged_record_keys() == []


def test_second_pass_sends_one_removal_and_one_addition(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann"), _member("bob"), _member("cy")])
    mirror.stage([_member("ann"), _member("cy"), _member("dee")])
    plan = mirror.plan()
    assert (plan.additions, plan.changed, plan.removals, plan.unchanged) == (1, 0, 1, 2)
    assert not plan.first_upload
    upserts, removals = _pass(mirror, [])
    assert [m.record_key for m in upserts] == ["dee"]
    assert [m.key for m in removals] == [_member("bob").key]
    assert removals[0].row == _member("bob").row  # the row it was uploaded with, to remove it by
    assert set(mirror.confirmed()) == {_member(n).key for n in ("ann", "cy", "dee")}


def test_a_changed_row_is_an_upsert_of_kind_change(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann", FN=sha256_hex("ann"))])
    mirror.stage([_member("ann", FN=sha256_hex("anne"))])
    plan = mirror.plan()
    assert (plan.additions, plan.changed, plan.removals) == (0, 1, 0)
    [[change]] = list(mirror.upserts())
    assert change.kind == "change"
    assert change.previous == {"EMAIL": sha256_hex("ann@example.com"), "FN": sha256_hex("ann")}
    assert change.member.row["FN"] == sha256_hex("anne")


def test_an_unchanged_pass_sends_nothing(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann"), _member("bob")])
    upserts, removals = _pass(mirror, [_member("bob"), _member("ann")])
    assert upserts == [] and removals == []


def test_a_failed_run_changes_nothing_and_a_resumed_run_sees_the_whole_input(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann"), _member("bob"), _member("cy")])
    before = mirror.confirmed()
    # Run 2 reads one page (ann), then its source fails: finish() is never called.
    mirror.stage([_member("ann")], run_id="r2")
    assert mirror.confirmed() == before
    # Run 3 resumes the source after that page (cy; bob is gone): the staged page still counts.
    other = AudienceMirror(mirror.store_url, "ads", "aud-1", engine=mirror.engine)
    other.stage([_member("cy")], run_id="r3")
    plan = other.plan()
    assert (plan.staged, plan.additions, plan.removals) == (2, 0, 1)
    assert [m.key for chunk in other.removals() for m in chunk] == [_member("bob").key]


def test_clear_pending_starts_the_next_pass_afresh(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann"), _member("bob")])
    mirror.stage([_member("ann"), _member("bob")])
    mirror.clear_pending()  # e.g. the upload failed: nothing was confirmed, the pass is over
    mirror.stage([_member("ann")])
    assert mirror.plan().removals == 1


def test_staging_is_an_upsert_by_member_key(mirror: AudienceMirror) -> None:
    mirror.stage([_member("ann"), _member("bob")])
    mirror.stage([_member("ann"), Member(_member("bob").key, {"EMAIL": "x"}, "bob-2")])
    assert sorted(mirror.staged_record_keys()) == ["ann", "bob-2"]
    assert mirror.plan().staged == 2
    assert mirror.stage([]) == 0


def test_audiences_and_destinations_are_kept_apart(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann")])
    other_audience = AudienceMirror(mirror.store_url, "ads", "aud-2", engine=mirror.engine)
    other_destination = AudienceMirror(mirror.store_url, "ads-2", "aud-1", engine=mirror.engine)
    other_audience.stage([_member("bob")])
    assert other_audience.plan().removals == 0 and other_audience.plan().first_upload
    assert other_destination.plan().confirmed == 0
    assert mirror.plan().staged == 0 and mirror.plan().confirmed == 1


def test_chunks_page_by_key_and_confirming_while_iterating_is_safe(mirror: AudienceMirror) -> None:
    members = [_member(f"p{n:02d}") for n in range(7)]
    mirror.stage(members)
    sizes, seen = [], []
    for chunk in mirror.upserts(chunk_size=3):
        sizes.append(len(chunk))
        seen += [c.member.key for c in chunk]
        mirror.confirm_upserted(c.member for c in chunk)
    assert sizes == [3, 3, 1]
    assert seen == sorted(m.key for m in members)
    mirror.clear_pending()
    mirror.stage(members[:2])
    removed = []
    for chunk in mirror.removals(chunk_size=2):
        assert len(chunk) <= 2
        removed += chunk
        mirror.confirm_removed(chunk)
    assert sorted(m.key for m in removed) == sorted(m.key for m in members[2:])
    assert set(mirror.confirmed()) == {m.key for m in members[:2]}


def test_confirm_all_makes_the_staged_set_confirmed_but_for_refused_operations(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann"), _member("bob"), _member("cy")])
    mirror.stage([_member("ann", FN="new"), _member("dee"), _member("eve")])
    removals = [m for chunk in mirror.removals() for m in chunk]
    refused_removal = next(m for m in removals if m.key == _member("bob").key)
    mirror.confirm_all(failed_upserts=[_member("eve").key], failed_removals=[refused_removal])
    confirmed = mirror.confirmed()
    assert set(confirmed) == {_member(n).key for n in ("ann", "bob", "dee")}
    assert confirmed[_member("ann").key]["FN"] == "new"
    mirror.clear_pending()
    # The next complete pass sends the refused operations again.
    mirror.stage([_member("ann", FN="new"), _member("dee"), _member("eve")])
    plan = mirror.plan()
    assert (plan.additions, plan.changed, plan.removals) == (1, 0, 1)


def test_nobody_fed_empties_the_audience(mirror: AudienceMirror) -> None:
    assert not mirror.plan().empties_audience  # nothing before, nothing now
    _pass(mirror, [_member("ann")])
    plan = mirror.plan()
    assert plan.empties_audience and plan.removals == 1


def test_state_holds_hashes_only(mirror: AudienceMirror) -> None:
    mirror.stage([_member("ann")])
    mirror.confirm_all()
    text = repr(mirror.confirmed()) + repr(mirror.staged_record_keys())
    assert "ann@example.com" not in text


def test_forget(mirror: AudienceMirror) -> None:
    _pass(mirror, [_member("ann")])
    mirror.stage([_member("bob")])
    mirror.forget()
    assert mirror.confirmed() == {} and mirror.plan().staged == 0
