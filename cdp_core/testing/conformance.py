"""Conformance suites: base test classes a plugin's own tests subclass.

Subclass one in a module pytest collects, name the subclass ``Test...``, set the
class attributes, and every inherited ``test_*`` runs against your plugin::

    pytest_plugins = ["cdp_core.testing"]          # in conftest.py

    class TestShopSource(SourceConformance):
        plugin = shop_plugin                        # the module with @hookimpl functions
        type_name = "shop"
        config = {"domain": "acme.example", "token": "t"}
        stream = "customers"

        def setup_source(self, respx_mock, tmp_path):
            respx_mock.get("https://acme.example/customers").respond(json=...)

The suites use the kit's fixtures (``register_plugin``, ``cdp_respx``), so the
test suite must enable ``cdp_core.testing``.

Each suite has its module: :mod:`~cdp_core.testing.source_conformance`,
:mod:`~cdp_core.testing.transform_conformance`, :mod:`~cdp_core.testing.destination_conformance`
(with :mod:`~cdp_core.testing.forget_conformance`) and :mod:`~cdp_core.testing.webhook_conformance`;
what they share is in :mod:`~cdp_core.testing.conformance_base`. This module gathers the first
four, as ``cdp_core.testing`` does. See docs/testing.md.
"""

from __future__ import annotations

from cdp_core.testing.conformance_base import identifiers_problem
from cdp_core.testing.destination_conformance import DestinationConformance
from cdp_core.testing.forget_conformance import ForgetConformance
from cdp_core.testing.source_conformance import SourceConformance
from cdp_core.testing.transform_conformance import TransformConformance

__all__ = [
    "DestinationConformance",
    "ForgetConformance",
    "SourceConformance",
    "TransformConformance",
    "identifiers_problem",
]
