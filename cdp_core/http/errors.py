"""The errors of the HTTP layer, URLs without secrets, and validated JSON bodies.

Every error names the connector, the method and the URL (scheme, host and path:
never the query string, which may hold keys or customer data) and says what to
do. Bodies are never put in a message: the response stays on ``exc.response``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar, overload

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from cdp_core.secrets import REDACTED

CONNECTOR_EXTENSION = "cdp.connector"
"""The request extension under which a client records its connector's name."""

SENSITIVE_PARAMS = frozenset(
    {
        "access_token", "api_key", "apikey", "api-key", "api_token", "apitoken", "auth", "auth_token",
        "client_secret", "code", "id_token", "key", "password", "private_token", "refresh_token", "secret",
        "session_token", "sig", "signature", "token",
    }
)  # fmt: skip
"""Query parameters whose values are masked in logs (compared case-insensitively)."""

Redact = Callable[[str], str]


def sensitive_param(name: str) -> bool:
    """A query parameter whose value is a credential: a known name, or one ending in token, secret, key or password."""
    lowered = name.lower()
    return lowered in SENSITIVE_PARAMS or lowered.endswith(("token", "secret", "_key", "-key", "password", "apikey"))


def _no_redact(text: str) -> str:
    return text


def log_url(url: httpx.URL | str, redact: Redact = _no_redact) -> str:
    """The URL for a log line: no user info, sensitive query values masked, known secrets redacted."""
    url = httpx.URL(str(url))
    params = [(k, REDACTED if sensitive_param(k) else v) for k, v in url.params.multi_items()]
    text = str(url.copy_with(userinfo=b"", query=None))
    if params:
        text += "?" + "&".join(f"{k}={v}" if v == REDACTED else str(httpx.QueryParams([(k, v)])) for k, v in params)
    return redact(text)


def error_url(url: httpx.URL | str, redact: Redact = _no_redact) -> str:
    """The URL for an error message: scheme, host and path only (no user info, no query)."""
    url = httpx.URL(str(url))
    return redact(str(url.copy_with(userinfo=b"", query=None, fragment=None)))


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def check_base_url(value: str) -> str:
    """A plugin's ``base_url`` option (a proxy, a sandbox, a test server), or ValueError.

    ``https://HOST[:PORT][/PATH]``; plain ``http://`` only for a loopback address
    (``localhost``, ``127.x.x.x``, ``::1``): a token sent over plain HTTP to another host
    could be read on the way. No user info, query or fragment. The trailing ``/`` is cut.
    """
    import ipaddress

    text = value.strip().rstrip("/")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        raise ValueError(f"not a URL: {value!r}") from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"base_url must be https://HOST[/PATH] (http:// only for a loopback address), got {value!r}")
    if url.userinfo or url.query or url.fragment:
        raise ValueError("base_url takes no user info, query or fragment (credentials go in their own options)")
    if url.scheme == "http":
        host = url.host.strip("[]")
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host.lower() in LOOPBACK_HOSTS
        if not loopback:
            raise ValueError(f"plain http:// is allowed only for a loopback address (localhost, 127.0.0.1, ::1), not {host!r}")
    return text


def error_body(response: httpx.Response) -> Any:
    """A failed response's JSON body for a plugin's ``explain`` (None when it is not JSON)."""
    try:
        return json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError, httpx.ResponseNotRead):
        return None


class HttpError(Exception):
    """A request failed for good (after the retries that made sense).

    :ivar connector: the connector's name.
    :ivar method: the HTTP method, ``url``: scheme, host and path (no query).
    :ivar status: the status code of the last response (``None``: no response).
    :ivar response: the last response, for a plugin that wants to read the body.
    :ivar attempts: how many times the request was sent.
    """

    hint = ""

    def __init__(
        self,
        detail: str,
        *,
        connector: str | None = None,
        method: str | None = None,
        url: str | None = None,
        status: int | None = None,
        response: httpx.Response | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.connector = connector
        self.method = method
        self.url = url
        self.status = status
        self.response = response
        self.attempts = attempts

    def explained(self, detail: str, as_class: type[HttpError] | None = None) -> HttpError:
        """The same failure with a vendor's own explanation, optionally as another class.

        Vendors put the real reason in the body (Meta's OAuthException code 190 comes
        as HTTP 400): a plugin reads it and raises ``exc.explained(text, AuthError)``.
        """
        return (as_class or type(self))(
            detail,
            connector=self.connector,
            method=self.method,
            url=self.url,
            status=self.status,
            response=self.response,
            attempts=self.attempts,
        )

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method and self.url else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        who = f"connector {self.connector!r}: " if self.connector else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{who}{self.detail}{where}{tries}{hint}"


class AuthError(HttpError):
    """401 or 403: the credentials are wrong, expired or lack a permission."""

    hint = "check the connector's credentials (token, API key or OAuth client) and their permissions in connectors.toml"


class RateLimited(HttpError):
    """429 that retrying within the limits did not get past."""

    hint = "lower the connector's rate_limit or max_concurrency, or run the sync later"


class ServerError(HttpError):
    """5xx that retrying did not get past: the vendor's service is failing."""

    hint = "the vendor's service is failing; the sync can be run again later"


class ClientError(HttpError):
    """Another 4xx (400, 404, 422...): the request itself is wrong."""


class NetworkError(HttpError):
    """No usable response: connection refused or reset, DNS failure, a timeout."""

    hint = "check the connector's base URL and the network"

    @property
    def timed_out(self) -> bool:
        return isinstance(self.__cause__, httpx.TimeoutException)


class ResponseError(HttpError):
    """A response whose body is not what the plugin expects: not JSON, or not the documented shape."""

    hint = "the vendor's API answered in an unexpected shape; the sync stopped before this page"


def status_error(status: int) -> type[HttpError]:
    """The error class for a final status code of 400 and above."""
    if status in (401, 403):
        return AuthError
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return ClientError


M = TypeVar("M")


@overload
def response_json(response: httpx.Response, model: None = None, *, connector: str | None = None) -> Any: ...


@overload
def response_json(response: httpx.Response, model: type[M], *, connector: str | None = None) -> M: ...


def response_json(response: httpx.Response, model: Any = None, *, connector: str | None = None) -> Any:
    """The response's JSON body, validated with ``model`` if given.

    ``model`` is a pydantic model class or any type pydantic validates
    (``list[Contact]``). A body that is not JSON, or not of the model's shape,
    raises :class:`ResponseError` naming the connector, the URL path and the
    problem (field paths and messages; never the values, which may be personal data).
    """
    request = response.request
    name = connector or request.extensions.get(CONNECTOR_EXTENSION)

    def fail(detail: str) -> ResponseError:
        return ResponseError(
            detail,
            connector=name,
            method=request.method,
            url=error_url(request.url),
            status=response.status_code,
            response=response,
        )

    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        kind = response.headers.get("content-type", "no content type")
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else exc
        raise fail(f"the response body is not valid JSON ({where}; {kind}, {len(response.content)} bytes)") from None
    if model is None:
        return data
    try:
        if isinstance(model, type) and issubclass(model, BaseModel):
            return model.model_validate(data)
        return TypeAdapter(model).validate_python(data)
    except ValidationError as exc:
        raise fail(f"the response does not match {_model_name(model)}: {describe_validation(exc)}") from None


def describe_validation(exc: ValidationError, limit: int = 5) -> str:
    """Field paths and messages of a validation error, without the input values."""
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}" for err in errors[:limit]]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


def _model_name(model: Any) -> str:
    return getattr(model, "__name__", None) or str(model)
