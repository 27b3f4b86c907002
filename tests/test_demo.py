"""`make demo` as a user runs it: the root connectors.toml on the sample files, through the real CLI.

The demo's segments have members, and the hashed ad export holds no clear-text personal
data and nobody without a grant of ads consent: Anna Schmidt, a promoter who revoked her
ads consent, is held back and counted. (Needs the profiles product: `make test` installs it.)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
AS_OF = "2024-07-01"  # the Makefile's DEMO_AS_OF: the samples are from the first half of 2024


def _cdp(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CDP_AS_OF": AS_OF}
    env.pop("CDP_DISABLE_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "cdp_core.cli", *args, "-c", str(cwd / "connectors.toml")],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    return json.loads(done.stdout)


def test_the_demo_segments_people_and_holds_back_a_revoked_ads_consent(tmp_path: Path) -> None:
    shutil.copy(REPO / "connectors.toml", tmp_path / "connectors.toml")
    shutil.copytree(REPO / "samples", tmp_path / "samples")
    runs = {run["graph"]: run for run in _json(_cdp(tmp_path, "sync", "--all", "--json"))}
    assert set(runs) == {"demo", "ads_export"} and all(r["status"] == "succeeded" for r in runs.values())

    counts = _json(_cdp(tmp_path, "segments", "count", "--json"))
    assert set(counts) == {"promoters", "detractors_90d", "repeat_buyers", "lapsed_buyers"}
    assert all(n > 0 for n in counts.values()), counts

    export = runs["ads_export"]["nodes"]["hashed_export"]
    lines = (tmp_path / "out" / "hashed_contacts.jsonl").read_text(encoding="utf-8").splitlines()
    assert export["records_in"] == counts["promoters"] == len(lines) + sum(export["held_back"].values())
    assert export["held_back"]["ads consent revoked"] == 1
    sent = [json.loads(line) for line in lines]
    assert all(set(row) == {"email", "phone"} for row in sent), "the two hashes, nothing else"
    text = "\n".join(lines)
    assert "@" not in text and "Anna" not in text and "Schmidt" not in text
    anna = hashlib.sha256(b"anna.schmidt@example.com").hexdigest()
    assert anna not in text, "a promoter who revoked her ads consent is not sent"

    view = _json(_cdp(tmp_path, "profiles", "show", "anna.schmidt@example.com", "--json"))
    ads = next(p for p in view["consents"]["purposes"] if p["purpose"] == "ads")
    assert ads["status"] == "revoked" and ads["allowed"] is False
    assert "promoters" in {s["segment"] for s in view["segments"]}
