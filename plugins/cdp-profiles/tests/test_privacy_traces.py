"""Recognizing a person in quarantine payloads, run texts and cursors; their audience member keys."""

from __future__ import annotations

import json
from typing import Any

from cdp_profiles.audiences import member_key, sha256_hex
from cdp_profiles.identifiers import IdentifierNormalizer
from cdp_profiles.identity import IdentityConfig
from cdp_profiles.privacy.audience_keys import member_keys
from cdp_profiles.privacy.traces import MARK, Traces

PERSON = [("email", "anna@example.org"), ("hubspot_id", "9001234"), ("phone", "+491711234567")]


def traces() -> Traces:
    normalize = IdentifierNormalizer(IdentityConfig())
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


WRITTEN = [
    "+49 171 1234567", "+49 (0) 171 123 45 67", "0171/123 45 67", "(0171) 1234567", "0049 171 1234567",
    "0171-123-4567", "0171.1234567", "+491711234567", "٠١٧١ ١٢٣٤٥٦٧",
]  # the last one in Arabic-Indic digits


def test_every_way_of_writing_the_number_or_the_address_is_found() -> None:
    """The quick test before the leaves are judged one by one never turns away a row that names the person."""
    t = traces()
    for written in WRITTEN:
        for payload in ({"phone": written}, {"a": {"b": [1, written]}}, {written: "key"}):
            assert t.in_quarantine(payload, None, None), payload
    for written in ("ANNA@EXAMPLE.ORG", " Anna@Example.org ", "Anna@Example.Org"):
        assert t.in_quarantine({"contact": {"email": written}}, None, None), written
        assert t.in_quarantine(None, written, None) and t.in_quarantine({}, None, f"bad address {written}")


def test_a_row_read_as_stored_json_is_judged_as_its_value() -> None:
    """The forget scan reads JSON as the database holds it and tests the text before decoding it:
    escapes (the store writes ASCII), quotes, other scripts' digits and a surrogate pair change nothing."""
    t = traces()
    rows: list[Any] = [
        {"name": "J\u00fcrgen M\u00fcller", "phone": "0171 1234567"},
        {"name": "J\u00fcrgen", "phone": WRITTEN[-1]},
        {"note": 'said "anna@example.org" twice', "path": "c:\\anna"},
        {"name": "Anna \U0001F600", "email": "hanna@example.org"},
        {"phone": "0171 1234568", "name": "\u00c4nna"},
        [9001234, "x"],
        None,
    ]
    for row in rows:
        expected = t.in_quarantine(row, None, None)
        for raw in (json.dumps(row), json.dumps(row, ensure_ascii=False), json.dumps(row, separators=(",", ":"))):
            assert t.in_stored_row(raw, None, None) == expected, raw
    astral = Traces.of([("email", "anna\U0001F600@example.org")], t.normalize)
    assert astral.in_stored_row(json.dumps({"e": "ANNA\U0001F600@example.org"}), None, None)
    # The pattern matches case-insensitively as Python's re does, which also equates i and the dotless \u0131.
    for person, written in (("mirko@example.org", "m\u0131rko@example.org"), ("\u0131lker@example.org", "ILKER@example.org")):
        dotless = Traces.of([("email", person)], t.normalize)
        row = {"note": f"from {written}"}
        assert dotless.in_quarantine(row, None, None) and dotless.in_stored_row(json.dumps(row), None, None)


def test_other_peoples_numbers_are_not_parsed() -> None:
    """Parsing a phone number costs ~70 us: a row with no trace of the person's number never gets there."""
    calls: list[tuple[str, str]] = []
    normalize = IdentifierNormalizer(IdentityConfig())

    def counting(type_name: str, value: Any) -> tuple[str | None, str]:
        calls.append((type_name, str(value)))
        return normalize(type_name, value)

    t = Traces.of(PERSON, counting)
    rows = [{"traits": {"email": f"user{i}@example.org", "phone": f"0171 {2000000 + i}"}, "id": i} for i in range(500)]
    assert not any(t.in_quarantine(row, f"m{i}", None) for i, row in enumerate(rows))
    assert calls == []
    assert t.in_quarantine({"traits": {"phone": "0171 1234567"}}, "m", None) and calls == [("phone", "0171 1234567")]


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
