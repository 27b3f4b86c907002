"""Running a conformance suite on deliberately broken plugins (pytester), for the kit's tests of its suites."""

from __future__ import annotations

import pytest


def suite_outcomes(pytester: pytest.Pytester, code: str) -> dict[str, tuple[str, str]]:
    """Run ``code`` as a test module; map ``Class::test`` to (outcome, failure text)."""
    pytester.makepyfile(test_suite=code)
    recorder = pytester.inline_run("-p", "no:cacheprovider")
    results: dict[str, tuple[str, str]] = {}
    passed, skipped, failed = recorder.listoutcomes()
    for outcome, reports in (("passed", passed), ("skipped", skipped), ("failed", failed)):
        for report in reports:
            name = report.nodeid.split("::", 1)[1]
            if outcome == "failed" or name not in results:
                results[name] = (outcome, report.longreprtext if outcome != "passed" else "")
    assert results, "no test ran"
    return results


def failing(results: dict[str, tuple[str, str]], cls: str) -> set[str]:
    """The tests of class ``cls`` that failed."""
    return {
        name.split("::")[1]
        for name, (outcome, _) in results.items()
        if name.startswith(cls + "::") and outcome == "failed"
    }
