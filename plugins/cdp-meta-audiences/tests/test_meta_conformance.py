"""The kit's DestinationConformance suite for meta_audiences.

``write`` stages members in the store (nothing goes to Meta before ``finish``), so
``read_back`` is what the destination holds for this pass: the staged record keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import httpx
import respx
from cdp_core import AudienceRow, Destination, ForgetSubject, Record
from cdp_core.testing import DestinationConformance, ForgetConformance, make_records
from meta_fake import USERS_URL

import cdp_meta_audiences


class TestMetaAudiencesConformance(DestinationConformance, ForgetConformance):
    plugin = cdp_meta_audiences
    type_name = "meta_audiences"
    config: ClassVar[dict[str, Any]] = {"access_token": "test-token", "audience_id": "23850000000000001"}
    sample_records: ClassVar[list[Record]] = [
        *make_records(3),
        # No email, no phone: rejected with a reason, not held.
        Record(stream="test.items", key="anonymous", data={"first_name": "Zoë"}),
    ]
    forget_subject = ForgetSubject(
        identifiers={"email": ["ana@example.com"], "phone": ["+491711234567"]},
        audience_rows=[AudienceRow(audience_id="23850000000000001", row={"EMAIL": "a" * 64, "EXTERN_ID": "p-1"})],
    )

    def mock_forget(self, router: respx.Router, failure: httpx.Response | Exception | None) -> None:
        route = router.delete(USERS_URL)
        if isinstance(failure, Exception):
            route.mock(side_effect=failure)
        else:
            route.mock(return_value=failure or httpx.Response(200, json={"audience_id": "1", "num_received": 1}))

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        return destination.staged_record_keys()  # type: ignore[attr-defined]
