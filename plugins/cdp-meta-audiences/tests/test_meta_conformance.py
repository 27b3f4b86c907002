"""The kit's DestinationConformance suite for meta_audiences.

``write`` stages members in the store (nothing goes to Meta before ``finish``), so
``read_back`` is what the destination holds for this pass: the staged record keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from cdp_core import Destination, Record
from cdp_core.testing import DestinationConformance, make_records

import cdp_meta_audiences


class TestMetaAudiencesConformance(DestinationConformance):
    plugin = cdp_meta_audiences
    type_name = "meta_audiences"
    config: ClassVar[dict[str, Any]] = {"access_token": "test-token", "audience_id": "23850000000000001"}
    sample_records: ClassVar[list[Record]] = [
        *make_records(3),
        # No email, no phone: rejected with a reason, not held.
        Record(stream="test.items", key="anonymous", data={"first_name": "Zoë"}),
    ]

    def read_back(self, destination: Destination, tmp_path: Path) -> list[str] | None:
        return destination.staged_record_keys()  # type: ignore[attr-defined]
