"""The connector's config, the Mailchimp Marketing API's shapes, and the HTTP client.

Facts used here (Mailchimp Marketing API 3.0):

- base URL ``https://<dc>.api.mailchimp.com/3.0``; ``<dc>`` is the suffix of the API
  key (``0123...cdef-us21`` -> ``us21``);
- HTTP basic auth with any user name and the API key as the password;
- at most 10 simultaneous connections per key; beyond that Mailchimp answers 429
  (sometimes a bare 403), so the connector caps its requests in flight at 10;
- the subscriber hash (a member's ``id``) is the MD5 of the lowercased email.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Annotated, Any

import httpx
from cdp_core import ConnectorContext, PluginConfig
from cdp_core.http import BasicAuth, HttpClient, check_base_url, client_for
from cdp_core.http.errors import error_body
from cdp_core.traits import TraitMap, TraitsByStream, trait_streams
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

TYPE_NAME = "mailchimp"
"""The type name in connectors.toml: ``[connectors.X] type = "mailchimp"``."""

MAX_CONNECTIONS = 10
"""Mailchimp's limit of simultaneous connections per API key."""

DEFAULT_MERGE_FIELDS = {
    "FNAME": "first_name",
    "LNAME": "last_name",
    "PHONE": "phone",
    "BIRTHDAY": "birthday",
    "ADDRESS": "address",
}
"""The merge tags of a new Mailchimp audience, and the trait each becomes."""

_DATA_CENTER = re.compile(r"^[a-z]+[0-9]+$")

MEMBER_TRAITS = TraitMap.of(
    {
        "first_name": "first_name",
        "last_name": "last_name",
        "birthday": "birthday",
        "city": "address.city",
        "state": "address.state",
        "zip": "address.zip",
        "country": "address.country",
        "tags": {"field": "tags", "type": "list"},
    }
)
"""The traits a member gives by default: the default merge fields (by their trait names in
``merge_fields``), the city and country of the address, the tags as a list. The subscription
status is the member's email consent (stream ``consents``), not a trait."""


class MailchimpConfig(PluginConfig):
    """``[connectors.X] type = "mailchimp"``: one audience; the source and the destination share it."""

    # A validation error must never echo the key it refused (pydantic shows the input by default).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    base_url: str | None = Field(
        None,
        description="The API's base URL (a proxy, a sandbox, a test server; http:// only for loopback); "
        "default https://<dc>.api.mailchimp.com/3.0 from the key's data center.",
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    api_key: SecretStr = Field(
        description='The Marketing API key, as "${MAILCHIMP_API_KEY}"; it ends with its data center ("-us21").'
    )
    list_id: str = Field(
        min_length=1,
        pattern=r"^[A-Za-z0-9]+$",
        description="The audience (list) id: Audience > Settings > Audience ID.",
    )
    merge_fields: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_MERGE_FIELDS),
        description="Source: merge tag -> trait name (FNAME -> first_name). Unlisted merge tags keep their tag as name.",
    )
    page_size: int = Field(1000, ge=1, le=1000, description="Members per request (Mailchimp allows up to 1000).")
    traits: Annotated[TraitsByStream, trait_streams("members")] = Field(
        default_factory=dict,
        description="Source: stream -> the trait mapping replacing its default (members: MEMBER_TRAITS); "
        "a merge field outside the default mapping becomes a trait only when a mapping names it.",
    )
    settle_seconds: int = Field(
        60,
        ge=0,
        le=86_400,
        description="Source: members changed in the last N seconds wait for the next run "
        "(each read is a fixed window, so clock skew and changes made during the read cannot skip anyone).",
    )
    max_concurrency: int = Field(
        MAX_CONNECTIONS,
        ge=1,
        le=MAX_CONNECTIONS,
        description="Requests in flight at once (Mailchimp allows 10 per key; lower it when other tools share the key).",
    )

    @field_validator("api_key")
    @classmethod
    def _names_a_data_center(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value().strip()
        head, dash, dc = key.rpartition("-")
        if not dash or not head or not _DATA_CENTER.match(dc):
            # Never echo the key: say what is expected.
            raise ValueError("a Mailchimp API key ends with its data center after a dash, like '...-us21'")
        return SecretStr(key)

    @property
    def data_center(self) -> str:
        """The data center named by the key's suffix (``us21``)."""
        return self.api_key.get_secret_value().rpartition("-")[2]

    @property
    def api_base(self) -> str:
        """``base_url`` when set, else ``https://<dc>.api.mailchimp.com/3.0``."""
        return self.base_url or f"https://{self.data_center}.api.mailchimp.com/3.0"


def make_client(config: MailchimpConfig, context: ConnectorContext) -> HttpClient:
    """The connector's client: basic auth with the key, at most ``max_concurrency`` requests in flight.

    The source and the destination of one connector share its limiter (same
    connector name), so together they never open more than 10 connections.
    """
    return client_for(
        context,
        base_url=config.api_base,
        auth=BasicAuth("cdp", config.api_key),
        max_concurrency=config.max_concurrency,
        explain=mailchimp_reason,
    )


def mailchimp_reason(response: httpx.Response) -> str | None:
    """Mailchimp's reason for a failed call, from its problem document: ``title: detail``."""
    body = error_body(response)
    if not isinstance(body, dict):
        return None
    parts = [str(body[k]).strip() for k in ("title", "detail") if isinstance(body.get(k), str) and body[k].strip()]
    return ": ".join(parts) or None


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 (hex) of the lowercased email."""
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()


# -- response shapes: a page that does not match is a clear error, never a silent gap ----------


class Tag(BaseModel):
    id: int | None = None
    name: str


class Member(BaseModel):
    """One audience member (``GET /lists/{list_id}/members``); other fields are ignored."""

    id: str = Field(min_length=1)
    email_address: str
    status: str
    last_changed: datetime
    merge_fields: dict[str, Any] = Field(default_factory=dict)
    tags: list[Tag] = Field(default_factory=list)


class MembersPage(BaseModel):
    members: list[Any]
    """Each one validated on its own as a :class:`Member`: a bad one is quarantined, not the page."""
    total_items: int = Field(ge=0)


class MemberError(BaseModel):
    """One member a batch refused (listed in a 200 answer).

    The fields of an ``errors`` item in Mailchimp's OpenAPI description of the batch answer
    (``error_code`` is one of a few names such as ``ERROR_CONTACT_EXISTS``, ``ERROR_GENERIC``).
    """

    email_address: str = ""
    error: str = ""
    error_code: str | None = None
    field: str | None = None
    field_message: str | None = None


class BatchResult(BaseModel):
    """The answer of ``POST /lists/{list_id}`` (batch subscribe or update).

    Mailchimp's OpenAPI description also lists ``new_members`` and ``updated_members`` (whole
    member objects, up to 500 each): not read, the counts and the errors are what a sync reports.
    """

    total_created: int = 0
    total_updated: int = 0
    error_count: int = 0
    errors: list[MemberError] = Field(default_factory=list)
