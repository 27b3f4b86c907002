"""The kit's DestinationConformance suite for google_ads.

``write`` stages members in the store (nothing goes to Google before ``finish``), so
``read_back`` is what the destination holds for this pass: the staged record keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from cdp_core import Destination, Record
from cdp_core.testing import DestinationConformance, make_records

import cdp_google_ads


class TestGoogleAdsConformance(DestinationConformance):
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

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        return destination.staged_record_keys()  # type: ignore[attr-defined]
