"""The repository stands alone: no tracked file points at notes kept outside it.

Design and vendor notes once lived next to the repository (``design.md``,
``apis.md`` in ``../shared``); a reader of a checkout cannot open them, so the
code and docs state what they rely on in their own words instead. This test
keeps it that way.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THIS_FILE = Path(__file__).resolve().relative_to(ROOT).as_posix()

# design.md / apis.md by name, and any path into the sibling ../shared folder.
OUTSIDE_DOCUMENT = re.compile(r"design\.md|apis\.md|\.\./shared", re.IGNORECASE)


# Outside a git checkout (an unpacked source archive) every file is checked, but for these.
_NOT_SOURCE = {".git", ".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".pgtest", "out"}


def tracked_files() -> list[str]:
    """``git ls-files``; outside a checkout, every file of the tree but caches and environments (never a skip)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        return sorted(
            path.relative_to(ROOT).as_posix()
            for path in ROOT.rglob("*")
            if path.is_file() and not _NOT_SOURCE & set(path.relative_to(ROOT).parts) and ".egg-info" not in str(path)
        )
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout.decode()
    return [name for name in listing.split("\0") if name]


def test_no_tracked_file_refers_to_documents_outside_the_repository() -> None:
    files = tracked_files()
    # Guard against a vacuous pass (e.g. git listing nothing from a wrong folder).
    assert "README.md" in files and "cdp_core/records.py" in files

    offenders = []
    for name in files:
        if name == THIS_FILE:
            continue
        path = ROOT / name
        if not path.is_file():  # deleted in the work tree but still tracked
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:  # binary files carry no prose
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE_DOCUMENT.search(line):
                offenders.append(f"{name}:{number}: {line.strip()}")

    assert not offenders, "references to documents outside the repository:\n" + "\n".join(offenders)
