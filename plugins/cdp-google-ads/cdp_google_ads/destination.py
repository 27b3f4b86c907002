"""The ``google_ads`` destination: a Customer Match user list kept as a mirror of the people fed to it.

Forgetting a person (:meth:`GoogleAdsDestination.forget`, docs/privacy.md) is an
OfflineUserDataJob with ``remove`` operations, as the mirror's removals: the user
identifiers the mirror held for them, or without any, their hashed emails and phones.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

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
from cdp_core.http import HttpClient, MemoryTokenStore, OAuth2RefreshAuth, check_base_url, client_for
from cdp_core.http.auth import SecretAuth, reveal
from cdp_core.http.errors import AuthError, HttpError, response_json
from cdp_core.transforms.phones import Region
from cdp_profiles.audiences import (
    MAX_ROWS_PER_REQUEST,
    AudienceMirror,
    AudiencePlan,
    Member,
    MirrorDestination,
    person_fields,
    sha256_hex,
)
from pydantic import BaseModel, Field, SecretStr, field_validator

from cdp_google_ads import normalize
from cdp_google_ads.normalize import Identifier

TOKEN_URL = "https://oauth2.googleapis.com/token"
MAX_IDENTIFIERS = 100_000
"""Google's limit of user identifiers per addOperations request; about 10,000 is recommended."""

Consent = Literal["GRANTED", "DENIED", "UNSPECIFIED"]


def _digits(value: str) -> str:
    """A customer id as Google's URLs want it: ``123-456-7890`` -> ``1234567890``."""
    digits = value.replace("-", "").strip()
    if not digits.isdigit():
        raise ValueError(f"{value!r} is not a Google Ads customer id (ten digits, dashes allowed)")
    return digits


class GoogleAdsConfig(PluginConfig):
    """``[connectors.X] type = "google_ads"``."""

    developer_token: SecretStr = Field(
        description='the Google Ads API developer token: "${GOOGLE_ADS_DEVELOPER_TOKEN}"'
    )
    customer_id: str = Field(description="the account that owns the user list (dashes allowed)")
    login_customer_id: str | None = Field(None, description="the manager account's id, when access goes through one")
    user_list_id: str = Field(
        pattern=r"^\d+$", description="the Customer Match user list's id (upload key: contact info)"
    )
    client_id: str = Field(description="the OAuth2 client id")
    client_secret: SecretStr = Field(description='"${GOOGLE_ADS_CLIENT_SECRET}"')
    refresh_token: SecretStr = Field(
        description='an OAuth2 refresh token with the adwords scope: "${GOOGLE_ADS_REFRESH_TOKEN}"'
    )
    api_version: str = Field("v21", pattern=r"^v\d+$", description="Google Ads API version in the URL")
    identifiers: list[Identifier] = Field(
        default_factory=lambda: list(normalize.IDENTIFIERS),
        min_length=1,
        description="what to send of each person: email, phone, address (first and last name, country, postal code)",
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="where to read a field instead of the defaults (cdp_profiles.audiences.DEFAULT_SOURCES)",
    )
    default_region: Region = Field("DE", description="region for phone numbers written without a country code")
    identifiers_per_request: int = Field(MAX_ROWS_PER_REQUEST, ge=20, le=MAX_IDENTIFIERS)
    ad_user_data_consent: Consent | None = Field(None, description="the job's consent.adUserData (EEA users)")
    ad_personalization_consent: Consent | None = Field(None, description="the job's consent.adPersonalization")
    allow_empty: bool = Field(
        False, description="let a run that was fed nobody remove every member (off: such a run fails instead)"
    )
    base_url: str = Field(
        "https://googleads.googleapis.com", description="the API host (proxies, tests; http:// only for loopback)"
    )
    token_url: str = Field(TOKEN_URL, description="the OAuth2 token endpoint (http:// only for loopback)")

    @field_validator("base_url", "token_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_base_url(value)

    @field_validator("customer_id", "login_customer_id")
    @classmethod
    def _customer(cls, value: str | None) -> str | None:
        return None if value is None else _digits(value)

    @field_validator("identifiers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("an identifier is listed more than once")
        return value


class GoogleAdsAuth(SecretAuth):
    """OAuth2 (refresh-token grant) plus the ``developer-token`` and ``login-customer-id`` headers."""

    requires_response_body = True

    def __init__(
        self, oauth: OAuth2RefreshAuth, developer_token: SecretStr | str, login_customer_id: str | None
    ) -> None:
        self.oauth = oauth
        self._developer_token = reveal(developer_token)
        self.login_customer_id = login_customer_id

    @property
    def on_secret(self) -> Any:
        return self.oauth.on_secret

    @on_secret.setter
    def on_secret(self, callback: Any) -> None:
        self.oauth.on_secret = callback

    def secrets(self) -> list[str]:
        return [*self.oauth.secrets(), self._developer_token]

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["developer-token"] = self._developer_token
        if self.login_customer_id:
            request.headers["login-customer-id"] = self.login_customer_id
        yield from self.oauth.auth_flow(request)


class CreatedJob(BaseModel):
    resourceName: str = Field(pattern=r"^customers/\d+/offlineUserDataJobs/\d+$")


class AddOperationsResponse(BaseModel):
    partialFailureError: dict[str, Any] | None = None
    warning: dict[str, Any] | None = None


@dataclass
class _Op:
    kind: Literal["create", "remove"]
    member: Member


class GoogleAdsDestination(MirrorDestination):
    """Keeps a Google Ads Customer Match user list equal to the people it is fed (a mirror).

    ``write`` only records who was fed (hashed user identifiers in the store's
    ``audience_pending``); a record without a usable identifier is quarantined.
    ``finish`` (only after a complete run) creates one OfflineUserDataJob of type
    CUSTOMER_MATCH_USER_LIST, adds ``remove`` operations for the people no longer fed,
    then ``create`` operations for new and changed people (at most
    ``identifiers_per_request`` identifiers per addOperations request, with partial
    failure on), and runs it. The first run adds everyone.
    """

    config_model = GoogleAdsConfig
    config: GoogleAdsConfig
    write_mode: ClassVar[WriteMode] = WriteMode.upsert
    accepts: ClassVar[frozenset[RecordKind] | None] = frozenset({RecordKind.profile})
    purpose: ClassVar[str | None] = "ads"
    """Every person sent is checked against their ads consent first (docs/consent.md); a graph may set another."""
    supports_forget: ClassVar[bool] = True

    def __init__(self, config: GoogleAdsConfig, context: ConnectorContext, options: Any = None) -> None:
        super().__init__(config, context, options)
        self.mirror = AudienceMirror(context.store_url, context.name, config.user_list_id)
        oauth = OAuth2RefreshAuth(
            config.token_url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            refresh_token=config.refresh_token,
            store=MemoryTokenStore(),  # Google does not rotate refresh tokens
        )
        self.client: HttpClient = client_for(  # no I/O until the first request
            context,
            base_url=f"{config.base_url.rstrip('/')}/{config.api_version}/",
            auth=GoogleAdsAuth(oauth, config.developer_token, config.login_customer_id),
            max_concurrency=1,
        )

    @property
    def user_list(self) -> str:
        return self._user_list(self.config.user_list_id)

    def _user_list(self, user_list_id: str) -> str:
        return f"customers/{self.config.customer_id}/userLists/{user_list_id}"

    def forget(self, subject: ForgetSubject) -> ForgetResult:
        """Remove the person from the user list(s): a job of ``remove`` operations, run at once."""
        by_list: dict[str, list[list[dict[str, Any]]]] = {}
        for held in subject.audience_rows:
            if isinstance(held.row, list) and held.row:
                by_list.setdefault(held.audience_id, []).append(held.row)
        if not by_list:
            users = identifier_users(subject, self.config.default_region)
            if users:
                by_list[self.config.user_list_id] = users
        results: list[ForgetResult] = []
        for user_list_id, users in by_list.items():
            try:  # one attempt of each step: the privacy product retries with its own backoff
                job = self._create_job(user_list_id, idempotent=False)
                body = {"enablePartialFailure": True, "operations": [{"remove": {"userIdentifiers": u}} for u in users]}
                response = self._call("addOperations", f"{job}:addOperations", body, idempotent=False)
                result = response_json(response, AddOperationsResponse, connector=self.context.name)
                if result.partialFailureError:
                    codes = ", ".join(sorted(_error_codes(result.partialFailureError))) or "no error codes given"
                    answer = f"Google Ads refused the removal from user list {user_list_id}: {codes}"
                    results.append(ForgetResult(state=ForgetState.failed, answer=answer))
                    continue
                self._call("run", f"{job}:run", {}, idempotent=False)
            except HttpError as exc:
                results.append(result_of_error(exc, subject, "Google Ads"))
                continue
            answer = f"Google Ads: a job removing {len(users)} user(s) from user list {user_list_id} runs"
            results.append(ForgetResult(state=ForgetState.done, answer=answer))
        return combine(results, "Google Ads: no identifiers, email or phone to remove: nothing held")

    # -- the run (staging, planning, the empty-audience guard: cdp_profiles.audiences.MirrorDestination) --

    @property
    def audience_label(self) -> str:
        return f"Google Ads user list {self.config.user_list_id}"

    def build_member(self, record: Record) -> Member | str:
        fields = person_fields(record, self.config.fields)
        result = normalize.member(fields, self.config.identifiers, self.config.default_region)
        if isinstance(result, str):
            return result
        key, identifiers = result
        return Member(key, identifiers, record.key)

    def upload(self, plan: AudiencePlan) -> None:
        self._upload()

    def _upload(self) -> None:
        job = self._create_job()
        failed_upserts: list[str] = []
        failed_removals: list[Member] = []
        for ops in self._requests():
            for op in self._add_operations(job, ops):
                if op.kind == "create":
                    failed_upserts.append(op.member.key)
                else:
                    failed_removals.append(op.member)
        self._call("run", f"{job}:run", {})
        if failed_upserts or failed_removals:
            self.context.logger.warning(
                "Google Ads user list %s: Google refused %d of the operations (%d creates, %d removes); "
                "they are sent again on the next run",
                self.config.user_list_id,
                len(failed_upserts) + len(failed_removals),
                len(failed_upserts),
                len(failed_removals),
            )
        # The job runs asynchronously at Google (it can take hours); what it was handed is confirmed now.
        self.mirror.confirm_all(failed_upserts=failed_upserts, failed_removals=failed_removals)

    def _create_job(self, user_list_id: str | None = None, *, idempotent: bool = True) -> str:
        metadata: dict[str, Any] = {"userList": self._user_list(user_list_id or self.config.user_list_id)}
        consent = {
            key: value
            for key, value in (
                ("adUserData", self.config.ad_user_data_consent),
                ("adPersonalization", self.config.ad_personalization_consent),
            )
            if value
        }
        if consent:
            metadata["consent"] = consent
        body = {"job": {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}}
        path = f"customers/{self.config.customer_id}/offlineUserDataJobs:create"
        response = self._call("create", path, body, idempotent=idempotent)
        return response_json(response, CreatedJob, connector=self.context.name).resourceName

    def _requests(self) -> Iterator[list[_Op]]:
        """Operations in requests of at most ``identifiers_per_request`` identifiers: removals first, then creates."""
        limit = self.config.identifiers_per_request
        ops: list[_Op] = []
        count = 0

        def everything() -> Iterator[_Op]:
            for chunk in self.mirror.removals(limit):
                yield from (_Op("remove", m) for m in chunk)
            for changes in self.mirror.upserts(limit):
                yield from (_Op("create", c.member) for c in changes)

        for op in everything():
            size = len(op.member.row)
            if ops and count + size > limit:
                yield ops
                ops, count = [], 0
            ops.append(op)
            count += size
        if ops:
            yield ops

    def _add_operations(self, job: str, ops: list[_Op]) -> list[_Op]:
        """Send one addOperations request; return the operations Google refused (partial failure)."""
        body = {
            "enablePartialFailure": True,
            "operations": [{op.kind: {"userIdentifiers": op.member.row}} for op in ops],
        }
        response = self._call("addOperations", f"{job}:addOperations", body)
        result = response_json(response, AddOperationsResponse, connector=self.context.name)
        if not result.partialFailureError:
            return []
        failed = _failed_indexes(result.partialFailureError)
        codes = sorted(_error_codes(result.partialFailureError))
        self.context.logger.warning(
            "Google Ads user list %s: %d operations refused (%s)",
            self.config.user_list_id,
            len(failed),
            ", ".join(codes) or "no error codes given",
        )
        return [ops[i] for i in sorted(failed) if 0 <= i < len(ops)]

    def _call(self, step: str, path: str, body: dict[str, Any], *, idempotent: bool = True) -> httpx.Response:
        try:
            # create: a retry at worst leaves an empty job behind; addOperations: the same users twice
            # change nothing; run: a job runs once, a repeated run is refused, never applied twice.
            response = self.client.post(path, json=body, idempotent=idempotent)
        except HttpError as exc:
            raise _google_error(exc, step) from None
        return response


def identifier_users(subject: ForgetSubject, region: str) -> list[list[dict[str, Any]]]:
    """One user (its ``userIdentifiers``) per email and per phone of the person, hashed as Google wants them."""
    users: list[list[dict[str, Any]]] = []
    for value in subject.identifiers.get("email", []):
        if normalized := normalize.email(value):
            users.append([{"hashedEmail": sha256_hex(normalized)}])
    for value in subject.identifiers.get("phone", []):
        if normalized := normalize.phone(value, region):
            users.append([{"hashedPhoneNumber": sha256_hex(normalized)}])
    return users


def _failed_indexes(status: dict[str, Any]) -> set[int]:
    """Indexes of the failed operations in a partialFailureError (``location.fieldPathElements``)."""
    failed: set[int] = set()
    for detail in status.get("details") or []:
        for error in (detail or {}).get("errors") or []:
            for element in ((error or {}).get("location") or {}).get("fieldPathElements") or []:
                if element.get("fieldName") == "operations" and isinstance(element.get("index"), int):
                    failed.add(element["index"])
                    break
    return failed


def _error_codes(body: dict[str, Any]) -> set[str]:
    """``kindError: CODE`` of every GoogleAdsFailure error in a status (codes, never the messages)."""
    codes: set[str] = set()
    for detail in body.get("details") or []:
        for error in (detail or {}).get("errors") or []:
            for kind, code in ((error or {}).get("errorCode") or {}).items():
                codes.add(f"{kind} {code}")
    return codes


_HINTS = {
    "USER_PERMISSION_DENIED": "the OAuth user cannot access this customer: set login_customer_id to the manager account",
    "DEVELOPER_TOKEN_NOT_APPROVED": "the developer token is only approved for test accounts",
    "DEVELOPER_TOKEN_PROHIBITED": "the developer token may not be used with this OAuth client's project",
    "CUSTOMER_NOT_ENABLED": "the customer account is not enabled",
}


def _google_error(exc: HttpError, step: str) -> HttpError:
    """The Google Ads API's status and error codes in the message (never its message text)."""
    error = _json_error(exc.response)
    if error is None:
        return exc
    codes = sorted(_error_codes(error))
    parts = [str(error.get("status") or "error")]
    if codes:
        parts.append("; ".join(codes))
    request_id = next((d.get("requestId") for d in error.get("details") or [] if isinstance(d, dict)), None)
    if request_id:
        parts.append(f"request id {request_id}")
    detail = f"{exc.detail}: Google Ads API {step}: {', '.join(parts)}"
    hints = [hint for code, hint in _HINTS.items() if any(c.endswith(f" {code}") for c in codes)]
    if hints:
        detail += f" ({'; '.join(hints)})"
    cls: type[HttpError] = AuthError if exc.status in (401, 403) else type(exc)
    return exc.explained(detail, cls)


def _json_error(response: httpx.Response | None) -> dict[str, Any] | None:
    if response is None:
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, list) and body:  # some Google endpoints answer a list of errors
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else None
