"""A small store for the NPS report's tests: the test_nps answers with comments, one segment."""

from __future__ import annotations

from pathlib import Path

from cdp_core.records import Record
from sqlalchemy import Engine
from test_nps import ANSWERS, PROFILES, STORE_CONNECTOR, answer, at, store

HOSTILE = "<script>alert('x')</script> & \"quotes\""
COMMENTS = {
    "a1": "Fast delivery and friendly support",
    "b1": "Friendly support, fast answers",
    "c1": HOSTILE + " slow delivery",
    "d1": "Okay, delivery was slow",
    "e2": "Great prices, fast delivery",
}


def answers() -> list[Record]:
    out = []
    for record in [*ANSWERS, answer("g1", "anna@example.de", 9, at(3, 28), "s2")]:
        data = dict(record.data)
        data.pop("comment")
        if record.key in COMMENTS:
            data["comment"] = COMMENTS[record.key]
        out.append(record.model_copy(update={"data": data}))
    return out


def report_store(url: str) -> Engine:
    return store(url, PROFILES + answers())


CONFIG = """
[segments.berliners]
where = "city == 'Berlin'"

[segments.hamburgers]
where = "city == 'Hamburg'"
"""


def config_file(tmp_path: Path, store_url: str) -> Path:
    path = tmp_path / "connectors.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n' + STORE_CONNECTOR + CONFIG, encoding="utf-8")
    return path
