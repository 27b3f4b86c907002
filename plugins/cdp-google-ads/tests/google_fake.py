"""A fake Google Ads API (OAuth2 token endpoint, OfflineUserDataJobService), in Google's documented shapes (respx)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import httpx
import respx

API = "https://googleads.googleapis.com/v21"
CUSTOMER = "1234567890"
LOGIN_CUSTOMER = "9876543210"
USER_LIST = "7770001"
JOB = f"customers/{CUSTOMER}/offlineUserDataJobs/555"
TOKEN_URL = "https://oauth2.googleapis.com/token"
CREATE_URL = f"{API}/customers/{CUSTOMER}/offlineUserDataJobs:create"
ADD_URL = f"{API}/{JOB}:addOperations"
RUN_URL = f"{API}/{JOB}:run"

Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


class FakeGoogleAds:
    """The OAuth2 token endpoint and the OfflineUserDataJobService REST methods, in Google's documented shapes.

    ``failures[step]`` are answers served (in order) before the normal ones, per step:
    ``token``, ``create``, ``addOperations``, ``run``. ``calls`` keeps (step, JSON body)
    of every API request answered normally; ``requests`` every request, token ones too.
    """

    def __init__(self, router: respx.Router) -> None:
        self.failures: dict[str, list[Answer]] = {"token": [], "create": [], "addOperations": [], "run": []}
        self.partial: dict[int, list[int]] = {}
        """addOperations request number (0-based) -> operation indexes to refuse with a partial failure."""
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.requests: list[httpx.Request] = []
        self.tokens_issued = 0
        router.post(TOKEN_URL).mock(side_effect=self._step("token", self._token))
        router.post(CREATE_URL).mock(side_effect=self._step("create", self._create))
        self.add_route = router.post(ADD_URL).mock(side_effect=self._step("addOperations", self._add))
        router.post(RUN_URL).mock(side_effect=self._step("run", self._run))

    def _step(self, step: str, normal: Callable[[httpx.Request], httpx.Response]) -> Callable[..., httpx.Response]:
        def answer(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            if self.failures[step]:
                failure = self.failures[step].pop(0)
                return failure(request) if callable(failure) else failure
            if step != "token":
                self.calls.append((step, json.loads(request.content)))
            return normal(request)

        return answer

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = parse_qs(request.content.decode())
        assert form["grant_type"] == ["refresh_token"]
        self.tokens_issued += 1
        return httpx.Response(
            200, json={"access_token": f"ya29.access-{self.tokens_issued}", "expires_in": 3599, "token_type": "Bearer"}
        )

    def _create(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"resourceName": JOB})

    def _add(self, request: httpx.Request) -> httpx.Response:
        number = sum(1 for step, _ in self.calls if step == "addOperations") - 1
        refused = self.partial.get(number)
        if not refused:
            return httpx.Response(200, json={})
        errors = [
            {
                "errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                "message": "The SHA256 encoded value is malformed.",
                "location": {
                    "fieldPathElements": [
                        {"fieldName": "operations", "index": index},
                        {"fieldName": "create"},
                        {"fieldName": "user_identifiers", "index": 0},
                    ]
                },
            }
            for index in refused
        ]
        return httpx.Response(
            200,
            json={
                "partialFailureError": {
                    "code": 3,
                    "message": "Multiple errors in ‘details’. First error: The SHA256 encoded value is malformed.",
                    "details": [
                        {
                            "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
                            "errors": errors,
                        }
                    ],
                }
            },
        )

    def _run(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"name": f"customers/{CUSTOMER}/operations/abc123"})

    # -- what was sent --------------------------------------------------------------------------

    def steps(self) -> list[str]:
        return [step for step, _ in self.calls]

    def operations(self) -> list[dict[str, Any]]:
        return [op for step, body in self.calls if step == "addOperations" for op in body["operations"]]

    def ops(self, kind: str) -> list[list[dict[str, Any]]]:
        return [op[kind]["userIdentifiers"] for op in self.operations() if kind in op]
