"""A fake Typeform Responses API (one form) for respx, in the documented shapes.

``GET /forms/{form_id}/responses``: ``page_size`` (default 25, at most 1000), ``since`` /
``until`` (on ``submitted_at``, inclusive, to the second: ISO 8601 UTC with a ``T``, or Unix
seconds), ``after`` (a response token, exclusive; results in processing order; refused
together with ``sort``), ``sort`` (``submitted_at,asc|desc``; default newest first). The body
is ``{"total_items", "page_count", "items"}``. ``Authorization: Bearer TOKEN``, else 401.
Any other parameter is refused with 400: ``before`` too, as the documentation does not say
which end of the responses processed before the token a page holds, and the source never
sends it.

The webhook's ``form_response`` delivery: :func:`event`, signed by :func:`sign`.

``responses`` is kept in *processing* order, and a response is visible from the moment it
is in the list: a response appended late may carry an earlier ``submitted_at`` (Typeform
processed it late), and one inserted before others was processed before them although
submitted after them. Sorting by ``submitted_at`` keeps processing order among equal times.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

TOKEN = "tfp_test_0123456789abcdef"
FORM_ID = "u6nXL7"
BASE = "https://api.typeform.com"
SECRET = "tf-webhook-secret-0123456789"
"""The webhook's secret (what signs its deliveries)."""

NPS_FIELD = {"id": "Fj2bX0lCA1ay", "ref": "nps", "type": "nps"}
COMMENT_FIELD = {"id": "k2ZpWq9bQ7rT", "ref": "why", "type": "long_text"}
EMAIL_FIELD = {"id": "Qz8YH1n3mLkd", "ref": "email_q", "type": "email"}


def response(
    token: str,
    submitted_at: str,
    score: Any = 9,
    comment: str | None = None,
    email: str | None = None,
    email_answer: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    answers: list[dict[str, Any]] = []
    if score is not None:
        answers.append({"field": NPS_FIELD, "type": "number", "number": score})
    if comment is not None:
        answers.append({"field": COMMENT_FIELD, "type": "text", "text": comment})
    if email_answer is not None:
        answers.append({"field": EMAIL_FIELD, "type": "email", "email": email_answer})
    hidden = {"email": email or "", "channel": channel or ""}
    return {
        "landing_id": token,
        "token": token,
        "response_id": token,
        "landed_at": submitted_at,
        "submitted_at": submitted_at,
        "metadata": {"user_agent": "Mozilla/5.0", "platform": "other", "referer": f"https://acme.typeform.com/to/{FORM_ID}",
                     "network_id": "a1b2c3d4e5", "browser": "default"},
        "hidden": hidden,
        "calculated": {"score": 0},
        "answers": answers or None,
    }  # fmt: skip


class FakeTypeform:
    def __init__(self, responses: list[dict[str, Any]] | None = None, *, token: str = TOKEN, base: str = BASE) -> None:
        self.responses = list(responses or [])
        self.token, self.base = token, base
        self.requests: list[httpx.Request] = []
        self.calls = 0
        self.failures: dict[int, httpx.Response | Exception] = {}
        """Call number (1: the first request) -> what that call gets instead of an answer: a 429, a 502, a timeout..."""

    def install(self, router: respx.Router) -> FakeTypeform:
        router.get(f"{self.base}/forms/{FORM_ID}/responses").mock(side_effect=self.handle)
        return self

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        failure = self.failures.pop(self.calls, None)
        if isinstance(failure, Exception):
            raise failure
        if failure is not None:
            return failure
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"code": "AUTHENTICATION_FAILED", "description": "Authentication credentials not found on the Request Headers"})  # fmt: skip
        self.requests.append(request)
        params = request.url.params
        size = int(params.get("page_size", 25))
        if size > 1000:
            return httpx.Response(400, json={"code": "VALIDATION_ERROR", "description": "page_size must be <= 1000"})
        unknown = sorted(set(params) - MODELLED)
        if unknown:
            return httpx.Response(400, json={"code": "VALIDATION_ERROR", "description": f"not modelled: {unknown}"})
        after, sort = params.get("after"), params.get("sort")
        if after and sort:
            return httpx.Response(400, json={"code": "VALIDATION_ERROR", "description": "after/before cannot be used with sort"})  # fmt: skip
        tokens = [r["token"] for r in self.responses]
        if after:
            if after not in tokens:
                return httpx.Response(400, json={"code": "VALIDATION_ERROR", "description": "invalid token"})
            rows = self.responses[tokens.index(after) + 1 :]  # processing order
        else:
            field, _, direction = (sort or "submitted_at,desc").partition(",")
            # sorted() is stable: responses of the same time keep processing order
            rows = sorted(self.responses, key=lambda r: r[field], reverse=direction != "asc")
        try:
            since, until = (_second(params[name]) if name in params else None for name in ("since", "until"))
        except ValueError:
            return httpx.Response(400, json={"code": "VALIDATION_ERROR", "description": "since/until: not a date-time"})
        rows = [r for r in rows if (since or "") <= r["submitted_at"][:19] <= (until or "9999")]  # inclusive
        items = rows[:size]
        return httpx.Response(
            200, json={"total_items": len(rows), "page_count": max(1, math.ceil(len(rows) / size)), "items": items}
        )


MODELLED = {"page_size", "since", "until", "after", "sort"}


def _second(value: str) -> str:
    """``since``/``until`` as ``YYYY-MM-DDTHH:MM:SS`` UTC: what a documented ``submitted_at`` starts with."""
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if len(value) != 19 or value[10] != "T":
        raise ValueError(value)
    return datetime.fromisoformat(value).strftime("%Y-%m-%dT%H:%M:%S")


def event(score: Any = 9, *, form_id: str = FORM_ID, token: str = "a3a12ec67a1365927098a606107fac15") -> dict[str, Any]:
    """A form_response delivery in the shape Typeform documents (its example payload, with this form's questions)."""
    return {
        "event_id": "01HW2Q0Y7TRNV0K9S6FZ8P3B2C",
        "event_type": "form_response",
        "form_response": {
            "form_id": form_id,
            "token": token,
            "landed_at": "2024-05-01T09:58:41Z",
            "submitted_at": "2024-05-01T09:59:58Z",
            "calculated": {"score": 0},
            "variables": [{"key": "score", "type": "number", "number": 0}],
            "hidden": {"email": "anna@example.com", "channel": "email"},
            "definition": {
                "id": form_id,
                "title": "How likely are you to recommend us?",
                "fields": [
                    {"id": NPS_FIELD["id"], "ref": "nps", "type": "nps", "title": "How likely...", "properties": {}},
                    {"id": COMMENT_FIELD["id"], "ref": "why", "type": "long_text", "title": "Why?", "properties": {}},
                ],
                "endings": [{"id": "dN5FLyFpCMFo", "ref": "01GRC8GR2017M6WW347T86VV39", "title": "Thanks!"}],
            },
            "answers": [
                {"type": "number", "number": score, "field": NPS_FIELD},
                {"type": "text", "text": "Great coffee", "field": COMMENT_FIELD},
            ],
            "ending": {"id": "dN5FLyFpCMFo", "ref": "01GRC8GR2017M6WW347T86VV39"},
        },
    }


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
