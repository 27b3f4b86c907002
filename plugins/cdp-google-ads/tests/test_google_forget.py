"""Forgetting a person in a Customer Match user list: an OfflineUserDataJob of ``remove`` operations."""

from __future__ import annotations

from pathlib import Path

import httpx
from cdp_core import AudienceRow, ForgetResult, ForgetState, ForgetSubject
from cdp_core.http import HttpFactory
from cdp_core.testing import make_context
from cdp_profiles.audiences import sha256_hex
from google_fake import CUSTOMER, USER_LIST, FakeGoogleAds

from cdp_google_ads import GoogleAdsConfig, GoogleAdsDestination

CONFIG = {
    "developer_token": "dev-token-secret",
    "customer_id": CUSTOMER,
    "user_list_id": USER_LIST,
    "client_id": "client-id",
    "client_secret": "client-secret",
    "refresh_token": "refresh-token",
}


def forget(tmp_path: Path, http: HttpFactory, subject: ForgetSubject) -> ForgetResult:
    config = GoogleAdsConfig.model_validate(CONFIG)
    destination = GoogleAdsDestination(config, make_context(tmp_path, "google", services={"http": http}))
    destination.open()
    try:
        return destination.forget(subject)
    finally:
        destination.close()


def test_removes_the_identifiers_the_mirror_held(google: FakeGoogleAds, cdp_http: HttpFactory, tmp_path: Path) -> None:
    held = [{"hashedEmail": sha256_hex("ana@example.com")}, {"hashedPhoneNumber": sha256_hex("+491711234567")}]
    subject = ForgetSubject(
        identifiers={"email": ["ana@example.com"]}, audience_rows=[AudienceRow(audience_id=USER_LIST, row=held)]
    )
    result = forget(tmp_path, cdp_http, subject)
    assert result.state is ForgetState.done, result
    assert google.steps() == ["create", "addOperations", "run"]
    create = google.calls[0][1]
    assert create == {"job": {"type": "CUSTOMER_MATCH_USER_LIST",
                              "customerMatchUserListMetadata": {"userList": f"customers/{CUSTOMER}/userLists/{USER_LIST}"}}}  # fmt: skip
    assert google.calls[1][1] == {"enablePartialFailure": True, "operations": [{"remove": {"userIdentifiers": held}}]}


def test_without_mirror_rows_removes_each_hashed_email_and_phone(
    google: FakeGoogleAds, cdp_http: HttpFactory, tmp_path: Path
) -> None:
    subject = ForgetSubject(identifiers={"email": ["John.Doe@gmail.com"], "phone": ["+491711234567"]})
    assert forget(tmp_path, cdp_http, subject).state is ForgetState.done
    assert google.ops("remove") == [
        [{"hashedEmail": sha256_hex("johndoe@gmail.com")}],
        [{"hashedPhoneNumber": sha256_hex("+491711234567")}],
    ]


def test_server_error_then_removed(google: FakeGoogleAds, cdp_http: HttpFactory, tmp_path: Path) -> None:
    """A 503 at addOperations is one attempt (no sleeping): retry; the next attempt removes the person."""
    google.failures["addOperations"].append(httpx.Response(503, json={"error": {"code": 503, "status": "UNAVAILABLE"}}))
    subject = ForgetSubject(identifiers={"email": ["ana@example.com"]})
    first = forget(tmp_path, cdp_http, subject)
    assert first.state is ForgetState.retry and "UNAVAILABLE" in first.answer
    assert forget(tmp_path, cdp_http, subject).state is ForgetState.done
    assert google.steps() == ["create", "create", "addOperations", "run"]
    assert not cdp_http.clock.sleeps


def test_refused_for_good(google: FakeGoogleAds, cdp_http: HttpFactory, tmp_path: Path) -> None:
    error = {"error": {"code": 403, "status": "PERMISSION_DENIED", "details": [{
        "@type": "type.googleapis.com/google.ads.googleads.v21.errors.GoogleAdsFailure",
        "errors": [{"errorCode": {"authorizationError": "USER_PERMISSION_DENIED"}, "message": "denied"}],
    }]}}  # fmt: skip
    google.failures["create"].append(httpx.Response(403, json=error))
    result = forget(tmp_path, cdp_http, ForgetSubject(identifiers={"email": ["ana@example.com"]}))
    assert result.state is ForgetState.failed
    assert result.answer.startswith("Google Ads 403") and "USER_PERMISSION_DENIED" in result.answer
    assert "dev-token-secret" not in result.answer and "ana@" not in result.answer


def test_a_refused_removal_is_failed(google: FakeGoogleAds, cdp_http: HttpFactory, tmp_path: Path) -> None:
    google.partial[0] = [0]
    result = forget(tmp_path, cdp_http, ForgetSubject(identifiers={"email": ["ana@example.com"]}))
    assert result.state is ForgetState.failed and "INVALID_SHA256_FORMAT" in result.answer
    assert "run" not in google.steps()
