"""Meta's normalization and hashing rules, value by value (pure functions, no I/O)."""

from __future__ import annotations

import hashlib
import unicodedata

import pytest
from cdp_profiles.audiences import PersonFields, member_key

from cdp_meta_audiences import normalize


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_known_person_of_issue_4() -> None:
    fields = PersonFields({"email": " John.Doe@Example.com ", "phone": "+49 (0)171 1234567", "first_name": "Zoë"})
    assert normalize.normalized_values(fields, ["EMAIL", "PHONE", "FN"]) == {
        "EMAIL": "john.doe@example.com",
        "PHONE": "491711234567",  # digits only, country code, no '+', the (0) trunk prefix dropped
        "FN": "zoë",
    }
    key, row = normalize.member(fields, ["EMAIL", "PHONE", "FN"])
    assert row == {
        "EMAIL": hashlib.sha256(b"john.doe@example.com").hexdigest(),
        "PHONE": hashlib.sha256(b"491711234567").hexdigest(),
        "FN": hashlib.sha256("zoë".encode()).hexdigest(),
    }
    assert row["EMAIL"] == "836f82db99121b3481011f16b49dfa5fbc714a0d1b1b9f784a1ebbbf5b39577f"
    assert key == member_key("email", "john.doe@example.com")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John.Doe@Example.com ", "john.doe@example.com"),
        ("JOHN.DOE+ads@GMAIL.com", "john.doe+ads@gmail.com"),  # Meta keeps gmail dots (Google drops them)
        ("not an email", None),
        ("   ", None),
        (None, None),
    ],
)
def test_email(raw: str | None, expected: str | None) -> None:
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+49 (0)171 1234567", "DE", "491711234567"),
        ("0171 1234567", "DE", "491711234567"),  # national form, read in the default region
        ("0049 171 1234567", "DE", "491711234567"),
        ("+1 (415) 555-0100", "DE", "14155550100"),
        ("(415) 555-0100", "US", "14155550100"),
        ("12", "DE", None),
        ("call me", "DE", None),
    ],
)
def test_phone_digits_with_country_code_no_plus(raw: str, region: str, expected: str | None) -> None:
    assert normalize.phone(raw, region) == expected
    if expected:
        assert expected.isdigit() and not expected.startswith("0")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Zoë", "zoë"),
        (unicodedata.normalize("NFD", "Zoë"), "zoë"),  # decomposed input hashes like composed
        ("  O'Brien-Smith ", "obriensmith"),
        ("Mary Ann", "maryann"),
        ("Jürgen.", "jürgen"),
        ("ΑΝΝΑ", "αννα"),
        ("1234", None),
    ],
)
def test_names_lowercase_no_punctuation_letters_kept(raw: str, expected: str | None) -> None:
    assert normalize.first_name(raw) == expected
    assert normalize.last_name(raw) == expected


def test_first_initial_city_state() -> None:
    assert normalize.first_initial(" Émile") == "é"
    assert normalize.city("Frankfurt am Main") == "frankfurtammain"
    assert normalize.city("München") == "münchen"
    assert normalize.state("CA") == "ca"


@pytest.mark.parametrize(
    ("raw", "expected"), [("12345-6789", "12345"), (" SW1A 1AA ", "sw1a1aa"), ("10115", "10115"), ("-", None)]
)
def test_zip_part_before_dash(raw: str, expected: str | None) -> None:
    assert normalize.zip_code(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("DE", "de"), ("Germany", "de"), ("Deutschland", "de"), ("Atlantis", None)]
)
def test_country_iso_alpha2_lowercase(raw: str, expected: str | None) -> None:
    assert normalize.country(raw) == expected


def test_gender_and_birthday() -> None:
    assert [normalize.gender(v) for v in ("F", "female", "Frau", "m", "Male", "x", None)] == [
        "f",
        "f",
        "f",
        "m",
        "m",
        None,
        None,
    ]
    assert normalize.birthday("1984-03-07") == ("1984", "03", "07")
    assert normalize.birthday("07.03.1984") == ("1984", "03", "07")
    assert normalize.birthday("sometime") is None


def test_every_key_is_hashed_but_extern_id() -> None:
    fields = PersonFields(
        {
            "email": "a@b.de",
            "phone": "+4930123456",
            "first_name": "Zoë",
            "last_name": "Ä-b",
            "city": "Köln",
            "state": "NW",
            "zip": "50667",
            "country": "Germany",
            "gender": "female",
            "birthday": "1990-12-31",
            "extern_id": " crm-42 ",
        }
    )
    _, row = normalize.member(fields, list(normalize.KEYS))
    assert row["EXTERN_ID"] == "crm-42"
    expected = {
        "EMAIL": "a@b.de", "PHONE": "4930123456", "FN": "zoë", "FI": "z", "LN": "äb", "CT": "köln", "ST": "nw",
        "ZIP": "50667", "COUNTRY": "de", "GEN": "f", "DOBY": "1990", "DOBM": "12", "DOBD": "31",
    }  # fmt: skip
    assert {k: v for k, v in row.items() if k != "EXTERN_ID"} == {k: sha(v) for k, v in expected.items()}


def test_only_the_schema_keys_are_sent() -> None:
    fields = PersonFields({"email": "a@b.de", "first_name": "Zoë", "city": "Köln"})
    _, row = normalize.member(fields, ["EMAIL", "CT"])
    assert set(row) == {"EMAIL", "CT"}


def test_a_person_without_email_or_phone_is_refused_with_a_reason() -> None:
    reason = normalize.member(PersonFields({"first_name": "Zoë", "zip": "10115"}), ["EMAIL", "PHONE", "FN"])
    assert reason == "no usable identifier for Meta: needs a valid email or phone"
    bad = normalize.member(PersonFields({"email": "nope", "phone": "12"}), ["EMAIL", "PHONE"])
    assert isinstance(bad, str) and "its email is not valid" in bad and "its phone is not valid" in bad
    assert "nope" not in bad  # the reason never repeats the value


def test_phone_only_member_key() -> None:
    key, row = normalize.member(PersonFields({"phone": "0171 1234567"}), ["EMAIL", "PHONE"])
    assert key == member_key("phone", "491711234567") and set(row) == {"PHONE"}


def test_payload_keeps_schema_order_and_fills_gaps() -> None:
    rows = [{"EMAIL": "e1", "FN": "f1"}, {"PHONE": "p2"}, {"EMAIL": "e3", "GEN": "g3"}]
    assert normalize.payload(["EMAIL", "PHONE", "FN"], rows) == {
        "schema": ["EMAIL", "PHONE", "FN", "GEN"],  # GEN: a row uploaded under an older schema
        "data": [["e1", "", "f1", ""], ["", "p2", "", ""], ["e3", "", "", "g3"]],
    }


@pytest.mark.parametrize("raw", [{"email": " Anna.Schmidt@Example.COM "}, {"phone": "0171 1234567"}])
def test_privacy_finds_a_members_key_from_the_stores_identifiers(raw: dict[str, str]) -> None:
    """Export and forget find a person's mirror rows by the keys derived from the store's normalized identifiers."""
    from cdp_core.transforms import normalizers
    from cdp_profiles.privacy.audience_keys import member_keys

    key, _ = normalize.member(PersonFields(raw), ["EMAIL", "PHONE"])
    stored = [("email", normalizers.email(raw["email"].strip())) if "email" in raw else ("phone", normalizers.phone(raw["phone"], "DE"))]
    assert key in member_keys(stored, {})


def test_further_emails_and_phones_of_a_person_get_rows_of_their_own() -> None:
    fields = PersonFields({"email": ["a@x.de", "B@x.de", "a@x.de"], "phone": ["+49 171 1234567", "+49 171 7654321"]})
    key, row = normalize.member(fields, ["EMAIL", "PHONE"])  # type: ignore[misc]
    assert key == member_key("email", "a@x.de") and row == {"EMAIL": sha("a@x.de"), "PHONE": sha("491711234567")}
    assert normalize.secondary_rows(fields, ["EMAIL", "PHONE"]) == [
        (member_key("email", "b@x.de"), {"EMAIL": sha("b@x.de")}),
        (member_key("phone", "491717654321"), {"PHONE": sha("491717654321")}),
    ]
    assert normalize.secondary_rows(PersonFields({"email": "a@x.de"}), ["EMAIL", "PHONE"]) == [], "one email: one row"
