"""``hash``: SHA-256 (hex) of normalized PII, for matching without sharing the value.

A hash only matches if both sides normalized the value the same way, so emails
and phones go through the very normalizers ``normalize`` uses; other fields are
trimmed and lower-cased. Vendor-specific rules (Meta wants phones without the
'+', Google wants it) belong to that vendor's destination plugin
(``cdp_meta_audiences.normalize``, ``cdp_google_ads.normalize``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

from cdp_core.base import PluginConfig, Transform, TransformContext
from cdp_core.records import Record
from cdp_core.transforms import normalizers
from cdp_core.transforms.fields import MISSING, FieldName, FieldPath, Invalid
from cdp_core.transforms.phones import Region

HashAs = Literal["email", "phone", "text"]
SUFFIX = "_sha256"
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


def infer_kind(field: str) -> HashAs:
    """How a field is normalized before hashing when ``normalize_as`` does not say: by its name."""
    leaf = field.rsplit(".", 1)[-1].lower()
    if "email" in leaf:
        return "email"
    if "phone" in leaf or "mobile" in leaf:
        return "phone"
    return "text"


class HashConfig(PluginConfig):
    fields: list[FieldName] = Field(min_length=1, description="fields to hash, e.g. ['email', 'identifiers.phone']")
    salt: SecretStr | None = Field(
        default=None, description="prepended to each value before hashing; write it as '${ENV_VAR}'"
    )
    target: Literal["replace", "suffix"] = Field(
        default="replace", description="'replace' the value with its hash, or write it to '<field>_sha256'"
    )
    normalize_as: dict[FieldName, HashAs] = Field(
        default_factory=dict,
        description="field -> email | phone | text; default: by name (…email… -> email, …phone…/…mobile… -> phone)",
    )
    default_region: Region = Field(default="DE", description="region for phone numbers without a '+' country code")
    on_invalid: Literal["reject", "null"] = Field(
        default="reject",
        description="an email or phone that cannot be normalized: 'reject' the record or set the hash to 'null' "
        "(never hashed as is: its hash would match nothing)",
    )
    skip_hashed: bool = Field(
        default=True, description="leave values that already are a SHA-256 hex digest as they are (no double hashing)"
    )

    @model_validator(mode="after")
    def _check(self) -> HashConfig:
        duplicates = sorted({f for f in self.fields if self.fields.count(f) > 1})
        if duplicates:
            raise ValueError(f"fields: listed more than once: {', '.join(duplicates)}")
        unknown = [f for f in self.normalize_as if f not in self.fields]
        if unknown:
            raise ValueError(f"normalize_as: {', '.join(map(repr, unknown))} not in fields")
        return self


def _text(value: Any) -> Any:
    if isinstance(value, str):
        text = value.strip().lower()
        return text or None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return Invalid(f"cannot hash a {type(value).__name__}")


class Hash(Transform):
    """Replaces fields with (or adds) the SHA-256 hex digest of their normalized value; blank stays blank."""

    config_model = HashConfig
    config: HashConfig

    def __init__(self, config: HashConfig) -> None:
        super().__init__(config)
        self._salt = config.salt.get_secret_value() if config.salt is not None else ""
        self._rules: list[tuple[FieldPath, FieldPath, Callable[[Any], Any]]] = []
        digesters: dict[str, Callable[[Any], Any]] = {}
        for name in config.fields:
            kind = config.normalize_as.get(name) or infer_kind(name)
            if kind not in digesters:
                digesters[kind] = self._digester(kind)
            source = FieldPath(name)
            target = source.suffixed(SUFFIX) if config.target == "suffix" else source
            self._rules.append((source, target, digesters[kind]))

    def _digester(self, kind: HashAs) -> Callable[[Any], Any]:
        """Value -> hex digest, ``None`` (blank) or :class:`Invalid`, cached per value.

        A record usually carries the same email in its data and its identifiers, and
        values repeat across records: the cache spares the normalizing and the hashing.
        """
        normalize = _text if kind == "text" else normalizers.build(kind, region=self.config.default_region)
        salt = self._salt
        sha256 = hashlib.sha256

        def digest(value: Any) -> Any:
            normalized = normalize(value)
            if normalized is None or normalized.__class__ is Invalid:
                return normalized
            return sha256((salt + normalized).encode()).hexdigest()

        cached = lru_cache(maxsize=1 << 12)(digest)
        # text only: the cache would take True, 1 and 1.0 for the same key
        return lambda value: cached(value) if value.__class__ is str else digest(value)

    def process(self, batch: list[Record], ctx: TransformContext) -> list[Record]:
        reject = self.config.on_invalid == "reject"
        skip_hashed = self.config.skip_hashed
        rules = self._rules
        out: list[Record] = []
        for record in batch:
            problems: list[str] | None = None
            for source, target, digest in rules:
                value = source.get(record)
                if value is MISSING or value is None:
                    continue
                if value.__class__ is str:
                    if not value or value.isspace():
                        continue
                    if skip_hashed and len(value) == 64 and _SHA256_HEX.fullmatch(value):
                        target.set(record, value.lower())
                        continue
                    hashed = digest(value)
                elif isinstance(value, (list, dict)):  # unhashable for the cache, and no single value
                    hashed = Invalid(f"cannot hash a {type(value).__name__}")
                else:
                    hashed = digest(value)
                if hashed is None:
                    continue
                if hashed.__class__ is Invalid:
                    if reject:
                        problems = (problems or []) + [f"{source.name}: {hashed.problem}"]
                    else:
                        target.set(record, None)
                    continue
                target.set(record, hashed)
            if problems:
                ctx.reject(record, "; ".join(problems))
            else:
                out.append(record)
        return out
