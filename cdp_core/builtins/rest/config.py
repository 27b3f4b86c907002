"""The options of a declarative REST source (``type = "rest"``): pydantic models, checked like any plugin's.

The names follow the common declarative REST tools where they agree: a ``paginator``
with a ``type`` (``offset``, ``page_number``, ``cursor``, ``next_url``, ``link_header``),
``record_path`` into the response, an ``incremental`` block with the record's
``cursor_path`` and the ``start_param`` that filters on the server, ``primary_key``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from cdp_core.base import PluginConfig
from cdp_core.http.errors import check_base_url
from cdp_core.records import RecordKind
from cdp_core.traits import TraitsOption

START = "{start}"
"""In a stream's ``json`` body: replaced by where the read starts (the incremental filter's value)."""


# -- auth ------------------------------------------------------------------------------------


class BearerAuthConfig(PluginConfig):
    type: Literal["bearer"]
    token: SecretStr = Field(description='the token, as "${ENV}"; sent as Authorization: Bearer TOKEN')


class BasicAuthConfig(PluginConfig):
    type: Literal["basic"]
    username: str
    password: SecretStr = Field(description='as "${ENV}"')


class ApiKeyAuthConfig(PluginConfig):
    type: Literal["api_key"]
    name: str = Field(min_length=1, description="the header or query parameter that carries the key")
    api_key: SecretStr = Field(description='the key, as "${ENV}"')
    location: Literal["header", "query"] = "header"
    prefix: str = Field("", description="put before the key in a header (\"Token \")")


class OAuth2RefreshConfig(PluginConfig):
    type: Literal["oauth2_refresh"]
    token_url: str
    client_id: str
    client_secret: SecretStr
    refresh_token: SecretStr = Field(description="the first refresh token; a rotated one is kept in .cdp/tokens/")
    scope: str | None = None
    client_auth: Literal["body", "basic"] = "body"

    @field_validator("token_url")
    @classmethod
    def _https(cls, value: str) -> str:
        return check_base_url(value)


AuthConfig = Annotated[
    BearerAuthConfig | BasicAuthConfig | ApiKeyAuthConfig | OAuth2RefreshConfig, Field(discriminator="type")
]


# -- pagination ------------------------------------------------------------------------------


class OffsetPaginator(PluginConfig):
    type: Literal["offset"]
    limit: int = Field(100, ge=1, description="records per request")
    offset_param: str = "offset"
    limit_param: str = "limit"
    total_path: str | None = Field(None, description="where the body says how many records there are")
    has_more_path: str | None = Field(None, description="where the body says whether more follow (false: the last page)")
    next_offset_path: str | None = Field(None, description="where the body gives the next offset")


class PageNumberPaginator(PluginConfig):
    type: Literal["page_number"]
    page_param: str = "page"
    base_page: int = Field(1, ge=0, description="the first page's number")
    size: int | None = Field(None, ge=1, description="records per page, sent as size_param")
    size_param: str = "per_page"
    total_pages_path: str | None = None


class CursorPaginator(PluginConfig):
    type: Literal["cursor"]
    cursor_path: str = Field(description="where the body gives the next page's token (\"paging.next.after\")")
    cursor_param: str = "after"
    location: Literal["query", "body"] = Field("query", description="where the token goes: a query parameter or a JSON body key")


class NextUrlPaginator(PluginConfig):
    type: Literal["next_url"]
    next_url_path: str = Field(description="where the body gives the next page's URL (\"links.next\")")


class LinkHeaderPaginator(PluginConfig):
    type: Literal["link_header"]


class SinglePage(PluginConfig):
    type: Literal["single_page"]


PaginatorConfig = Annotated[
    OffsetPaginator | PageNumberPaginator | CursorPaginator | NextUrlPaginator | LinkHeaderPaginator | SinglePage,
    Field(discriminator="type"),
]


# -- incremental -----------------------------------------------------------------------------


class IncrementalConfig(PluginConfig):
    cursor_path: str = Field(description="the record's field the stream is incremental by (a dotted path)")
    type: Literal["timestamp", "number"] = "timestamp"
    start_param: str | None = Field(
        None, description='the query parameter that asks the server for records from a value on ("updated_since")'
    )
    format: str = Field(
        "iso",
        description='how a timestamp is written into the filter and read from numbers: "iso", Unix "s" or "ms", '
        'or a strftime pattern ("%Y-%m-%d %H:%M:%S", in UTC)',
    )
    initial_value: str | int | float | None = Field(None, description="where the first read starts")
    lookback: timedelta | float | None = Field(
        None, description='start this far before the last value read ("PT5M", or a number for numbers)'
    )
    ascending: bool = Field(
        False,
        description="the API returns records oldest first by cursor_path (ask for it in params or json): each next "
        "page is then asked from the last value read, so records that change during the read are not skipped",
    )

    @model_validator(mode="after")
    def _lookback_fits_type(self) -> IncrementalConfig:
        if self.type == "timestamp" and isinstance(self.lookback, (int, float)) and not isinstance(self.lookback, bool):
            self.lookback = timedelta(seconds=self.lookback)
        if self.type == "number" and isinstance(self.lookback, timedelta):
            raise ValueError("lookback: a number cursor takes a number, not a duration")
        return self


class DeletedWhen(PluginConfig):
    field: str = Field(description="the record's field that marks it deleted (a dotted path)")
    equals: Any = Field(True, description="the value that means deleted")


# -- streams and the source ------------------------------------------------------------------


class RestStreamConfig(PluginConfig):
    path: str = Field(min_length=1, description="the endpoint, relative to base_url (\"/v1/persons\")")
    method: Literal["GET", "POST"] = "GET"
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description="query parameters")
    json_body: dict[str, Any] | None = Field(
        None, alias="json", description='a JSON body (a POST search); "{start}" in it is replaced by the filter value'
    )
    record_path: str | None = Field(None, description="where the records are in the body (\"data\"); unset: the body is the list")
    paginator: PaginatorConfig = Field(default_factory=lambda: SinglePage(type="single_page"))
    incremental: IncrementalConfig | None = None
    primary_key: list[str] = Field(default_factory=lambda: ["id"], description="the field(s) forming the record key")
    kind: RecordKind = RecordKind.profile
    identifiers: dict[str, str] = Field(
        default_factory=dict, description="identifier type -> field path; a path through a list gives several values"
    )
    occurred_at: str | None = Field(None, description="the field holding when it happened")
    traits: TraitsOption | None = Field(None, description="which fields become profile traits (unset: all of them)")
    deleted_when: DeletedWhen | None = Field(None, description="records matching it become tombstones")

    model_config = {**PluginConfig.model_config, "populate_by_name": True}

    @field_validator("primary_key", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> RestStreamConfig:
        if self.traits is not None and self.kind is not RecordKind.profile:
            raise ValueError(f"traits are for streams of kind 'profile'; this stream is of kind {str(self.kind)!r}")
        if self.json_body is not None and self.method == "GET":
            raise ValueError("json: a body is sent with method = \"POST\"")
        in_body = START in _strings(self.json_body)
        if in_body and self.incremental is None:
            raise ValueError(f"json: {START} needs an incremental block (where the read starts)")
        if self.incremental is not None and self.incremental.ascending and not (self.incremental.start_param or in_body):
            raise ValueError("incremental.ascending needs a server-side filter: start_param, or {start} in json")
        if isinstance(self.paginator, CursorPaginator) and self.paginator.location == "body" and self.method != "POST":
            raise ValueError("paginator.location = \"body\" needs method = \"POST\"")
        return self

    @property
    def filters_in_body(self) -> bool:
        return START in _strings(self.json_body)


class RateLimitConfig(PluginConfig):
    requests: int = Field(ge=1)
    per: float = Field(1.0, gt=0, description="seconds")


class RestSourceConfig(PluginConfig):
    base_url: str = Field(description="https://HOST[/PATH] (plain http only for a loopback address)")
    auth: AuthConfig | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="sent with every request")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict, description="sent with every request")
    rate_limit: RateLimitConfig | None = None
    max_concurrency: int = Field(4, ge=1)
    streams: dict[str, RestStreamConfig] = Field(min_length=1)

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)


def _strings(value: Any) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []
