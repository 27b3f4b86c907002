"""The ``meta_audiences`` destination: a Meta Custom Audience kept as a mirror of the people fed to it.

Forgetting a person (:meth:`MetaAudiencesDestination.forget`, docs/privacy.md) removes them
with ``DELETE /{audience_id}/users``: the rows the mirror held for them, as they were
sent; without any, their hashed email addresses and phone numbers.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx
from cdp_core import (
    ConnectorContext,
    ForgetResult,
    ForgetState,
    ForgetSubject,
    PluginConfig,
    Record,
    RecordKind,
    WriteMode,
)
from cdp_core.forget import combine, result_of_error
from cdp_core.http import BearerAuth, HttpClient, check_base_url, client_for
from cdp_core.http.errors import AuthError, HttpError, RateLimited, response_json
from cdp_core.transforms.phones import Region
from cdp_profiles.audiences import (
    MAX_ROWS_PER_REQUEST,
    AudienceMirror,
    AudiencePlan,
    Member,
    MirrorDestination,
    chunked,
    person_fields,
)
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from cdp_meta_audiences import normalize
from cdp_meta_audiences.normalize import MATCH_KEYS, MetaKey

DEFAULT_SCHEMA: list[MetaKey] = ["EMAIL", "PHONE", "FN", "LN", "CT", "ZIP", "COUNTRY"]

_AUTH_CODES = frozenset({10, 102, 190, *range(200, 300)})
"""Graph API error codes of a bad, expired or under-privileged access token (Meta answers them with 400)."""
_THROTTLE_CODES = frozenset({4, 17, 32, 613, 80003})
"""Graph API error codes of the app, user, page and custom-audience rate limits."""


class MetaAudiencesConfig(PluginConfig):
    """``[connectors.X] type = "meta_audiences"``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    access_token: SecretStr = Field(description='a system user token with ads_management: "${META_ACCESS_TOKEN}"')
    audience_id: str = Field(pattern=r"^\d+$", description="the Custom Audience's id (customer list, subtype CUSTOM)")
    graph_version: str = Field("v22.0", pattern=r"^v\d+\.\d+$", description="Graph API version, e.g. v22.0")
    keys: list[MetaKey] = Field(
        default_factory=lambda: list(DEFAULT_SCHEMA),
        alias="schema",
        min_length=1,
        description="the schema keys to send (multi-key matching); needs EMAIL or PHONE",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="where to read a field instead of the defaults: first_name = 'data.vorname', "
        "extern_id = 'identifiers.crm_id' (see cdp_profiles.audiences.DEFAULT_SOURCES)",
    )
    default_region: Region = Field("DE", description="region for phone numbers written without a country code")
    rows_per_request: int = Field(MAX_ROWS_PER_REQUEST, ge=1, le=MAX_ROWS_PER_REQUEST)
    allow_empty: bool = Field(
        False, description="let a run that was fed nobody remove every member (off: such a run fails instead)"
    )
    base_url: str = Field(
        "https://graph.facebook.com", description="the Graph API host (proxies, tests; http:// only for loopback)"
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("keys")
    @classmethod
    def _check_keys(cls, keys: list[str]) -> list[str]:
        duplicates = sorted({k for k in keys if keys.count(k) > 1})
        if duplicates:
            raise ValueError(f"listed more than once: {', '.join(duplicates)}")
        if not set(keys) & set(MATCH_KEYS):
            raise ValueError("needs EMAIL or PHONE: names, places and birthdays alone cannot identify a person")
        return keys


class UsersResponse(BaseModel):
    """``POST|DELETE /{audience_id}/users``."""

    audience_id: str | None = None
    session_id: str | int | None = None
    num_received: int
    num_invalid_entries: int = 0
    invalid_entry_samples: Any = None


class MetaAudiencesDestination(MirrorDestination):
    """Keeps a Meta Custom Audience equal to the people it is fed (a mirror).

    ``write`` only records who was fed (normalized, hashed rows in the store's
    ``audience_pending``); a record without a usable email or phone is quarantined.
    ``finish`` (only after a complete run) sends the difference with what was last
    uploaded: removals with ``DELETE /{audience_id}/users``, then additions and changed
    rows with ``POST /{audience_id}/users``, at most ``rows_per_request`` rows a request.
    The first run adds everyone (plain adds, not ``usersreplace``: start from an empty
    audience, members added by hand are never removed).
    """

    config_model = MetaAudiencesConfig
    config: MetaAudiencesConfig
    write_mode: ClassVar[WriteMode] = WriteMode.upsert
    accepts: ClassVar[frozenset[RecordKind] | None] = frozenset({RecordKind.profile})
    purpose: ClassVar[str | None] = "ads"
    """Every person sent is checked against their ads consent first (docs/consent.md); a graph may set another."""
    supports_forget: ClassVar[bool] = True

    def __init__(self, config: MetaAudiencesConfig, context: ConnectorContext, options: Any = None) -> None:
        super().__init__(config, context, options)
        self.mirror = AudienceMirror(context.store_url, context.name, config.audience_id)
        self.client: HttpClient = client_for(  # no I/O until the first request
            context,
            base_url=f"{config.base_url.rstrip('/')}/{config.graph_version}",
            auth=BearerAuth(config.access_token),
            max_concurrency=1,  # batches of one audience go one after the other
        )

    # -- the run (staging, planning, the empty-audience guard: cdp_profiles.audiences.MirrorDestination) --

    @property
    def audience_label(self) -> str:
        return f"Meta audience {self.config.audience_id}"

    def build_member(self, record: Record) -> Member | list[Member] | str:
        """The members a record stands for, or why it cannot be sent: the person's row (its primary email
        and phone with every other field), and a row of its own for each further email and phone (a Meta
        row holds one of each; Meta matches the person on any of the rows)."""
        fields = person_fields(record, self.config.fields)
        result = normalize.member(fields, self.config.keys, self.config.default_region)
        if isinstance(result, str):
            return result
        key, row = result
        extra = normalize.secondary_rows(fields, self.config.keys, self.config.default_region)
        if not extra:
            return Member(key, row, record.key)
        return [Member(key, row, record.key), *(Member(k, r, record.key) for k, r in extra if k != key)]

    def upload(self, plan: AudiencePlan) -> None:
        self._remove()
        self._add(plan)

    def forget(self, subject: ForgetSubject) -> ForgetResult:
        """Remove the person from the audience(s): the rows the mirror held, else their hashed email and phone."""
        by_audience: dict[str, list[dict[str, str]]] = {}
        for held in subject.audience_rows:
            if isinstance(held.row, dict):
                by_audience.setdefault(held.audience_id, []).append(held.row)
        schema: list[str] = list(self.config.keys)
        if not by_audience:
            rows = identifier_rows(subject, self.config.default_region)
            if rows:
                by_audience[self.config.audience_id], schema = rows, []
        results: list[ForgetResult] = []
        for audience_id, rows in by_audience.items():
            for chunk in chunked(rows, self.config.rows_per_request):
                body = {"payload": normalize.payload(schema, chunk)}
                try:  # one attempt: the privacy product retries with its own backoff
                    response = self.client.request("DELETE", f"/{audience_id}/users", json=body, idempotent=False)
                    received = response_json(response, UsersResponse, connector=self.context.name).num_received
                except HttpError as exc:
                    results.append(result_of_error(_graph_error(exc), subject, "Meta"))
                    continue
                answer = f"Meta {response.status_code}: audience {audience_id} received {received} row(s) to remove"
                results.append(ForgetResult(state=ForgetState.done, answer=answer))
        return combine(results, "Meta: no row, email or phone to remove: nothing held")

    # -- requests ----------------------------------------------------------------------------

    def _remove(self) -> None:
        for chunk in self.mirror.removals(self.config.rows_per_request):
            self._send("DELETE", [m.row for m in chunk])
            self.mirror.confirm_removed(chunk)

    def _add(self, plan: AudiencePlan) -> None:
        total = plan.additions + plan.changed
        if not total:
            return
        session_id = secrets.randbits(53)  # one upload session for all batches of this run's additions
        batches = -(-total // self.config.rows_per_request)
        for seq, chunk in enumerate(self.mirror.upserts(self.config.rows_per_request), start=1):
            members = [change.member for change in chunk]
            session = {
                "session_id": session_id,
                "batch_seq": seq,
                "last_batch_flag": seq >= batches,
                "estimated_num_total": total,
            }
            self._send("POST", [m.row for m in members], session)
            self.mirror.confirm_upserted(members)

    def _send(self, method: str, rows: Sequence[dict[str, str]], session: dict[str, Any] | None = None) -> None:
        body: dict[str, Any] = {"payload": normalize.payload(self.config.keys, rows)}
        if session is not None:
            body["session"] = session
        path = f"/{self.config.audience_id}/users"
        try:
            # Adding or removing the same rows again changes nothing: safe to retry on 429 and 5xx.
            response = self.client.request(method, path, json=body, idempotent=True)
        except HttpError as exc:
            raise _graph_error(exc) from None
        result = response_json(response, UsersResponse, connector=self.context.name)
        if result.num_invalid_entries:
            self.context.logger.warning(
                "Meta audience %s: %s of %d rows were invalid entries (%s)",
                self.config.audience_id,
                result.num_invalid_entries,
                len(rows),
                "removal" if method == "DELETE" else "addition",
            )
        if result.num_received != len(rows):
            self.context.logger.warning(
                "Meta audience %s: sent %d rows, Meta received %d",
                self.config.audience_id,
                len(rows),
                result.num_received,
            )


def identifier_rows(subject: ForgetSubject, region: str) -> list[dict[str, str]]:
    """One hashed row per email and per phone of the person (normalized as Meta wants them)."""
    rows: list[dict[str, str]] = []
    for value in subject.identifiers.get("email", []):
        if normalized := normalize.email(value):
            rows.append(normalize.hashed_row({"EMAIL": normalized}))
    for value in subject.identifiers.get("phone", []):
        if normalized := normalize.phone(value, region):
            rows.append(normalize.hashed_row({"PHONE": normalized}))
    return rows


def _graph_error(exc: HttpError) -> HttpError:
    """The Graph API's error (type, code, subcode, title, trace id) in the message; a token problem as AuthError.

    Meta answers most errors with 400 and ``{"error": {"type", "code", "error_subcode",
    "error_user_title", "fbtrace_id", "message"}}``: an expired token is ``OAuthException``
    code 190, not a 401. The message is left out (the core never puts response text in errors).
    """
    error = _json_error(exc.response)
    if error is None:
        return exc
    code = error.get("code")
    parts = [str(error.get("type") or "error")]
    if code is not None:
        parts.append(f"code {code}" + (f"/{error['error_subcode']}" if error.get("error_subcode") else ""))
    if isinstance(error.get("error_user_title"), str):
        parts.append(repr(error["error_user_title"]))
    if error.get("fbtrace_id"):
        parts.append(f"fbtrace_id {error['fbtrace_id']}")
    detail = f"{exc.detail}: Meta Graph API {', '.join(parts)}"
    cls: type[HttpError] = type(exc)
    if code in _AUTH_CODES or exc.status in (401, 403):
        cls = AuthError
        detail += "; the access token is invalid, expired or lacks ads_management on this audience's ad account"
    elif code in _THROTTLE_CODES:
        cls = RateLimited
    return exc.explained(detail, cls)


def _json_error(response: httpx.Response | None) -> dict[str, Any] | None:
    if response is None:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None
