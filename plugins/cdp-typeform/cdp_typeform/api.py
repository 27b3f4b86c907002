"""The connector's config, the Typeform Responses API's shapes, and the HTTP client.

Facts used here (Typeform Responses API, ``GET /forms/{form_id}/responses``):

- ``Authorization: Bearer <personal access token>`` (scope ``responses:read``);
- base URL ``https://api.typeform.com``, or ``https://api.eu.typeform.com`` for
  accounts in the EU data center;
- ``page_size`` up to 1000; ``after``/``before`` take a response token (exclusive)
  and sort the responses in the order Typeform processed them, which can differ from
  ``submitted_at`` (a response processed late); they cannot be combined with ``sort``.
  Without them the order is ``sort=submitted_at,asc|desc`` (default newest first), and
  ``since``/``until`` filter on ``submitted_at``, inclusive, to the second (ISO 8601 UTC
  with a ``T``, or Unix seconds). How the first read combines the two orders: the
  source's module docs;
- the body is ``{"total_items", "page_count", "items": [...]}``; an item has
  ``token``, ``response_id``, ``landed_at``, ``submitted_at``, ``answers`` (each
  with ``field {id, ref, type}``, its ``type`` and the value under that type's name:
  ``number``, ``text``, ``email``, ``choice {label}``...), ``hidden``, ``calculated``;
- rate limit: 2 requests per second per account for the Responses API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from cdp_core import ConnectorContext, PluginConfig
from cdp_core.http import BearerAuth, HttpClient, RateLimit, check_base_url, client_for, error_body
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

TYPE_NAME = "typeform"
"""The type name in connectors.toml: ``[connectors.X] type = "typeform"``."""

BASE_URLS = ("https://api.typeform.com", "https://api.eu.typeform.com", "https://api.typeform.eu")


class TypeformConfig(PluginConfig):
    """``[connectors.X] type = "typeform"``: one form whose NPS (or opinion-scale) answers become ``nps_response``."""

    # A validation error must never echo the token (pydantic shows the input by default).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    token: SecretStr = Field(description='A personal access token (scope responses:read), as "${TYPEFORM_TOKEN}".')
    webhook_secret: SecretStr | None = Field(
        None,
        description="The secret set on the form's webhook (Typeform-Signature), as \"${TYPEFORM_WEBHOOK_SECRET}\"; "
        "unset: no webhook.",
    )
    form_id: str = Field(
        min_length=1, pattern=r"^[A-Za-z0-9_-]+$", description="The form's id: .../to/<form_id> in the form's URL."
    )
    base_url: str = Field(
        "https://api.typeform.com",
        description="https://api.typeform.com, or https://api.eu.typeform.com for an account in the EU data center.",
    )
    score_field: str = Field(
        min_length=1, description="The ref or id of the NPS / opinion-scale question whose number is the score (0-10)."
    )
    email_field: str | None = Field(
        None,
        description="Where the respondent's email is: a hidden field's name, or the ref/id of an email question. "
        "Unset: the hidden field 'email', else the first email answer. Anonymous answers have none.",
    )
    comment_field: str | None = Field(None, description="The ref or id of the question with the comment (optional).")
    channel_field: str | None = Field(
        None, description="A hidden field's name, or a question's ref/id, telling the channel (email, web, app...)."
    )
    channel: str | None = Field(None, description="The channel when no channel_field value is found (e.g. 'email').")
    survey: str | None = Field(None, description="The survey's label in cdp's NPS reports; default: the form id.")
    page_size: int = Field(1000, ge=1, le=1000, description="Responses per request (Typeform allows up to 1000).")

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        try:
            return check_base_url(value)
        except ValueError as exc:
            raise ValueError(f"{exc}; Typeform's hosts: {', '.join(BASE_URLS)}") from None


def make_client(config: TypeformConfig, context: ConnectorContext) -> HttpClient:
    """The connector's client: bearer token, 2 requests per second (Typeform's limit for the Responses API)."""
    return client_for(
        context,
        base_url=config.base_url,
        auth=BearerAuth(config.token),
        rate_limit=RateLimit(2, per=1.0),
        max_concurrency=2,
        explain=typeform_reason,
    )


def typeform_reason(response: httpx.Response) -> str | None:
    """Typeform's reason for a failed call: ``{"code": "FORM_NOT_FOUND", "description": "...", "details": [...]}``."""
    body = error_body(response)
    if not isinstance(body, dict) or not (body.get("code") or body.get("description")):
        return None
    reason = f"Typeform {body.get('code') or 'error'}"
    if isinstance(body.get("description"), str):
        reason += f": {body['description']}"
    details = [d.get("description") for d in body.get("details") or [] if isinstance(d, dict) and d.get("description")]
    if details:
        reason += f" ({'; '.join(str(d) for d in details[:3])})"
    return reason


# -- response shapes: a page that does not match is a clear error, never a silent gap ----------


class AnswerField(BaseModel):
    id: str
    ref: str | None = None
    type: str | None = None


class Answer(BaseModel):
    """One answer; its value sits under the key its ``type`` names (``number``, ``text``, ``email``...)."""

    model_config = ConfigDict(extra="allow")

    field: AnswerField
    type: str

    def value(self) -> Any:
        raw = (self.model_extra or {}).get(self.type)
        if self.type == "choice" and isinstance(raw, dict):
            return raw.get("label") or raw.get("other")
        if self.type == "choices" and isinstance(raw, dict):
            labels = list(raw.get("labels") or [])
            return ", ".join([*labels, *([raw["other"]] if raw.get("other") else [])]) or None
        return raw

    def matches(self, name: str) -> bool:
        return name in (self.field.id, self.field.ref)


class ResponseItem(BaseModel):
    token: str = Field(min_length=1)
    response_id: str | None = None
    landed_at: datetime | None = None
    submitted_at: datetime | None = None
    answers: list[Answer] | None = None  # null when the response has no answer
    hidden: dict[str, Any] | None = None
    calculated: dict[str, Any] | None = None


class ResponsesPage(BaseModel):
    total_items: int = Field(ge=0)
    page_count: int = Field(ge=0)
    items: list[Any]
    """Each one validated on its own as a :class:`ResponseItem`: a bad one is quarantined, not the page."""
