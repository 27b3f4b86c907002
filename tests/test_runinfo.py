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
    assert run.totals().to_dict() == {
        "read": 15, "written": 11, "rejected": 5, "already_quarantined": 3, "held_back": 0, "suppressed": 0
    }  # fmt: skip
    assert run.totals().new_rejects == 2 and run.nodes["clean"].new_rejects == 1


def test_held_back_is_counted_per_node_and_reason_and_in_the_totals() -> None:
    run = RunInfo(id="r", graph="g", started_at=datetime(2024, 1, 1, tzinfo=UTC))
    audience = NodeStats("destination", records_in=10, records_out=6, rejected=1)
    audience.hold_back({"no ads consent": 2})
    audience.hold_back({"no ads consent": 0, "ads consent revoked": 1})
    audience.hold_back({"no ads consent": 0})
    run.nodes = {"people": NodeStats("source", records_out=10), "audience": audience}
    assert audience.held_back == {"no ads consent": 2, "ads consent revoked": 1}
    assert audience.held_back_text() == "ads consent revoked: 1, no ads consent: 2"
    totals = run.totals()
    assert totals.held_back == 3
    # read = written + rejected + held back: nobody is lost between the source and the destination
    assert totals.read == totals.written + totals.rejected + totals.held_back
