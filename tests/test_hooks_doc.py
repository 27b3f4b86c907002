"""Every hook is documented in docs/hooks.md and specified with :param: docstrings."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from cdp_core import hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "hooks.md"
HOOKS = sorted(name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("cdp_"))


def test_there_are_hooks() -> None:
    assert "cdp_register_sources" in HOOKS and "cdp_run_failed" in HOOKS


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_has_a_section_in_docs(hook: str) -> None:
    headings = re.findall(r"^### `(cdp_[a-z_]+)\(", DOC.read_text(), flags=re.M)
    assert hook in headings, f"docs/hooks.md has no '### `{hook}(...)`' section"


@pytest.mark.parametrize("hook", HOOKS)
def test_hookspec_documents_each_parameter(hook: str) -> None:
    function = getattr(hookspecs, hook)
    doc = inspect.getdoc(function) or ""
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc, f"{hook} does not document {parameter}"


def test_docs_name_no_hook_that_does_not_exist() -> None:
    headings = re.findall(r"^### `(cdp_[a-z_]+)\(", DOC.read_text(), flags=re.M)
    assert sorted(headings) == HOOKS
