"""The cdp plugin test kit (fixtures, conformance suite): docs/testing.md of cdp."""

from __future__ import annotations

import pytest
from cdp_core.http import HttpFactory

pytest_plugins = ["cdp_core.testing", "cdp_core.testing.databases"]


@pytest.fixture(autouse=True)
def _no_real_sleep(cdp_http: HttpFactory) -> HttpFactory:
    """Every test gets the kit's HTTP factory: retries and rate limits record their sleeps, never wait."""
    return cdp_http
