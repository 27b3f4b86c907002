"""A fake Graph API for the audience's users edge, in Meta's documented shapes (respx)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import respx

GRAPH = "https://graph.facebook.com/v22.0"
AUDIENCE = "23850000000000001"
USERS_URL = f"{GRAPH}/{AUDIENCE}/users"


class FakeGraph:
    """``POST`` / ``DELETE /{audience_id}/users`` answering as the Graph API documents.

    ``failures`` are responses served (in order) before the normal ones: a 429, a 503,
    an OAuthException. Every request is kept in ``calls`` (method, JSON body).
    """

    def __init__(self, router: respx.Router) -> None:
        self.router = router
        self.failures: list[httpx.Response | Callable[[httpx.Request], httpx.Response]] = []
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[httpx.Request] = []
        self.route_post = router.post(USERS_URL).mock(side_effect=self._answer)
        self.route_delete = router.delete(USERS_URL).mock(side_effect=self._answer)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.failures:
            failure = self.failures.pop(0)
            return failure(request) if callable(failure) else failure
        body = json.loads(request.content)
        self.calls.append((request.method, body))
        rows = body["payload"]["data"]
        session = body.get("session") or {}
        return httpx.Response(
            200,
            json={
                "audience_id": AUDIENCE,
                "session_id": str(session.get("session_id", "0")),
                "num_received": len(rows),
                "num_invalid_entries": 0,
                "invalid_entry_samples": {},
            },
        )

    def rows(self, method: str) -> list[list[str]]:
        return [row for m, body in self.calls if m == method for row in body["payload"]["data"]]

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]
