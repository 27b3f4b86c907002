"""Authentication for vendor APIs, as ``httpx.Auth`` objects handed to ``HttpFactory.client(auth=...)``.

Secrets may be given as ``str`` or pydantic ``SecretStr`` (as a plugin's config
model holds them). Each auth lists its secret values (:meth:`secrets`) so the
client can add them to the config's :class:`~cdp_core.secrets.Redactor`.

:class:`OAuth2RefreshAuth` gets access tokens with a refresh token, refreshes
once on a 401, and saves a *rotated* refresh token through a :class:`TokenStore`
so it survives a restart (a provider that rotates refresh tokens refuses the old one).
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypedDict, runtime_checkable

import httpx
from pydantic import SecretStr

from cdp_core.http.errors import AuthError, RateLimited, ServerError, error_url

Secret = str | SecretStr


def reveal(value: Secret) -> str:
    """The plain value of a secret given as ``str`` or ``SecretStr``."""
    return value.get_secret_value() if isinstance(value, SecretStr) else value


class SecretAuth(httpx.Auth):
    """Base of the auths here: knows its secret values."""

    def secrets(self) -> list[str]:
        return []


class BearerAuth(SecretAuth):
    """``Authorization: Bearer TOKEN`` (HubSpot private apps, Typeform, Meta)."""

    def __init__(self, token: Secret) -> None:
        self._token = reveal(token)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def secrets(self) -> list[str]:
        return [self._token]


class ApiKeyHeader(SecretAuth):
    """The key in a header of the vendor's choice: ``ApiKeyHeader("X-Shopify-Access-Token", token)``."""

    def __init__(self, header: str, key: Secret, *, prefix: str = "") -> None:
        self.header = header
        self._value = prefix + reveal(key)
        self._key = reveal(key)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._value
        yield request

    def secrets(self) -> list[str]:
        return [self._key]


class ApiKeyQuery(SecretAuth):
    """The key as a query parameter (``?api_key=...``); logs mask it."""

    def __init__(self, param: str, key: Secret) -> None:
        self.param = param
        self._key = reveal(key)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_set_param(self.param, self._key)
        yield request

    def secrets(self) -> list[str]:
        return [self._key]


class BasicAuth(SecretAuth):
    """HTTP basic (Mailchimp: any user name, the API key as password)."""

    def __init__(self, username: str, password: Secret) -> None:
        self._inner = httpx.BasicAuth(username, reveal(password))
        self._password = reveal(password)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield from self._inner.auth_flow(request)

    def secrets(self) -> list[str]:
        return [self._password]


# -- OAuth2 refresh-token flow ---------------------------------------------------------------


@dataclass
class OAuthTokens:
    """What a token endpoint gave: ``expires_at`` is epoch seconds (``time.time()``)."""

    access_token: str | None = None
    refresh_token: str | None = None
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OAuthTokens:
        return cls(data.get("access_token"), data.get("refresh_token"), data.get("expires_at"))


@runtime_checkable
class TokenStore(Protocol):
    """Where a connector's OAuth tokens live between runs."""

    def load(self) -> OAuthTokens | None:
        """The tokens saved last, or None."""

    def save(self, tokens: OAuthTokens) -> None:
        """Keep ``tokens`` (durably, for a store meant to survive restarts)."""


class MemoryTokenStore:
    """Tokens kept in memory: for tests, and for providers that never rotate refresh tokens."""

    def __init__(self, tokens: OAuthTokens | None = None) -> None:
        self.tokens = tokens
        self.saved: list[OAuthTokens] = []

    def load(self) -> OAuthTokens | None:
        return self.tokens

    def save(self, tokens: OAuthTokens) -> None:
        self.tokens = tokens
        self.saved.append(tokens)


class FileTokenStore:
    """Tokens in a JSON file (mode 0600), replaced atomically: survives restarts.

    Typically ``FileTokenStore(context.resolve(".cdp/tokens/NAME.json"))``.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def load(self) -> OAuthTokens | None:
        try:
            return OAuthTokens.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    def save(self, tokens: OAuthTokens) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tokens-", dir=self.path.parent)
        try:
            os.chmod(tmp, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(tokens.to_dict(), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _ErrorPlace(TypedDict):
    """Where a token-endpoint error happened: the keyword arguments every HttpError takes for it."""

    method: str
    url: str
    status: int


class OAuth2RefreshAuth(SecretAuth):
    """OAuth2 with a refresh token (RFC 6749 section 6).

    The first request gets an access token; a 401 refreshes it once and sends the
    request again. When the provider answers with a new refresh token it is saved
    to ``store`` before use, and the one saved there wins over ``refresh_token``
    (the config's, which goes stale after the first rotation).

    :param client_auth: ``"body"`` sends client id and secret as form fields,
        ``"basic"`` as HTTP basic auth (both are in RFC 6749).
    :param leeway: refresh this many seconds before ``expires_in`` runs out.
    """

    requires_response_body = True

    def __init__(
        self,
        token_url: str,
        *,
        client_id: str,
        client_secret: Secret,
        refresh_token: Secret | None = None,
        store: TokenStore | None = None,
        scope: str | None = None,
        client_auth: Literal["body", "basic"] = "body",
        extra_params: dict[str, str] | None = None,
        leeway: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self._client_secret = reveal(client_secret)
        self.store: TokenStore = store or MemoryTokenStore()
        self.scope, self.client_auth, self.leeway = scope, client_auth, leeway
        self.extra_params = dict(extra_params or {})
        self._now = wall_clock
        self._lock = threading.RLock()
        saved = self.store.load()
        initial = reveal(refresh_token) if refresh_token is not None else None
        if saved is not None and saved.refresh_token:
            self.tokens = saved
        else:
            self.tokens = OAuthTokens(refresh_token=initial)
        if not self.tokens.refresh_token:
            raise ValueError("OAuth2RefreshAuth needs a refresh token (given, or saved in the token store)")
        self.refreshes = 0
        self.on_secret: Callable[[str], None] | None = None
        """Called with each new secret value (the client adds them to the config's Redactor)."""

    def secrets(self) -> list[str]:
        values = [self._client_secret, self.tokens.refresh_token, self.tokens.access_token]
        return [v for v in values if v]

    def _expired(self) -> bool:
        return self.tokens.expires_at is not None and self._now() >= self.tokens.expires_at - self.leeway

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        used = self.tokens.access_token
        if used is None or self._expired():
            yield from self._refresh(used)
        used = self.tokens.access_token
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh(used)
            request.headers["Authorization"] = f"Bearer {self.tokens.access_token}"
            yield request

    def _refresh(self, stale: str | None) -> Generator[httpx.Request, httpx.Response, None]:
        with self._lock:
            if self.tokens.access_token != stale and self.tokens.access_token and not self._expired():
                return  # another thread refreshed while this one waited
            response = yield self._token_request()
            self._accept(response)

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token or "", **self.extra_params}
        if self.scope:
            form["scope"] = self.scope
        headers = {"Accept": "application/json"}
        if self.client_auth == "basic":
            pair = f"{self.client_id}:{self._client_secret}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form |= {"client_id": self.client_id, "client_secret": self._client_secret}
        return httpx.Request("POST", self.token_url, data=form, headers=headers)

    def _accept(self, response: httpx.Response) -> None:
        where: _ErrorPlace = {"method": "POST", "url": error_url(self.token_url), "status": response.status_code}
        if response.status_code == 429:
            raise RateLimited("the OAuth2 token endpoint answered 429", response=response, **where)
        if response.status_code >= 500:
            raise ServerError(f"the OAuth2 token endpoint answered {response.status_code}", response=response, **where)
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            reason = f" ({error})" if isinstance(error, str) else ""
            raise AuthError(
                f"refreshing the OAuth2 access token failed: {response.status_code}{reason}; the refresh token may "
                "be revoked or already used: authorize the app again",
                response=response,
                **where,
            )
        expires_in = body.get("expires_in")
        tokens = OAuthTokens(
            access_token=str(body["access_token"]),
            refresh_token=str(body.get("refresh_token") or self.tokens.refresh_token),
            expires_at=self._now() + float(expires_in) if isinstance(expires_in, (int, float, str)) else None,
        )
        # Saved before use: once the provider rotated it, the old refresh token is dead.
        self.store.save(tokens)
        self.tokens = tokens
        self.refreshes += 1
        if self.on_secret is not None:
            for value in self.secrets():
                self.on_secret(value)
