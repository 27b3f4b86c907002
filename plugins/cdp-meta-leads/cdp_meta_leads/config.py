"""The options of ``[connectors.X] type = "meta_leads"``."""

from __future__ import annotations

import re
from typing import Annotated

from cdp_core import PluginConfig
from cdp_core.http import check_base_url
from cdp_core.traits import TraitMap, TraitsByStream, trait_streams
from pydantic import Field, SecretStr, field_validator

_VERSION = re.compile(r"v\d+\.\d+")
_ID = re.compile(r"\d+")
_FIELD = re.compile(r"[a-z][a-z0-9_]*")

DEFAULT_FIELDS = ("id", "created_time", "field_data", "ad_id", "campaign_id")
"""The lead fields always asked for."""

LEAD_TRAITS = TraitMap.of(
    {
        "full_name": "full_name",
        "first_name": "first_name",
        "last_name": "last_name",
        "company": "company_name",
        "job_title": "job_title",
        "city": "city",
        "state": "state",
        "zip": "zip_code",
        "country": "country",
    }
)
"""The traits a lead gives by default: the answers to Meta's standard questions about a person.
Not the lead, form, ad and campaign ids nor the submission time (they stay in the stored record),
and not the form's own questions: name those in ``traits.leads`` (their answers are in the record)."""


class MetaLeadsConfig(PluginConfig):
    """Unknown keys are errors (``PluginConfig``)."""

    access_token: SecretStr = Field(
        description='A long-lived Page (or system user) access token, as "${META_ACCESS_TOKEN}" in connectors.toml; '
        "it needs leads_retrieval, pages_manage_ads, pages_read_engagement, pages_show_list and ads_management.",
    )
    app_secret: SecretStr | None = Field(
        None,
        description="The Meta app's secret (App settings > Basic), which signs webhook POSTs (X-Hub-Signature-256), "
        'as "${META_APP_SECRET}"; unset: no webhook.',
    )
    verify_token: SecretStr | None = Field(
        None,
        description="The verify token typed into the app's webhook subscription; the GET handshake must carry it, "
        'as "${META_VERIFY_TOKEN}".',
    )
    graph_version: str = Field("v21.0", description='The Graph API version, "vNN.N".')
    base_url: str = Field(
        "https://graph.facebook.com", description="The Graph API host (proxies, tests; http:// only for loopback)."
    )
    form_ids: list[str] = Field(min_length=1, description="The lead forms to read (their numeric ids).")
    page_size: int = Field(100, ge=1, le=500, description="Leads per request.")
    extra_fields: list[str] = Field(
        default_factory=list,
        description='More lead fields to ask for and keep, e.g. ["adset_id", "ad_name", "is_organic", "platform"].',
    )
    lookback_seconds: int = Field(
        60,
        ge=0,
        le=86400,
        description="How far before the newest lead read the next run starts (leads already read there are skipped).",
    )
    rate_limit_retries: int = Field(
        3, ge=0, le=10, description="How often to wait and try again after a throttling error (codes 4, 17, 32, 613)."
    )
    rate_limit_wait: float = Field(
        60.0, ge=0, le=3600, description="Seconds to wait after the first throttling error; doubled each time."
    )
    max_rate_limit_wait: float = Field(
        900.0, ge=0, le=86400, description="Longest single wait; a longer one Meta asks for fails the run instead."
    )
    traits: Annotated[TraitsByStream, trait_streams("leads")] = Field(
        default_factory=dict,
        description="stream -> the trait mapping replacing its default (leads: LEAD_TRAITS); "
        "the form's custom questions become traits only when a mapping names them.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("graph_version")
    @classmethod
    def _version(cls, value: str) -> str:
        value = value.strip()
        if not value.startswith("v"):
            value = "v" + value
        if not _VERSION.fullmatch(value):
            raise ValueError(f"{value!r} is not a Graph API version such as v21.0")
        return value

    @field_validator("form_ids", mode="before")
    @classmethod
    def _forms(cls, value: object) -> list[str]:
        if not isinstance(value, (list, tuple)):
            raise ValueError("form_ids is a list of lead form ids")  # noqa: TRY004 - pydantic wants ValueError
        forms = [str(v).strip() for v in value]
        bad = [f for f in forms if not _ID.fullmatch(f)]
        if bad:
            raise ValueError(f"lead form ids are numeric, got {bad}")
        if len(set(forms)) != len(forms):
            raise ValueError("a lead form id is listed twice")
        return forms

    @field_validator("extra_fields")
    @classmethod
    def _fields(cls, value: list[str]) -> list[str]:
        bad = [f for f in value if not _FIELD.fullmatch(f)]
        if bad:
            raise ValueError(f"not lead field names: {bad}")
        return [f for f in dict.fromkeys(value) if f not in DEFAULT_FIELDS]

    @property
    def fields(self) -> str:
        return ",".join((*DEFAULT_FIELDS, *self.extra_fields))
