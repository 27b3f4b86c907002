"""Google Customer Match's normalization and hashing rules, value by value (pure functions, no I/O)."""

from __future__ import annotations

import hashlib

import pytest
from cdp_profiles.audiences import PersonFields, member_key

from cdp_google_ads import normalize


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_the_known_person_of_issue_4() -> None:
    fields = PersonFields(
        {
            "email": " John.Doe@Example.com ",
            "phone": "+49 (0)171 1234567",
            "first_name": "Zoë",
            "last_name": "Doe",
            "country": "Germany",
            "zip": " 10115 ",
        }
    )
    key, identifiers = normalize.member(fields)
    assert identifiers == [
        {"hashedEmail": hashlib.sha256(b"john.doe@example.com").hexdigest()},
        {"hashedPhoneNumber": hashlib.sha256(b"+491711234567").hexdigest()},  # Google: E.164 WITH the '+'
        {
            "addressInfo": {
                "hashedFirstName": hashlib.sha256("zoë".encode()).hexdigest(),
                "hashedLastName": hashlib.sha256(b"doe").hexdigest(),
                "countryCode": "DE",  # not hashed
                "postalCode": "10115",  # not hashed
            }
        },
    ]
    assert identifiers[1]["hashedPhoneNumber"] != hashlib.sha256(b"491711234567").hexdigest()  # not Meta's form
    assert key == member_key("email", identifiers[0]["hashedEmail"])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John.Doe@Example.com ", "john.doe@example.com"),  # dots kept outside gmail
        ("John.Doe@GMail.com", "johndoe@gmail.com"),
        ("j.o.h.n+ads@googlemail.com", "john+ads@googlemail.com"),
        ("john.doe@gmail.com.au", "john.doe@gmail.com.au"),
        ("not an email", None),
        (None, None),
    ],
)
def test_email(raw: str | None, expected: str | None) -> None:
    assert normalize.email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+49 (0)171 1234567", "DE", "+491711234567"),
        ("0171 1234567", "DE", "+491711234567"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("12", "DE", None),
    ],
)
def test_phone_e164_with_plus(raw: str, region: str, expected: str | None) -> None:
    assert normalize.phone(raw, region) == expected


def test_names_trimmed_and_lowercased() -> None:
    assert normalize.name("  Zoë ") == "zoë"
    assert normalize.name("Mary   Ann") == "mary ann"
    assert normalize.name(" ") is None


def test_country_and_postal_code_are_not_hashed() -> None:
    assert normalize.country_code("Deutschland") == "DE"
    assert normalize.country_code("atlantis") is None
    assert normalize.postal_code(" SW1A  1AA ") == "SW1A 1AA"


def test_address_needs_all_four_parts() -> None:
    partial = PersonFields({"first_name": "Zoë", "last_name": "Doe", "country": "DE"})
    assert normalize.user_identifiers(partial) == []
    reason = normalize.member(partial)
    assert reason == (
        "no usable identifier for Google Customer Match: needs a valid email or a valid phone or "
        "first name, last name, country and postal code"
    )


def test_address_only_member() -> None:
    fields = PersonFields({"first_name": "Zoë", "last_name": "Doe", "country": "DE", "zip": "10115"})
    key, identifiers = normalize.member(fields)
    assert [list(i) for i in identifiers] == [["addressInfo"]]
    assert key == member_key("address", f"DE|{sha('zoë')}|{sha('doe')}|10115")


def test_only_the_wanted_identifiers() -> None:
    fields = PersonFields({"email": "a@b.de", "phone": "+4930123456"})
    _, identifiers = normalize.member(fields, ["phone"])
    assert identifiers == [{"hashedPhoneNumber": sha("+4930123456")}]
    reason = normalize.member(PersonFields({"email": "bad", "phone": "1"}), ["email", "phone"])
    assert isinstance(reason, str) and "its email is not valid" in reason and "bad" not in reason


@pytest.mark.parametrize("raw", [{"email": " John.Doe@GoogleMail.com "}, {"email": "ann.b@example.com"}, {"phone": "0171 1234567"}])
def test_privacy_finds_a_members_key_from_the_stores_identifiers(raw: dict[str, str]) -> None:
    """Export and forget find a person's mirror rows by the keys derived from the store's normalized identifiers."""
    from cdp_core.transforms import normalizers
    from cdp_profiles.privacy.audience_keys import member_keys

    key, _ = normalize.member(PersonFields(raw))
    stored = [("email", normalizers.email(raw["email"].strip())) if "email" in raw else ("phone", normalizers.phone(raw["phone"], "DE"))]
    assert key in member_keys(stored, {})


def test_a_person_with_several_emails_and_phones_sends_each_the_primary_keys_the_member() -> None:
    fields = PersonFields({"email": ["a@x.de", " B@x.de", "a@x.de"], "phone": ["+49 171 1234567", "+49 171 7654321"]})
    key, identifiers = normalize.member(fields, ["email", "phone"])
    assert identifiers == [
        {"hashedEmail": sha("a@x.de")},
        {"hashedEmail": sha("b@x.de")},
        {"hashedPhoneNumber": sha("+491711234567")},
        {"hashedPhoneNumber": sha("+491717654321")},
    ]
    assert key == member_key("email", sha("a@x.de")), "the member key is the primary email's, as for one email"
