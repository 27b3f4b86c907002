"""The cdp plugin test kit (fixtures, conformance suite) and the fake API of meta_fake.py."""

from __future__ import annotations

import pytest
import respx
from cdp_core.http import HttpFactory
from meta_fake import FakeGraph

pytest_plugins = ["cdp_core.testing", "cdp_core.testing.databases"]


@pytest.fixture(autouse=True)
def _no_real_sleep(cdp_http: HttpFactory) -> HttpFactory:
    """Every test gets the kit's HTTP factory: retries and rate limits record their sleeps, never wait."""
    return cdp_http


@pytest.fixture
def graph(cdp_respx: respx.Router) -> FakeGraph:
    return FakeGraph(cdp_respx)
