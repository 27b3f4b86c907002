"""normalize: the per-value normalizers and the transform (in place, rejects, identifiers)."""

from __future__ import annotations

import random
import unicodedata

import phonenumbers
import pytest
from pydantic import ValidationError

from cdp_core.base import TransformContext
from cdp_core.records import Record, Rejected
from cdp_core.transforms import normalizers, phones
from cdp_core.transforms.fields import Invalid
from cdp_core.transforms.normalize import Normalize, NormalizeConfig


def rec(key: str = "1", identifiers: dict[str, str | list[str]] | None = None, **data: object) -> Record:
    return Record(stream="test.people", key=key, data=dict(data), identifiers=identifiers or {})


def run(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    transform = Normalize(NormalizeConfig.model_validate(options))
    ctx = TransformContext("normalize")
    return transform.process(list(records), ctx), ctx.rejected


# -- normalizers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (" John.Doe@Example.com ", "john.doe@example.com"),
        ("ANNA@FIRMA.DE", "anna@firma.de"),
        ("ü.ber@exämple.de", "ü.ber@exämple.de"),
    ],
)
def test_email_is_trimmed_and_lowercased(raw: str, expected: str) -> None:
    assert normalizers.email(raw) == expected


@pytest.mark.parametrize("raw", ["john.doe", "a@b", "a b@c.de", "@x.de", "a@@b.de", "a@.de", "a@b..de", "x@y.de."])
def test_email_that_does_not_look_like_an_address_is_invalid(raw: str) -> None:
    result = normalizers.email(raw)
    assert isinstance(result, Invalid)
    assert result.problem == f"not a valid email address: {raw!r}"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+49 (0)171 1234567", "+491711234567"),
        ("0171 1234567", "+491711234567"),
        ("0171/1234567", "+491711234567"),
        ("0049 171 1234567", "+491711234567"),
        ("+49171-1234567", "+491711234567"),
        ("+491711234567", "+491711234567"),
        ("030 123456", "+4930123456"),
        ("+1 650 253 0000", "+16502530000"),
        ("+39 06 6982 1234", "+390669821234"),  # Italy keeps the leading 0
    ],
)
def test_phone_becomes_e164(raw: str, expected: str) -> None:
    assert phones.phone(raw, "DE") == expected


def test_phone_uses_the_default_region_for_national_numbers() -> None:
    assert phones.phone("01 42 68 53 00", "FR") == "+33142685300"
    assert phones.phone("0664 1234567", "AT") == "+436641234567"


@pytest.mark.parametrize("raw", ["123", "abc", "+49 12", "0000000"])
def test_invalid_phone_names_region_and_value(raw: str) -> None:
    result = phones.phone(raw, "DE")
    assert isinstance(result, Invalid)
    assert result.problem == f"not a valid phone number for region DE: {raw!r}"


def test_phone_shortcut_agrees_with_phonenumbers_parse() -> None:
    # The quick path rewrites everyday spellings itself; it must never disagree with parse.
    rng = random.Random(7)
    checked = 0
    for region in ("DE", "AT", "CH", "FR", "NL", "IT", "ES", "GB", "US"):
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        nsn, cc = phonenumbers.national_significant_number(example), example.country_code
        for _ in range(40):
            digits = nsn[:2] + "".join(rng.choice("0123456789") for _ in nsn[2:])
            for text in (f"0{digits}", f"+{cc} (0){digits[:3]}-{digits[3:]}", f"00{cc} {digits}", f"+{cc}0{digits}"):
                for default in (region, "DE"):
                    quick = phones._quick(text, default)
                    if quick is None:
                        continue
                    parsed = phonenumbers.parse(text, default)
                    assert phonenumbers.is_valid_number(parsed), text
                    assert quick == phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), text
                    checked += 1
    assert checked > 100


def test_name_is_nfc_trimmed_and_collapsed_but_case_kept() -> None:
    decomposed = "Zoe\u0308"  # e + combining diaeresis
    assert normalizers.name(f"  {decomposed}  ") == "Zoë"
    assert unicodedata.is_normalized("NFC", normalizers.name(decomposed))
    assert normalizers.name(" Anna \t Maria\n ") == "Anna Maria"
    assert normalizers.name("McDonald") == "McDonald"
    assert normalizers.name("jean") == "jean"


def test_title_case_fixes_all_caps_and_all_lower_only() -> None:
    assert normalizers.name("jean-luc o'neil", "title") == "Jean-Luc O'Neil"
    assert normalizers.name("MÜLLER", "title") == "Müller"
    assert normalizers.name("McDonald", "title") == "McDonald"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("de", "DE"),
        ("DEU", "DE"),
        ("Germany", "DE"),
        ("Deutschland", "DE"),
        ("Österreich", "AT"),
        ("oesterreich", "AT"),
        ("Schweiz", "CH"),
        ("Frankreich", "FR"),
        ("Niederlande", "NL"),
        ("Vereinigtes Königreich", "GB"),
        ("UK", "GB"),
        ("Vereinigte Staaten", "US"),
        ("USA", "US"),
        ("Dänemark", "DK"),
        ("Polen", "PL"),
        ("Belgien", "BE"),
        (" united kingdom ", "GB"),
        ("Guinea-Bissau", "GW"),
        ("Russia", "RU"),
    ],
)
def test_country_to_alpha2(raw: str, code: str) -> None:
    assert normalizers.country(raw) == code


def test_unknown_country_is_invalid() -> None:
    result = normalizers.country("Narnia")
    assert isinstance(result, Invalid) and result.problem == "not a known country: 'Narnia'"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-05-17T10:00:00+02:00", "2024-05-17T08:00:00Z"),
        ("2024-05-17T10:00:00Z", "2024-05-17T10:00:00Z"),
        ("2024-05-07", "2024-05-07T00:00:00Z"),  # ISO stays ISO despite dayfirst
        ("31.12.2024 23:30", "2024-12-31T23:30:00Z"),
        ("01/02/2024", "2024-02-01T00:00:00Z"),  # dayfirst: 1 February
        ("1715939200", "2024-05-17T09:46:40Z"),  # Unix seconds
        ("1715939200123", "2024-05-17T09:46:40.123000Z"),  # Unix milliseconds
    ],
)
def test_datetime_to_utc_iso(raw: str, expected: str) -> None:
    assert normalizers.utc_datetime(raw) == expected


def test_naive_datetime_is_read_in_the_configured_zone() -> None:
    assert normalizers.utc_datetime("2024-07-01 12:00", True, "Europe/Berlin") == "2024-07-01T10:00:00Z"
    assert normalizers.utc_datetime("01/02/2024", False) == "2024-01-02T00:00:00Z"


def test_date_keeps_the_written_day() -> None:
    assert normalizers.iso_date("17.05.1990") == "1990-05-17"
    assert normalizers.iso_date("1990-05-17T00:30:00+02:00") == "1990-05-17"
    assert isinstance(normalizers.iso_date("someday"), Invalid)


# -- the transform -------------------------------------------------------------------------------


def test_normalize_fields_in_place() -> None:
    out, rejected = run(
        {
            "fields": {
                "email": "email",
                "phone": "phone",
                "first_name": "name",
                "country": "country",
                "signup": "datetime",
                "birthday": "date",
            }
        },
        rec(
            email=" John.Doe@Example.com ",
            phone="+49 (0)171 1234567",
            first_name=" Zoe\u0308 ",
            country="Deutschland",
            signup="31.12.2024 10:00",
            birthday="17.05.1990",
            untouched=" X ",
        ),
    )
    assert rejected == []
    assert out[0].data == {
        "email": "john.doe@example.com",
        "phone": "+491711234567",
        "first_name": "Zoë",
        "country": "DE",
        "signup": "2024-12-31T10:00:00Z",
        "birthday": "1990-05-17",
        "untouched": " X ",
    }


def test_invalid_value_rejects_with_field_and_problem() -> None:
    out, rejected = run({"fields": {"phone": "phone"}}, rec(phone="123"), rec(key="2", phone="0171 1234567"))
    assert [r.key for r in out] == ["2"]
    assert len(rejected) == 1
    assert rejected[0].reason == "phone: not a valid phone number for region DE: '123'"
    assert rejected[0].key == "1"
    assert rejected[0].raw["data"]["phone"] == "123"


def test_every_invalid_field_is_named() -> None:
    _, rejected = run({"fields": {"email": "email", "country": "country"}}, rec(email="nope", country="Narnia"))
    assert rejected[0].reason == "email: not a valid email address: 'nope'; country: not a known country: 'Narnia'"


def test_on_invalid_null_and_keep() -> None:
    out, rejected = run({"fields": {"phone": "phone"}, "on_invalid": "null"}, rec(phone="123"))
    assert rejected == [] and out[0].data["phone"] is None
    out, rejected = run({"fields": {"phone": "phone"}, "on_invalid": "keep"}, rec(phone="123"))
    assert rejected == [] and out[0].data["phone"] == "123"


def test_blank_becomes_null_and_missing_stays_missing() -> None:
    out, rejected = run({"fields": {"email": "email", "phone": "phone"}}, rec(email="   "))
    assert rejected == []
    assert out[0].data == {"email": None}


def test_identifiers_are_always_normalized() -> None:
    out, rejected = run(
        {},
        rec(identifiers={"email": " A@B.DE ", "phone": "0171 1234567", "hubspot_contact_id": " 42 "}),
    )
    assert rejected == []
    assert out[0].identifiers == {"email": "a@b.de", "phone": "+491711234567", "hubspot_contact_id": " 42 "}


def test_invalid_identifier_rejects_or_is_dropped() -> None:
    _, rejected = run({}, rec(identifiers={"email": "not-an-email"}))
    assert rejected[0].reason == "identifiers.email: not a valid email address: 'not-an-email'"
    out, _ = run({"on_invalid": "null"}, rec(identifiers={"email": "not-an-email", "phone": " "}))
    assert out[0].identifiers == {}


def test_region_and_timezone_options() -> None:
    out, _ = run(
        {"fields": {"phone": "phone", "at": "datetime"}, "default_region": "at", "timezone": "Europe/Vienna"},
        rec(phone="0664 1234567", at="2024-01-15 12:00"),
    )
    assert out[0].data == {"phone": "+436641234567", "at": "2024-01-15T11:00:00Z"}


def test_nested_fields_and_non_text_values() -> None:
    out, rejected = run(
        {"fields": {"contact.phone": "phone", "seen": "datetime", "tags": "email"}},
        rec(contact={"phone": 491711234567}, seen=1715939200, tags=["x"]),
    )
    assert out == []
    assert rejected[0].reason == "tags: expected an email address as text, got list \"['x']\""
    out, rejected = run(
        {"fields": {"contact.phone": "phone", "seen": "datetime"}},
        rec(contact={"phone": 491711234567}, seen=1715939200),
    )
    assert out[0].data == {"contact": {"phone": "+491711234567"}, "seen": "2024-05-17T09:46:40Z"}


def test_name_case_option() -> None:
    out, _ = run({"fields": {"n": "name"}, "name_case": "title"}, rec(n="  ANNA   MARIA "))
    assert out[0].data["n"] == "Anna Maria"


@pytest.mark.parametrize(
    ("options", "where", "message"),
    [
        ({"fields": {"phone": "telephone"}}, ("fields", "phone"), "Input should be 'email', 'phone'"),
        ({"default_region": "XX"}, ("default_region",), "unknown phone region 'XX'"),
        ({"timezone": "Mars/Olympus"}, ("timezone",), "unknown time zone 'Mars/Olympus'"),
        ({"on_invalid": "drop"}, ("on_invalid",), "Input should be 'reject', 'null' or 'keep'"),
        ({"name_case": "upper"}, ("name_case",), "Input should be 'keep' or 'title'"),
        ({"fields": {"identifiers.email": "name"}}, (), "identifiers.email is always normalized as 'email'"),
        ({"fields": {"a..b": "name"}}, ("fields", "a..b", "[key]"), "empty part between dots"),
        ({"regions": "DE"}, ("regions",), "Extra inputs are not permitted"),
    ],
)
def test_bad_options_are_config_errors(options: dict[str, object], where: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        NormalizeConfig.model_validate(options)
    errors = info.value.errors(include_url=False)
    assert any(tuple(map(str, e["loc"])) == where and message in e["msg"] for e in errors), errors


def test_public_api_used_by_the_rest_of_cdp() -> None:
    # The profile store normalizes identifiers with these very functions.
    assert normalizers.email(" A@B.DE ") == "a@b.de"
    assert normalizers.phone("0171 1234567", "DE") == "+491711234567"
    assert isinstance(normalizers.phone("1", "DE"), normalizers.Invalid)
    for name in normalizers.__all__:
        assert hasattr(normalizers, name), name


def test_identifier_lists_are_normalized_value_by_value() -> None:
    raw = {"email": [" A@B.DE ", "a@b.de", "  ", "C@D.de"], "phone": ["0171 1234567", "+49 171 1234567"]}
    out, rejected = run({}, rec(identifiers=raw))
    assert rejected == []
    assert out[0].identifiers == {"email": ["a@b.de", "c@d.de"], "phone": ["+491711234567"]}, (
        "each value normalized, blanks and duplicates after normalizing dropped, order kept"
    )
    out, _ = run({}, rec(identifiers={"email": ["", " "]}))
    assert out[0].identifiers == {}, "a list with no value left removes the type"


def test_an_invalid_value_in_a_list_rejects_or_is_dropped_or_kept() -> None:
    def ids() -> dict[str, list[str]]:
        return {"email": ["a@b.de", "not an email"]}

    out, rejected = run({}, rec(identifiers=ids()))
    assert out == [] and rejected[0].reason.startswith("identifiers.email[1]: ")
    out, rejected = run({"on_invalid": "null"}, rec(identifiers=ids()))
    assert rejected == [] and out[0].identifiers == {"email": ["a@b.de"]}
    out, rejected = run({"on_invalid": "keep"}, rec(identifiers=ids()))
    assert rejected == [] and out[0].identifiers == {"email": ["a@b.de", "not an email"]}
