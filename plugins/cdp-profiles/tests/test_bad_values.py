"""Bad-input corpus: values the store's databases cannot hold, fed through `cdp sync` on both databases.

Each case is a JSON lines file of three records of one kind: two good ones around one whose
value PostgreSQL (or JSON, or ``orders.amount NUMERIC(18,4)``) cannot hold: a NUL byte, a
non-finite number, an integer beyond 64 bits, an amount out of range or precision. The real
CLI runs the sync in a subprocess. The run succeeds (exit 0), the bad record is quarantined
with a reason naming the field, the good ones are stored, read = stored + quarantined, and
no output holds a traceback.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cdp_core.store import SystemStore
from sqlalchemy import func, select

from cdp_profiles.store import tables


@dataclass(frozen=True)
class Case:
    kind: str
    line: str
    """The bad record as a JSON line, as written (Python's json reads NaN, Infinity and \\u0000)."""
    reason: str
    """What the quarantine reason must contain: the field and what is wrong."""
    at: str = "store"
    """The node that quarantines it: the store, or the JSONL source for what JSON itself cannot hold
    (NaN and Infinity are not JSON values: the file source refuses them before any store sees them)."""


def _good(kind: str, n: int) -> dict[str, Any]:
    person = {"id": f"good{n}", "email": f"good{n}@example.org", "at": f"2024-05-0{n}T09:00:00Z"}
    extra: dict[str, dict[str, Any]] = {
        "profile": {"city": "Berlin"},
        "event": {"event": "page_view", "props": {"path": "/"}},
        "order": {"amount": 19.99, "currency": "EUR"},
        "nps_response": {"score": 9},
    }
    return {**person, **extra[kind]}


def _bad(kind: str, body: str) -> str:
    return '{"id": "bad", "email": "bad@example.org", "at": "2024-05-05T09:00:00Z", ' + body + "}"


CASES = {
    "nul-in-a-trait": Case("profile", _bad("profile", '"city": "Ber\\u0000lin"'), "data.city: text holds a NUL byte"),
    "nul-in-a-nested-trait": Case(
        "profile", _bad("profile", '"address": {"lines": ["x", "a\\u0000b"]}'), "data.address.lines[1]: text holds a NUL byte"
    ),
    "nul-in-a-trait-name": Case("profile", _bad("profile", '"ci\\u0000ty": "Berlin"'), "key holds a NUL byte"),
    "nul-in-an-identifier": Case(
        "profile",
        '{"id": "bad", "email": "bad\\u0000@example.org", "at": "2024-05-05T09:00:00Z"}',
        "identifiers.email: text holds a NUL byte",
    ),
    "nul-in-an-event-property": Case(
        "event", _bad("event", '"event": "click", "props": {"label": "buy\\u0000now"}'), "data.props.label: text holds a NUL byte"
    ),
    "nul-in-an-event-name": Case("event", _bad("event", '"event": "cl\\u0000ick"'), "data.event: text holds a NUL byte"),
    "nul-in-a-record-key": Case(
        "profile",
        '{"id": "b\\u0000ad", "email": "bad@example.org", "at": "2024-05-05T09:00:00Z"}',
        "key: text holds a NUL byte",
    ),
    "lone-surrogate-in-a-trait": Case("profile", _bad("profile", '"city": "\\ud800"'), "data.city: text holds '\\ud800'"),
    "nan-amount": Case("order", _bad("order", '"amount": NaN'), "is not a JSON value", at="things"),
    "infinite-amount": Case("order", _bad("order", '"amount": Infinity'), "is not a JSON value", at="things"),
    "nan-amount-as-text": Case("order", _bad("order", '"amount": "NaN"'), "order amount NaN is not a finite number"),
    "amount-1e20": Case("order", _bad("order", '"amount": 1e20'), "order amount 1E+20 does not fit orders.amount NUMERIC(18,4)"),
    "amount-beyond-14-digits": Case(
        "order", _bad("order", '"amount": "123456789012345"'), "does not fit orders.amount NUMERIC(18,4)"
    ),
    "amount-with-6-decimals": Case(
        "order", _bad("order", '"amount": "12.345678"'), "order amount 12.345678 has more than 4 decimal places"
    ),
    "nan-nps-score": Case("nps_response", _bad("nps_response", '"score": NaN'), "is not a JSON value", at="things"),
    "infinite-score-trait": Case(
        "profile", _bad("profile", '"lead_score": -Infinity'), "is not a JSON value", at="things"
    ),
    "nan-in-an-event-property-list": Case(
        "event", _bad("event", '"event": "rate", "props": {"ratings": [1, NaN]}'), "is not a JSON value", at="things"
    ),
    "huge-integer-trait": Case(
        "profile",
        _bad("profile", '"visits": 123456789012345678901234567890'),
        "data.visits: integer 123456789012345678901234567890 is beyond the 64-bit range",
    ),
    "huge-nps-score": Case(
        "nps_response", _bad("nps_response", '"score": 123456789012345678901234567890'), "data.score: integer"
    ),
}


def _config(folder: Path, store_url: str, kind: str) -> Path:
    path = folder / "connectors.toml"
    path.write_text(
        f"""
[store]
url = "{store_url}"
[connectors.files]
type = "jsonl"
streams.things = {{ path = "things.jsonl", kind = "{kind}", timestamp_field = "at", identifiers = {{ email = "email" }} }}
[connectors.store]
type = "profile_store"
[syncs.ingest.nodes.things]
source = "files.things"
[syncs.ingest.nodes.store]
destination = "store"
inputs = ["things"]
"""
    )
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_value_the_store_cannot_hold_quarantines_its_record_only(name: str, store_url: str, tmp_path: Path) -> None:
    case = CASES[name]
    lines = [json.dumps(_good(case.kind, 1)), case.line, json.dumps(_good(case.kind, 2))]
    (tmp_path / "things.jsonl").write_text("\n".join(lines) + "\n")
    config = _config(tmp_path, store_url, case.kind)
    done = subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", "sync", "ingest", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert done.returncode == 0, output
    [run] = json.loads(done.stdout)
    assert run["status"] == "succeeded", run
    things, store = run["nodes"]["things"], run["nodes"]["store"]
    read, stored = things["records_out"] + things["rejected"], store["records_out"]
    quarantined = things["rejected"] + store["rejected"]
    assert (read, stored, quarantined) == (3, 2, 1)
    system = SystemStore(store_url)
    try:
        [entry] = system.quarantine("ingest")
        with system.engine.connect() as conn:
            keys = set(conn.execute(select(tables.record_index.c.key)).scalars())
            profiles = conn.execute(select(func.count()).select_from(tables.profiles)).scalar_one()
    finally:
        system.engine.dispose()
    assert entry["node"] == case.at
    assert case.reason in entry["reason"], entry["reason"]
    if case.at == "store":
        assert entry["reason"].startswith("the store cannot hold ") or entry["reason"].startswith(f"{case.kind}: ")
        assert entry["payload"]["data"]["id"].startswith("b"), "the raw record is kept"
    else:
        assert entry["payload"] == {"text": case.line}, "the raw line is kept as it was written"
    assert keys == {"good1", "good2"}
    assert profiles == 2


def test_values_at_the_limits_are_stored_as_they_are(store_engine: Any) -> None:
    """No false alarms: the largest amount NUMERIC(18,4) holds, trailing zeros, 64-bit integers,
    nulls, non-ASCII text and a literal backslash-u0000 (six characters, not a NUL) are stored."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from cdp_core.records import Record, RecordKind
    from cdp_core.store.checkpoint import Checkpoint

    from cdp_profiles.identity import IdentityConfig
    from cdp_profiles.store.profiles import ProfileWriter

    at = datetime(2024, 5, 1, tzinfo=UTC)
    amounts = {"max": "99999999999999.9999", "min": "-99999999999999.9999", "zeros": "12.340000", "tiny": "0.0001"}
    records = [
        Record(stream="shop.orders", kind=RecordKind.order, key=k, data={"amount": a}, occurred_at=at)
        for k, a in amounts.items()
    ] + [
        Record(
            stream="crm.contacts",
            key="edge",
            identifiers={"email": "edge@example.org"},
            data={"big": 2**63 - 1, "small": -(2**63), "none": None, "name": "Jörg Müller", "raw": "\\u0000", "x": [1.5, None]},
            occurred_at=at,
        )
    ]
    sqlite = store_engine.dialect.name == "sqlite"
    if sqlite:  # a fractional NUMERIC is a double there: 15 significant digits are exact
        amounts |= {"max15": "99999999999.9999", "min15": "-99999999999.9999"}
        records += [
            Record(stream="shop.orders", kind=RecordKind.order, key=k, data={"amount": amounts[k]}, occurred_at=at)
            for k in ("max15", "min15")
        ]
    checkpoint = Checkpoint(graph="g", run_id="r")
    ProfileWriter(store_engine, IdentityConfig()).write(records, checkpoint)
    refused = {r.key: r.reason for _, r in checkpoint.rejected}
    if sqlite:
        assert refused == {
            k: f"order: order amount {amounts[k]} has more than 15 significant digits, "
            "which SQLite keeps only approximately (as a double)"
            for k in ("max", "min")
        }
    else:
        assert refused == {}
    with store_engine.connect() as conn:
        stored = {k: v for k, v in conn.execute(select(tables.orders.c.key, tables.orders.c.amount))}
        [data] = conn.execute(select(tables.profile_records.c.data)).scalars()
    assert stored == {k: Decimal(a) for k, a in amounts.items() if k not in refused}
    assert data == records[4].data
