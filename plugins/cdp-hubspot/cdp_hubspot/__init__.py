"""cdp-hubspot: HubSpot CRM as a cdp source (contacts, companies) and destination (contact write-back).

``[connectors.crm] type = "hubspot"`` with ``access_token = "${HUBSPOT_TOKEN}"``:

* source streams ``crm.contacts`` and ``crm.companies``: incremental through the CRM
  search API (:mod:`cdp_hubspot.source` explains the paging, the 10,000-result cap,
  the lookback window and the dedupe); ``crm.contacts_archived``: archived contacts as
  tombstones of ``contacts``' records (:mod:`cdp_hubspot.archived`);
* destination: node options map record fields to contact properties, written with
  ``batch/update`` in batches of at most 100 (:mod:`cdp_hubspot.destination`).

Every request goes through the core's HTTP layer (``cdp_core.http``): retries,
``Retry-After``, the connector's rate limits (190 / 10 s, search 4 / s), redacted logs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_hubspot.archived import ArchivedContactsStream
    from cdp_hubspot.config import (
        DEFAULT_COMPANY_PROPERTIES,
        DEFAULT_CONTACT_PROPERTIES,
        TYPE_NAME,
        HubSpotConfig,
        hubspot_rate_policy,
    )
    from cdp_hubspot.destination import HubSpotDestination, WriteBackOptions, property_value
    from cdp_hubspot.source import COMPANIES, CONTACTS, HubSpotSource, SearchState, SearchStream, parse_time

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "ArchivedContactsStream": "cdp_hubspot.archived",
        "DEFAULT_COMPANY_PROPERTIES": "cdp_hubspot.config",
        "DEFAULT_CONTACT_PROPERTIES": "cdp_hubspot.config",
        "TYPE_NAME": "cdp_hubspot.config",
        "HubSpotConfig": "cdp_hubspot.config",
        "hubspot_rate_policy": "cdp_hubspot.config",
        "HubSpotDestination": "cdp_hubspot.destination",
        "WriteBackOptions": "cdp_hubspot.destination",
        "property_value": "cdp_hubspot.destination",
        "COMPANIES": "cdp_hubspot.source",
        "CONTACTS": "cdp_hubspot.source",
        "HubSpotSource": "cdp_hubspot.source",
        "SearchState": "cdp_hubspot.source",
        "SearchStream": "cdp_hubspot.source",
        "parse_time": "cdp_hubspot.source",
    },
)

__all__ = [
    "COMPANIES",
    "CONTACTS",
    "DEFAULT_COMPANY_PROPERTIES",
    "DEFAULT_CONTACT_PROPERTIES",
    "TYPE_NAME",
    "ArchivedContactsStream",
    "HubSpotConfig",
    "HubSpotDestination",
    "HubSpotSource",
    "SearchState",
    "SearchStream",
    "WriteBackOptions",
    "hubspot_rate_policy",
    "parse_time",
    "property_value",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_hubspot.config import TYPE_NAME
    from cdp_hubspot.source import HubSpotSource

    register(TYPE_NAME, HubSpotSource)


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    from cdp_hubspot.config import TYPE_NAME
    from cdp_hubspot.destination import HubSpotDestination

    register(TYPE_NAME, HubSpotDestination)
