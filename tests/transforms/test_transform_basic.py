"""rename, map, identify, and the shared field addressing."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record, Rejected
from cdp_core.transforms.basic import Identify, Map, Rename, Select
from cdp_core.transforms.fields import MISSING, FieldPath


def rec(key: str = "1", identifiers: dict[str, str] | None = None, **data: object) -> Record:
    return Record(stream="test.people", key=key, data=dict(data), identifiers=identifiers or {})


def run(cls: type[Transform], options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    config: PluginConfig = cls.config_model.model_validate(options)
    ctx = TransformContext(cls.__name__.lower())
    return cls(config).process(list(records), ctx), ctx.rejected


def config_errors(cls: type[Transform], options: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        cls.config_model.model_validate(options)
    return str(info.value)


# -- field addressing -----------------------------------------------------------------------------


def test_field_path_reads_and_writes_data_nested_and_identifiers() -> None:
    record = rec(identifiers={"email": "a@b.de"}, city="Berlin", address={"zip": "10115"}, **{"utm.source": "x"})
    assert FieldPath("city").get(record) == "Berlin"
    assert FieldPath("address.zip").get(record) == "10115"
    assert FieldPath("utm.source").get(record) == "x"  # a flat key with a dot wins
    assert FieldPath("identifiers.email").get(record) == "a@b.de"
    assert FieldPath("nope").get(record) is MISSING
    assert FieldPath("address.nope.deeper").get(record) is MISSING
    FieldPath("geo.lat").set(record, 52.5)
    FieldPath("identifiers.hubspot_contact_id").set(record, 42)
    assert record.data["geo"] == {"lat": 52.5}
    assert record.identifiers["hubspot_contact_id"] == "42"
    FieldPath("identifiers.email").set(record, None)  # identifiers hold text only: null removes
    assert "email" not in record.identifiers
    assert FieldPath("address.zip").pop(record) == "10115"
    assert record.data["address"] == {}


@pytest.mark.parametrize("name", ["", " city", "a..b", "identifiers", "identifiers.a.b", ".a"])
def test_bad_field_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        FieldPath(name)


# -- rename ---------------------------------------------------------------------------------------


def test_rename_moves_values_and_skips_absent_fields() -> None:
    out, _ = run(
        Rename, {"fields": {"Vorname": "first_name", "PLZ": "zip", "gone": "here"}}, rec(Vorname="Anna", PLZ="10115")
    )
    assert out[0].data == {"first_name": "Anna", "zip": "10115"}


def test_rename_applies_all_at_once_so_it_can_swap() -> None:
    out, _ = run(Rename, {"fields": {"a": "b", "b": "a"}}, rec(a=1, b=2))
    assert out[0].data == {"a": 2, "b": 1}


def test_rename_between_data_nested_and_identifiers() -> None:
    out, _ = run(
        Rename,
        {"fields": {"contact.mail": "email", "identifiers.hs_id": "identifiers.hubspot_contact_id"}},
        rec(identifiers={"hs_id": "7"}, contact={"mail": "a@b.de"}),
    )
    assert out[0].data == {"contact": {}, "email": "a@b.de"}
    assert out[0].identifiers == {"hubspot_contact_id": "7"}


def test_rename_config_errors() -> None:
    assert "are both renamed to 'x'" in config_errors(Rename, {"fields": {"a": "x", "b": "x"}})
    assert "at least 1 item" in config_errors(Rename, {"fields": {}})
    assert "Extra inputs are not permitted" in config_errors(Rename, {"fields": {"a": "b"}, "field": {}})


# -- map ------------------------------------------------------------------------------------------


def test_map_values_with_default_and_untouched_nulls() -> None:
    options = {"values": {"salutation": {"Herr": "m", "Frau": "f"}}, "defaults": {"salutation": "u"}}
    out, _ = run(
        Map,
        options,
        rec("1", salutation=" Herr "),
        rec("2", salutation="Frau"),
        rec("3", salutation="Dr."),
        rec("4", salutation=None),
        rec("5"),
    )
    assert [r.data.get("salutation", "absent") for r in out] == ["m", "f", "u", None, "absent"]


def test_map_without_default_keeps_unmapped_values() -> None:
    out, _ = run(
        Map,
        {"values": {"status": {"1": "active", "true": "active"}}},
        rec("1", status=1),
        rec("2", status=True),
        rec("3", status="x"),
    )
    assert [r.data["status"] for r in out] == ["active", "active", "x"]


def test_map_ignore_case_and_target() -> None:
    options = {"values": {"salutation": {"Herr": "m"}}, "ignore_case": True, "targets": {"salutation": "gender"}}
    out, _ = run(Map, options, rec(salutation="HERR"))
    assert out[0].data == {"salutation": "HERR", "gender": "m"}


def test_map_config_errors() -> None:
    assert "defaults: 'other' not in values" in config_errors(
        Map, {"values": {"a": {"x": 1}}, "defaults": {"other": 1}}
    )
    assert "the mapping of 'a' is empty" in config_errors(Map, {"values": {"a": {}}})
    assert "are the same with ignore_case" in config_errors(
        Map, {"values": {"a": {"X": 1, "x": 2}}, "ignore_case": True}
    )


# -- identify -------------------------------------------------------------------------------------


def test_identify_copies_fields_into_typed_identifiers() -> None:
    options = {"identifiers": {"email": "email_address", "hubspot_contact_id": "id", "phone": "contact.phone"}}
    out, rejected = run(Identify, options, rec(email_address=" a@b.de ", id=123.0, contact={"phone": "0171"}))
    assert rejected == []
    assert out[0].identifiers == {"email": "a@b.de", "hubspot_contact_id": "123", "phone": "0171"}
    assert out[0].data["email_address"] == " a@b.de "  # copied, not moved


def test_identify_skips_blank_and_respects_overwrite() -> None:
    out, _ = run(
        Identify,
        {"identifiers": {"email": "mail"}},
        rec(mail="  "),
        rec("2", identifiers={"email": "old@x.de"}, mail="new@x.de"),
    )
    assert out[0].identifiers == {}
    assert out[1].identifiers == {"email": "new@x.de"}
    out, _ = run(
        Identify,
        {"identifiers": {"email": "mail"}, "overwrite": False},
        rec(identifiers={"email": "old@x.de"}, mail="new@x.de"),
    )
    assert out[0].identifiers == {"email": "old@x.de"}


def test_identify_takes_a_list_as_several_values_of_the_type() -> None:
    out, rejected = run(
        Identify,
        {"identifiers": {"email": "emails", "shopify_customer_id": "id"}},
        rec(emails=[" a@b.de", "", None, "c@d.de", "a@b.de"], id=5),
    )
    assert not rejected
    assert out[0].identifiers == {"email": ["a@b.de", "c@d.de"], "shopify_customer_id": "5"}
    [empty], _ = run(Identify, {"identifiers": {"email": "emails"}}, rec(emails=["", None]))
    assert empty.identifiers == {}, "a list of blanks adds nothing"


def test_identify_rejects_an_object_or_a_list_holding_one_and_leaves_the_record_unchanged() -> None:
    out, rejected = run(
        Identify, {"identifiers": {"email": "emails", "shopify_customer_id": "id"}}, rec(emails={"a": 1}, id=5)
    )
    assert out == []
    assert rejected[0].reason == "emails: an identifier takes one text or number value, got {'a': 1}"
    assert rejected[0].raw["identifiers"] == {}
    out, rejected = run(Identify, {"identifiers": {"email": "emails"}}, rec(emails=["a@b.de", {"b": 2}]))
    assert out == []
    assert rejected[0].reason.startswith("emails: an identifier list takes text or number values")


def test_identify_config_errors() -> None:
    assert "String should match pattern" in config_errors(Identify, {"identifiers": {"E-Mail": "email"}})
    assert "at least 1 item" in config_errors(Identify, {"identifiers": {}})


# -- select ---------------------------------------------------------------------------------------


def test_select_keeps_only_the_listed_fields_and_identifier_types() -> None:
    person = rec(identifiers={"email": "a@b.de", "phone": "+4930123456"}, email="x", first_name="Ada", city="Berlin")
    bare = rec("2", city="Köln")
    [kept, other], rejected = run(Select, {"fields": ["email", "city"], "identifiers": ["email"]}, person, bare)
    assert not rejected
    assert kept.data == {"email": "x", "city": "Berlin"} and kept.identifiers == {"email": "a@b.de"}
    assert other.data == {"city": "Köln"}, "an absent field is not added"
    [untouched], _ = run(Select, {"fields": ["city"]}, rec(identifiers={"email": "a@b.de"}, city="Bonn", zip="53111"))
    assert untouched.identifiers == {"email": "a@b.de"}, "identifiers unset: all kept"
    [none], _ = run(Select, {"fields": ["city"], "identifiers": []}, rec(identifiers={"email": "a@b.de"}, city="Bonn"))
    assert none.identifiers == {} and none.data == {"city": "Bonn"}


@pytest.mark.parametrize(
    ("options", "message"),
    [({"fields": []}, "at least 1"), ({"fields": ["identifiers.email"]}, "list its type in 'identifiers'")],
)
def test_select_refuses_an_empty_list_and_identifier_fields(options: dict[str, object], message: str) -> None:
    assert message in config_errors(Select, options)
