"""RunInfo.totals: the one place a run's read/written/rejected counts are summed."""

from __future__ import annotations

from datetime import UTC, datetime

from cdp_core.runinfo import NodeStats, RunInfo, RunTotals


def test_totals_read_from_sources_written_by_destinations_rejected_anywhere() -> None:
    run = RunInfo(id="r", graph="g", started_at=datetime(2024, 1, 1, tzinfo=UTC))
    run.nodes = {
        "crm": NodeStats("source", records_out=10, rejected=1, already_quarantined=1),
        "shop": NodeStats("source", records_out=5),
        "clean": NodeStats("transform", records_in=15, records_out=12, rejected=3, already_quarantined=2),
        "store": NodeStats("destination", records_in=12, records_out=11, rejected=1),
    }
    assert run.totals() == RunTotals(read=15, written=11, rejected=5, already_quarantined=3)
    assert run.totals().to_dict() == {"read": 15, "written": 11, "rejected": 5, "already_quarantined": 3}
    assert run.totals().new_rejects == 2 and run.nodes["clean"].new_rejects == 1
