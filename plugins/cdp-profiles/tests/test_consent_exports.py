"""Consent on every export to the file destinations (kernel builtins): people from a real store, one of whom revoked.

The vendor destinations have the same test in their own plugins (test_*_consent.py),
through the same helper, cdp_profiles.testing.ConsentExport.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from cdp_core.plugins import Plugins
from cdp_core.testing import kit_plugin, load_test_plugins

from cdp_profiles.testing import CLEO, ConsentExport, file_lines


@pytest.fixture
def plugins() -> Plugins:
    return load_test_plugins(kit_plugin, "profiles")


def test_jsonl_file_gets_no_line_of_a_person_who_revoked_the_purpose(
    tmp_path: Path, store_url: str, plugins: Plugins
) -> None:
    export = ConsentExport(tmp_path, store_url, plugins,
                           '[connectors.out]\ntype = "jsonl_file"\npath = "people.jsonl"', node='purpose = "ads"')  # fmt: skip
    export.ingest()
    run = export.export()
    lines = file_lines(tmp_path / "people.jsonl")
    assert sorted(json.loads(line)["data"]["first_name"] for line in lines) == ["Ana", "Cleo"]
    export.assert_first_export(run, lines, "ads")
    assert run.nodes["out"].records_out == 2

    # A later revocation holds Cleo back from the next export too (checked at sending time, not cached).
    export.revoke(CLEO, "ads")
    again = export.export()
    assert again.nodes["out"].held_back == {"ads consent revoked": 2}
    added = file_lines(tmp_path / "people.jsonl")[len(lines) :]
    assert [json.loads(line)["data"]["first_name"] for line in added] == ["Ana"]
    export.assert_absent(added, CLEO)


def test_csv_file_gets_no_row_of_a_person_who_revoked_the_purpose(
    tmp_path: Path, store_url: str, plugins: Plugins
) -> None:
    export = ConsentExport(tmp_path, store_url, plugins,
                           '[connectors.out]\ntype = "csv_file"\npath = "people.csv"', node='purpose = "email"')  # fmt: skip
    export.ingest()
    run = export.export()
    lines = file_lines(tmp_path / "people.csv")
    rows = list(csv.DictReader(lines))
    assert sorted(r["first_name"] for r in rows) == ["Ana", "Cleo"]
    export.assert_first_export(run, lines, "email")
