"""The kit's DestinationConformance suite for google_ads.

``write`` stages members in the store (nothing goes to Google before ``finish``), so
``read_back`` is what the destination holds for this pass: the staged record keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import httpx
import respx
from cdp_core import AudienceRow, Destination, ForgetSubject, Record
from cdp_core.testing import DestinationConformance, ForgetConformance, make_records
from google_fake import USER_LIST, FakeGoogleAds

import cdp_google_ads


class TestGoogleAdsConformance(DestinationConformance, ForgetConformance):
    plugin = cdp_google_ads
    type_name = "google_ads"
    config: ClassVar[dict[str, Any]] = {
        "developer_token": "dev-token",
        "customer_id": "123-456-7890",
        "user_list_id": "7770001",
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": "refresh-token",
    }
    sample_records: ClassVar[list[Record]] = [
        *make_records(3),
        # No email, no phone, no complete address: rejected with a reason, not held.
        Record(stream="test.items", key="anonymous", data={"first_name": "Zoë", "country": "DE"}),
    ]
    forget_subject = ForgetSubject(
        identifiers={"email": ["ana@example.com"], "phone": ["+491711234567"]},
        audience_rows=[AudienceRow(audience_id=USER_LIST, row=[{"hashedEmail": "a" * 64}])],
    )

    def mock_forget(self, router: respx.Router, failure: httpx.Response | Exception | None) -> None:
        google = FakeGoogleAds(router)
        if isinstance(failure, Exception):
            error = failure

            def fail(request: httpx.Request) -> httpx.Response:
                raise error

            google.failures["create"].append(fail)
        elif failure is not None:
            google.failures["create"].append(failure)

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        return destination.staged_record_keys()  # type: ignore[attr-defined]
