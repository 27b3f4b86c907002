"""Meta's Graph API errors on top of the core's HTTP client.

The core retries 429, 5xx and timeouts. Meta reports most errors with a **400**
(sometimes 401/403) and a JSON body ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``; the code says what happened:

- 4, 17, 32, 613 (and 80000-80014, 341): throttled. Wait and try again: the wait
  is Meta's ``estimated_time_to_regain_access`` from ``X-Business-Use-Case-Usage``
  when given, else ``rate_limit_wait`` doubled per attempt; at most
  ``rate_limit_retries`` times and never longer than ``max_rate_limit_wait`` at
  once. The wait is a hold on the connector's limiter, so every client of the
  connector waits and tests see it in the fake clock's sleeps.
- 1, 2 (or ``is_transient``): a temporary failure; retried the same way.
- 190, 102 (or a 401): the access token is invalid or expired -> ``AuthError``.
- 10, 200-299 (or a 403): a missing permission -> ``AuthError``.
- anything else (100: unknown form id or field) -> ``ClientError``.

Every error names the connector and the URL path (the form id), never the token.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
from cdp_core.http import (
    AuthError,
    ClientError,
    HttpClient,
    HttpError,
    RateLimited,
    error_url,
)
from pydantic import ValidationError

from cdp_meta_leads.config import MetaLeadsConfig
from cdp_meta_leads.models import GraphErrorBody

log = logging.getLogger("cdp.meta_leads")

THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, *range(80000, 80015)})
TRANSIENT_CODES = frozenset({1, 2})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
ERROR_STATUSES = (400, 401, 403, 404)
"""Statuses whose body the plugin reads itself instead of letting the core raise."""
USAGE_HEADERS = ("X-Business-Use-Case-Usage", "X-App-Usage", "X-Ad-Account-Usage")
PERMISSIONS = "leads_retrieval, pages_manage_ads, pages_read_engagement, pages_show_list and ads_management"


def graph_error(response: httpx.Response) -> GraphErrorBody | None:
    """The ``error`` object of a Graph API answer, or None when the body has none."""
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict) or not isinstance(body.get("error"), dict):
        return None
    try:
        return GraphErrorBody.model_validate(body["error"])
    except ValidationError:
        return None


def regain_access_seconds(response: httpx.Response) -> float | None:
    """Meta's ``estimated_time_to_regain_access`` (minutes) from its usage headers, in seconds."""
    longest: float | None = None
    for header in USAGE_HEADERS:
        raw = response.headers.get(header)
        if not raw:
            continue
        try:
            usage = json.loads(raw)
        except json.JSONDecodeError:
            continue
        entries: list[Any] = []
        if isinstance(usage, dict):
            for value in usage.values():
                entries += value if isinstance(value, list) else [value]
            entries.append(usage)
        for entry in entries:
            minutes = entry.get("estimated_time_to_regain_access") if isinstance(entry, dict) else None
            if isinstance(minutes, (int, float)) and minutes > 0:
                longest = max(longest or 0.0, float(minutes) * 60)
    return longest


class GraphClient:
    """The core's :class:`HttpClient` plus Meta's error codes; what ``cursor_pages`` is given."""

    def __init__(self, client: HttpClient, config: MetaLeadsConfig, redact: Any) -> None:
        self.client = client
        self.config = config
        self.redact = redact
        self.connector = client.connector

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        config = self.config
        attempt = 0
        while True:
            attempt += 1
            response = self.client.request(method, url, allow_status=ERROR_STATUSES, **kwargs)
            if response.status_code < 400:
                return response
            error = graph_error(response)
            code = error.code if error else None
            if code in THROTTLE_CODES or code in TRANSIENT_CODES or (error is not None and error.is_transient):
                asked = regain_access_seconds(response)
                wait = asked if asked is not None else config.rate_limit_wait * 2 ** (attempt - 1)
                if attempt > config.rate_limit_retries or wait > config.max_rate_limit_wait:
                    raise self._throttled(response, error, attempt, wait)
                log.info(
                    "connector %s: Meta error code %s on %s; waiting %.0fs (attempt %d/%d)",
                    self.connector, code, error_url(response.request.url), wait, attempt,
                    config.rate_limit_retries + 1,
                )  # fmt: skip
                self.client.limiter.hold(wait)  # the next request of the connector waits for it
                continue
            raise self._error(response, error, attempt)

    # -- errors ----------------------------------------------------------------------------
    def _where(self, response: httpx.Response, attempt: int) -> dict[str, Any]:
        request = response.request
        return {
            "connector": self.connector,
            "method": request.method,
            "url": error_url(request.url, self.redact),
            "status": response.status_code,
            "response": response,
            "attempts": attempt,
        }

    def _describe(self, error: GraphErrorBody | None) -> str:
        if error is None:
            return "no Graph API error in the body"
        parts = [f"code {error.code}" if error.code is not None else "no code"]
        if error.error_subcode is not None:
            parts.append(f"subcode {error.error_subcode}")
        if error.type:
            parts.append(error.type)
        text = ", ".join(parts)
        if error.message:
            message = error.message if len(error.message) <= 300 else error.message[:297] + "..."
            text += f": {message}"
        if error.fbtrace_id:
            text += f" (fbtrace_id {error.fbtrace_id})"
        return self.redact(text)

    def _throttled(
        self, response: httpx.Response, error: GraphErrorBody | None, attempt: int, wait: float
    ) -> RateLimited:
        if wait > self.config.max_rate_limit_wait:
            when = f"Meta asks to wait {wait / 60:.0f} min, more than max_rate_limit_wait"
        else:
            when = f"still throttled after {attempt - 1} waits"
        return RateLimited(
            f"Meta throttles the requests ({self._describe(error)}); {when}", **self._where(response, attempt)
        )

    def _error(self, response: httpx.Response, error: GraphErrorBody | None, attempt: int) -> HttpError:
        status, code = response.status_code, error.code if error else None
        described = self._describe(error)
        if code in TOKEN_CODES or (code is None and status == 401):
            return AuthError(
                f"Meta refused the access token ({described}); create a new long-lived token and set it where "
                "access_token points (e.g. META_ACCESS_TOKEN)",
                **self._where(response, attempt),
            )
        if code in PERMISSION_CODES or (code is None and status == 403):
            return AuthError(
                f"Meta denied a permission ({described}); the token needs {PERMISSIONS}, and lead access to the "
                "form's Page (Leads Access Manager)",
                **self._where(response, attempt),
            )
        return ClientError(f"Meta refused the request ({described})", **self._where(response, attempt))
