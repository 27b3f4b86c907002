"""Recognizing a person in quarantine payloads, run texts and cursors; their audience member keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine

from cdp_profiles.audiences import member_key, sha256_hex
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.privacy.audience_keys import member_keys
from cdp_profiles.privacy.traces import MARK, Traces
from cdp_profiles.store.profiles import ProfileWriter

PERSON = [("email", "anna@example.org"), ("hubspot_id", "9001234"), ("phone", "+491711234567")]


def traces() -> Traces:
    normalize = ProfileWriter(create_engine("sqlite://"), IdentityConfig()).normalize_identifier
    return Traces.of(PERSON, normalize, keys=["c-17"])


def test_quarantine_rows_carrying_the_person_as_written_or_normalized() -> None:
    t = traces()
    carries: list[Any] = [
        {"email": "ANNA@Example.org"},
        {"contact": {"phones": ["0171 1234567"]}},  # national, normalized in the default region (DE)
        {"tel": "491711234567"},
        {"id": 9001234},
        {"text": "write to anna@example.org."},
        {"anna@example.org": True},
    ]
    for payload in carries:
        assert t.in_quarantine(payload, None, None), payload
    assert t.in_quarantine({}, "anna@example.org", None) and t.in_quarantine(None, None, "bad phone +491711234567")
    others: list[Any] = [
        {"email": "hanna@example.org"},
        {"email": "anna@example.org.uk"},
        {"id": 90012345, "n": "19001234"},
        {"phone": "0171 1234568"},
        {"when": "2024-06-01"},
        None,
    ]
    for payload in others:
        assert not t.in_quarantine(payload, "x", "no reason"), payload


def test_run_texts_lose_the_identifiers_and_keep_the_rest() -> None:
    t = traces()
    assert t.scrub("contact Anna@Example.org (9001234) refused; hanna@example.org kept") == (
        f"contact {MARK} ({MARK}) refused; hanna@example.org kept"
    )
    nodes = {"crm": {"read": 9001234, "errors": ["bad phone 491711234567", "id 90012345"]}}
    assert t.scrub(nodes) == {"crm": {"read": 9001234, "errors": [f"bad phone {MARK}", "id 90012345"]}}
    assert t.scrub(None) is None


def test_cursors_lose_the_delivered_keys_not_the_position() -> None:
    t = traces()
    cursor = {"mark": "9001234", "seen": ["9001234", "c-17", "c-18"], "ids": {"C-17": 1, "c-19": 2}}
    assert t.prune_cursor(cursor) == {"mark": "9001234", "seen": ["c-18"], "ids": {"c-19": 2}}


def test_member_keys_cover_meta_and_google_forms() -> None:
    keys = member_keys([("email", "jo.doe@gmail.com"), ("phone", "+491711234567")], {})
    assert member_key("email", "jo.doe@gmail.com") in keys  # Meta
    assert member_key("email", sha256_hex("jodoe@gmail.com")) in keys  # Google: gmail without dots
    assert member_key("phone", "491711234567") in keys  # Meta: digits
    assert member_key("phone", sha256_hex("+491711234567")) in keys  # Google: E.164
    traits = {"first_name": " Zoë ", "last_name": "Doe", "country": "Germany", "zip": "10115"}
    address = {
        "countryCode": "DE",
        "hashedFirstName": sha256_hex("zoë"),
        "hashedLastName": sha256_hex("doe"),
        "postalCode": "10115",
    }
    assert member_key("address", "|".join(address[k] for k in sorted(address))) in member_keys([], traits)
    assert member_keys([], {"first_name": "Zoë"}) == []
