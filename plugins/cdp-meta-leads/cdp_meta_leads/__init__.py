"""cdp-meta-leads: a cdp source plugin for Meta (Facebook / Instagram) lead ads.

Streams (``source = "CONNECTOR.STREAM"``), both over every form in ``form_ids``:

- ``leads`` (kind ``profile``, key: the lead id): identifiers ``meta_lead_id``,
  ``email``, ``phone``; the form's answers as traits (:mod:`cdp_meta_leads.mapping`);
- ``submissions`` (kind ``event`` named ``lead_form_submitted``, key: the lead id):
  when which form was sent from which ad and campaign. Optional: a run of both
  reads each page of a form once (:mod:`cdp_meta_leads.fetched`).

Meta's ``leadgen`` webhook (``cdp serve``'s ``/webhooks/CONNECTOR``,
:mod:`cdp_meta_leads.webhooks`) feeds ``webhook_leads`` and ``webhook_submissions``,
which make the same records as ``leads`` and ``submissions`` (a run of both fetches
each lead once: :mod:`cdp_meta_leads.fetched`).

Both pull streams are incremental by ``created_time`` with one cursor per form
(:mod:`cdp_meta_leads.source`); Meta's error codes are handled in
:mod:`cdp_meta_leads.graph`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdp_core import Register, hookimpl
from cdp_core.exports import lazy_exports

if TYPE_CHECKING:
    from cdp_meta_leads.config import MetaLeadsConfig
    from cdp_meta_leads.graph import GraphClient
    from cdp_meta_leads.mapping import EVENT_NAME, answers, lead_event, lead_profile
    from cdp_meta_leads.source import Leads, LeadsStream, MetaLeadsSource, Submissions
    from cdp_meta_leads.webhooks import MetaLeadsWebhook, fetch_lead, leadgen_records

# Imported on first use, not with the package: cdp imports every plugin's package to list its
# commands, and `cdp --help` should not pay for the HTTP client (docs/writing-plugins.md).
__getattr__ = lazy_exports(
    __name__,
    {
        "MetaLeadsConfig": "cdp_meta_leads.config",
        "GraphClient": "cdp_meta_leads.graph",
        "EVENT_NAME": "cdp_meta_leads.mapping",
        "answers": "cdp_meta_leads.mapping",
        "lead_event": "cdp_meta_leads.mapping",
        "lead_profile": "cdp_meta_leads.mapping",
        "Leads": "cdp_meta_leads.source",
        "LeadsStream": "cdp_meta_leads.source",
        "MetaLeadsSource": "cdp_meta_leads.source",
        "Submissions": "cdp_meta_leads.source",
        "MetaLeadsWebhook": "cdp_meta_leads.webhooks",
        "fetch_lead": "cdp_meta_leads.webhooks",
        "leadgen_records": "cdp_meta_leads.webhooks",
    },
)

TYPE_NAME = "meta_leads"
"""The type name in connectors.toml: ``[connectors.X] type = "meta_leads"``."""

__all__ = [
    "EVENT_NAME",
    "TYPE_NAME",
    "GraphClient",
    "Leads",
    "LeadsStream",
    "MetaLeadsConfig",
    "MetaLeadsSource",
    "MetaLeadsWebhook",
    "Submissions",
    "answers",
    "cdp_register_sources",
    "cdp_register_webhooks",
    "fetch_lead",
    "lead_event",
    "lead_profile",
    "leadgen_records",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    from cdp_meta_leads.source import MetaLeadsSource

    register(TYPE_NAME, MetaLeadsSource)


@hookimpl
def cdp_register_webhooks(register: Register) -> None:
    from cdp_meta_leads.webhooks import MetaLeadsWebhook

    register(TYPE_NAME, MetaLeadsWebhook)
