"""hash: SHA-256 of the normalized value, salt, targets, blanks, invalid values."""

from __future__ import annotations

import hashlib

import pytest
from pydantic import ValidationError

from cdp_core.base import TransformContext
from cdp_core.records import Record, Rejected
from cdp_core.transforms.hashing import Hash, HashConfig, infer_kind


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rec(key: str = "1", identifiers: dict[str, str] | None = None, **data: object) -> Record:
    return Record(stream="test.people", key=key, data=dict(data), identifiers=identifiers or {})


def run(options: dict[str, object], *records: Record) -> tuple[list[Record], list[Rejected]]:
    ctx = TransformContext("hash")
    return Hash(HashConfig.model_validate(options)).process(list(records), ctx), ctx.rejected


def test_email_phone_and_text_are_normalized_then_hashed() -> None:
    out, rejected = run(
        {"fields": ["email", "phone", "last_name", "identifiers.email"]},
        rec(
            identifiers={"email": "John.Doe@Example.com"},
            email=" John.Doe@Example.com ",
            phone="+49 (0)171 1234567",
            last_name=" Müller ",
        ),
    )
    assert rejected == []
    assert out[0].data == {
        "email": sha("john.doe@example.com"),
        "phone": sha("+491711234567"),
        "last_name": sha("müller"),
    }
    assert out[0].identifiers == {"email": sha("john.doe@example.com")}


def test_salt_is_prepended_and_never_shown() -> None:
    config = HashConfig.model_validate({"fields": ["email"], "salt": "pepper"})
    assert "pepper" not in repr(config) and "pepper" not in str(config.model_dump())
    out = Hash(config).process([rec(email="a@b.de")], TransformContext("hash"))
    assert out[0].data["email"] == sha("peppera@b.de")


def test_suffix_target_keeps_the_value() -> None:
    out, _ = run(
        {"fields": ["email", "identifiers.phone"], "target": "suffix"},
        rec(identifiers={"phone": "01711234567"}, email="A@B.DE"),
    )
    assert out[0].data == {"email": "A@B.DE", "email_sha256": sha("a@b.de")}
    assert out[0].identifiers == {"phone": "01711234567", "phone_sha256": sha("+491711234567")}


def test_missing_and_empty_values_stay_missing() -> None:
    out, rejected = run({"fields": ["email", "phone", "city"], "target": "suffix"}, rec(email="", phone=None))
    assert rejected == []
    assert out[0].data == {"email": "", "phone": None}


def test_already_hashed_values_are_not_hashed_twice() -> None:
    digest = sha("a@b.de")
    out, _ = run({"fields": ["email"]}, rec(email=digest.upper()))
    assert out[0].data["email"] == digest
    out, _ = run({"fields": ["email"], "skip_hashed": False, "normalize_as": {"email": "text"}}, rec(email=digest))
    assert out[0].data["email"] == sha(digest)


def test_invalid_email_or_phone_rejects_or_nulls_never_hashes_raw() -> None:
    out, rejected = run({"fields": ["email", "mobile"]}, rec(email="not-an-email", mobile="123"))
    assert out == []
    assert rejected[0].reason == (
        "email: not a valid email address: 'not-an-email'; mobile: not a valid phone number for region DE: '123'"
    )
    out, rejected = run({"fields": ["email"], "on_invalid": "null", "target": "suffix"}, rec(email="nope"))
    assert rejected == [] and out[0].data == {"email": "nope", "email_sha256": None}


def test_numbers_hash_as_text_and_lists_are_refused() -> None:
    out, _ = run({"fields": ["customer_no"]}, rec(customer_no=12345))
    assert out[0].data["customer_no"] == sha("12345")
    out, _ = run({"fields": ["flag"]}, rec("1", flag=True), rec("2", flag=1), rec("3", flag=1.0))
    assert [r.data["flag"] for r in out] == [sha("true"), sha("1"), sha("1.0")]
    _, rejected = run({"fields": ["tags"]}, rec(tags=["a"]))
    assert rejected[0].reason == "tags: cannot hash a list"


def test_kind_inferred_from_name_and_overridable() -> None:
    assert [infer_kind(n) for n in ("email", "work_email", "identifiers.phone", "mobile_no", "zip")] == [
        "email",
        "email",
        "phone",
        "phone",
        "text",
    ]
    out, _ = run(
        {"fields": ["contact"], "normalize_as": {"contact": "phone"}, "default_region": "AT"},
        rec(contact="0664 1234567"),
    )
    assert out[0].data["contact"] == sha("+436641234567")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"fields": []}, "at least 1 item"),
        ({"fields": ["a", "a"]}, "listed more than once: a"),
        ({"fields": ["a"], "normalize_as": {"b": "email"}}, "normalize_as: 'b' not in fields"),
        ({"fields": ["a"], "normalize_as": {"a": "zip"}}, "Input should be 'email', 'phone' or 'text'"),
        ({"fields": ["a"], "target": "append"}, "Input should be 'replace' or 'suffix'"),
        ({"fields": ["a"], "on_invalid": "keep"}, "Input should be 'reject' or 'null'"),
        ({"fields": ["a"], "algorithm": "md5"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        HashConfig.model_validate(options)
