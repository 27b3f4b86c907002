"""The connector's options (shared by the source and the destination) and HubSpot's API shapes."""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from cdp_core import PluginConfig
from cdp_core.base import ConnectorContext
from cdp_core.http import BearerAuth, HttpClient, RateLimit, check_base_url, client_for, error_body
from cdp_core.traits import TraitMap, TraitsByStream, trait_streams
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

TYPE_NAME = "hubspot"
"""The type name in connectors.toml, for the source and the destination: ``type = "hubspot"``."""

DEFAULT_CONTACT_PROPERTIES = (
    "email",
    "hs_additional_emails",
    "firstname",
    "lastname",
    "phone",
    "mobilephone",
    "company",
    "jobtitle",
    "city",
    "country",
    "lifecyclestage",
    "hs_email_optout",
    "associatedcompanyid",
    "createdate",
    "lastmodifieddate",
    "hs_object_id",
)
DEFAULT_COMPANY_PROPERTIES = (
    "name",
    "domain",
    "industry",
    "phone",
    "city",
    "country",
    "numberofemployees",
    "annualrevenue",
    "lifecyclestage",
    "createdate",
    "hs_lastmodifieddate",
    "hs_object_id",
)

CONTACT_TRAITS = TraitMap.of(
    {
        "first_name": "firstname",
        "last_name": "lastname",
        "company": "company",
        "job_title": "jobtitle",
        "city": "city",
        "country": "country",
        "lifecycle_stage": "lifecyclestage",
        "email_opt_out": {"field": "hs_email_optout", "type": "boolean"},
    }
)
"""The traits a contact gives by default: names, company, place, lifecycle stage, the marketing opt-out.
Not the ids, dates and other bookkeeping properties: they stay in the stored record. A property not
read (``properties``) sets no trait."""
COMPANY_TRAITS = TraitMap.of(
    {
        "name": "name",
        "domain": "domain",
        "industry": "industry",
        "city": "city",
        "country": "country",
        "employees": {"field": "numberofemployees", "type": "number"},
        "annual_revenue": {"field": "annualrevenue", "type": "number"},
        "lifecycle_stage": "lifecyclestage",
    }
)
"""The traits a company gives by default."""


class HubSpotConfig(PluginConfig):
    """``[connectors.X] type = "hubspot"``: one HubSpot account (a private app's token).

    The source and the destination share this model (a connector read and written
    back is one ``[connectors.X]`` table).
    """

    access_token: SecretStr = Field(
        description='The private app\'s access token, as "${HUBSPOT_TOKEN}" in connectors.toml. '
        "Scopes: crm.objects.contacts.read (+ .write for the write-back), crm.objects.companies.read."
    )
    base_url: str = Field(
        "https://api.hubapi.com",
        description="The API's base URL (a proxy, a sandbox, a test server; http:// only for loopback).",
    )
    properties: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CONTACT_PROPERTIES),
        min_length=1,
        description="Contact properties to read (lastmodifieddate is always added).",
    )
    company_properties: list[str] = Field(
        default_factory=lambda: list(DEFAULT_COMPANY_PROPERTIES),
        min_length=1,
        description="Company properties to read (hs_lastmodifieddate is always added).",
    )
    lookback: int = Field(
        60,
        ge=0,
        le=7 * 86_400,
        description="Seconds re-read before the last run's high-water mark: HubSpot's search index lags writes. "
        "Records already delivered in that window are not delivered again.",
    )
    page_size: int = Field(200, ge=1, le=200, description="Results per search request (HubSpot's maximum: 200).")
    rate_limit: int = Field(
        190, ge=1, description="Requests per rate_period for the write-back (private apps: 190 / 10 s)."
    )
    rate_period: float = Field(10.0, gt=0, description="Seconds of rate_limit's window.")
    search_rate_limit: int = Field(
        4, ge=1, description="Search requests per search_rate_period (HubSpot: about 4-5 / s)."
    )
    search_rate_period: float = Field(1.0, gt=0, description="Seconds of search_rate_limit's window.")
    max_concurrency: int = Field(4, ge=1, le=32, description="Requests of this connector in flight at once.")
    traits: Annotated[TraitsByStream, trait_streams("contacts", "companies")] = Field(
        default_factory=dict,
        description="Source: stream -> the trait mapping replacing its default (contacts: CONTACT_TRAITS, "
        'companies: COMPANY_TRAITS), e.g. { contacts = { first_name = "firstname", tags = { field = "tags", type = "list", separator = ";" } } }.',
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("properties", "company_properties")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        names = [v.strip() for v in value]
        if any(not n for n in names):
            raise ValueError("property names must not be empty")
        return list(dict.fromkeys(names))


def hubspot_rate_policy(response: httpx.Response) -> float | None:
    """Hold the connector when HubSpot says its window is nearly used up (other apps share the budget).

    Private apps answer ``X-HubSpot-RateLimit-Remaining`` and
    ``X-HubSpot-RateLimit-Interval-Milliseconds`` on every non-search request.
    """
    remaining = response.headers.get("X-HubSpot-RateLimit-Remaining")
    if remaining is None:
        return None
    try:
        left = int(remaining)
        interval = int(response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "10000")) / 1000
    except ValueError:
        return None
    return interval if left <= 2 else None


def hubspot_reason(response: httpx.Response) -> str | None:
    """HubSpot's reason for a failed call: ``{"status": "error", "category", "message", "correlationId"}``."""
    body = error_body(response)
    if not isinstance(body, dict) or not isinstance(body.get("message"), str):
        return None
    category = body.get("category") or body.get("subCategory")
    reason = f"HubSpot {category}: {body['message']}" if category else f"HubSpot: {body['message']}"
    if body.get("correlationId"):
        reason += f" (correlationId {body['correlationId']})"
    return reason


def make_client(config: HubSpotConfig, context: ConnectorContext, *, search: bool) -> HttpClient:
    """A client of the core's HTTP layer for this connector: the search API has its own budget."""
    options: dict[str, Any] = {
        "base_url": config.base_url,
        "auth": BearerAuth(config.access_token),
        "max_concurrency": config.max_concurrency,
        "explain": hubspot_reason,
    }
    if search:
        options.update(rate_limit=RateLimit(config.search_rate_limit, per=config.search_rate_period), scope="search")
    else:
        options.update(rate_limit=RateLimit(config.rate_limit, per=config.rate_period), rate_policy=hubspot_rate_policy)
    return client_for(context, **options)


# -- HubSpot's response shapes: a page that does not match them is a clear error --------------


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)


class CrmObject(_Lenient):
    """One contact or company as the CRM v3 API returns it."""

    id: str = Field(min_length=1)
    properties: dict[str, Any]
    createdAt: str | None = None
    updatedAt: str | None = None
    archived: bool = False


class ArchivedObject(CrmObject):
    """One archived contact as ``GET /crm/v3/objects/contacts?archived=true`` lists it."""

    properties: dict[str, Any] = Field(default_factory=dict)
    archivedAt: str | None = None
    """When it was archived; HubSpot leaves it out at times (``updatedAt`` then stands for it)."""


class NextPage(_Lenient):
    after: str


class Paging(_Lenient):
    next: NextPage | None = None


class SearchPage(_Lenient):
    """``POST /crm/v3/objects/{object}/search``: ``{"total", "results": [...], "paging": {"next": {"after"}}}``;
    also a page of ``GET /crm/v3/objects/{object}`` (the list: no ``total``)."""

    total: int | None = None
    results: list[Any]
    """Each result is validated on its own (:class:`CrmObject`): a bad one is quarantined, not the page."""
    paging: Paging | None = None


class BatchError(_Lenient):
    status: str | None = None
    category: str | None = None
    message: str | None = None
    id: str | None = None
    context: Any = None


class BatchResult(_Lenient):
    id: str


class BatchResponse(_Lenient):
    """``POST /crm/v3/objects/contacts/batch/update``: 200 (all done) or 207 (multi-status, ``errors[]``)."""

    status: str | None = None
    results: list[BatchResult] = Field(default_factory=list)
    errors: list[BatchError] = Field(default_factory=list)
    numErrors: int | None = None
