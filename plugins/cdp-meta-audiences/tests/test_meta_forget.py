"""Forgetting a person in a Meta Custom Audience: ``DELETE /{audience_id}/users`` in Meta's documented shape."""

from __future__ import annotations

from pathlib import Path

import httpx
from cdp_core import AudienceRow, ForgetResult, ForgetState, ForgetSubject
from cdp_core.http import HttpFactory
from cdp_core.testing import make_context
from cdp_profiles.audiences import sha256_hex
from meta_fake import AUDIENCE, GRAPH, FakeGraph

from cdp_meta_audiences import MetaAudiencesConfig, MetaAudiencesDestination

TOKEN = "meta-secret-token"


def build(tmp_path: Path, http: HttpFactory) -> MetaAudiencesDestination:
    config = MetaAudiencesConfig.model_validate({"access_token": TOKEN, "audience_id": AUDIENCE})
    return MetaAudiencesDestination(config, make_context(tmp_path, "meta", services={"http": http}))


def forget(tmp_path: Path, http: HttpFactory, subject: ForgetSubject) -> ForgetResult:
    destination = build(tmp_path, http)
    destination.open()
    try:
        return destination.forget(subject)
    finally:
        destination.close()


def test_removes_the_rows_the_mirror_held(graph: FakeGraph, cdp_http: HttpFactory, tmp_path: Path) -> None:
    held = {"EMAIL": sha256_hex("ana@example.com"), "FN": sha256_hex("ana"), "EXTERN_ID": "p-1"}
    other = "23850000000000002"
    route = graph.router.delete(f"{GRAPH}/{other}/users").mock(
        return_value=httpx.Response(200, json={"audience_id": other, "num_received": 1})
    )
    subject = ForgetSubject(
        identifiers={"email": ["ana@example.com"]},
        audience_rows=[AudienceRow(audience_id=AUDIENCE, row=held), AudienceRow(audience_id=other, row=held)],
    )
    result = forget(tmp_path, cdp_http, subject)
    assert result.state is ForgetState.done, result
    assert graph.calls == [
        ("DELETE", {"payload": {
            "schema": ["EMAIL", "PHONE", "FN", "LN", "CT", "ZIP", "COUNTRY", "EXTERN_ID"],
            "data": [[held["EMAIL"], "", held["FN"], "", "", "", "", "p-1"]],
        }})
    ]  # fmt: skip
    assert route.call_count == 1
    assert graph.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


def test_without_mirror_rows_removes_the_hashed_email_and_phone(
    graph: FakeGraph, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    subject = ForgetSubject(identifiers={"email": [" Ana@Example.com"], "phone": ["+49 171 1234567"], "crm_id": ["7"]})
    assert forget(tmp_path, cdp_http, subject).state is ForgetState.done
    assert graph.calls == [
        ("DELETE", {"payload": {
            "schema": ["EMAIL", "PHONE"],
            "data": [[sha256_hex("ana@example.com"), ""], ["", sha256_hex("491711234567")]],
        }})
    ]  # fmt: skip


def test_throttled_then_removed(graph: FakeGraph, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """Meta's audience rate limit (code 80003, a 400) is retried later, by the next attempt; no sleeping."""
    graph.failures.append(
        httpx.Response(400, json={"error": {"type": "OAuthException", "code": 80003, "message": "too many calls"}})
    )
    subject = ForgetSubject(identifiers={"email": ["ana@example.com"]})
    first = forget(tmp_path, cdp_http, subject)
    assert first.state is ForgetState.retry and "80003" in first.answer
    assert forget(tmp_path, cdp_http, subject).state is ForgetState.done
    assert len(graph.requests) == 2 and not cdp_http.clock.sleeps


def test_refused_for_good(graph: FakeGraph, cdp_http: HttpFactory, tmp_path: Path) -> None:
    graph.failures.append(
        httpx.Response(400, json={"error": {"type": "OAuthException", "code": 190, "message": "token expired"}})
    )
    result = forget(tmp_path, cdp_http, ForgetSubject(identifiers={"email": ["ana@example.com"]}))
    assert result.state is ForgetState.failed
    assert result.answer.startswith("Meta 400") and "code 190" in result.answer
    assert TOKEN not in result.answer and "ana@" not in result.answer
