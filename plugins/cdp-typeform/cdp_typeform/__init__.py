"""cdp-typeform: Typeform NPS survey answers as a cdp source (type ``typeform``).

Stream ``responses`` of one form: ``nps_response`` records (score from the NPS or
opinion-scale question chosen by ``score_field``, comment, survey, channel), the
respondent's email as identifier, incremental by Typeform's ``after`` token
(:mod:`cdp_typeform.source`). Typeform's webhook (``cdp serve``'s
``/webhooks/CONNECTOR``, :mod:`cdp_typeform.webhooks`) feeds stream
``webhook_responses`` with the same records. README.md shows a connectors.toml.
"""

from __future__ import annotations

from cdp_core import Register, hookimpl

from cdp_typeform.api import TYPE_NAME, TypeformConfig
from cdp_typeform.mapping import response_record
from cdp_typeform.source import ResponsesStream, TypeformSource
from cdp_typeform.webhooks import TypeformWebhook, WebhookResponses, response_records

__version__ = "0.1.0"

__all__ = [
    "TYPE_NAME",
    "ResponsesStream",
    "TypeformConfig",
    "TypeformSource",
    "TypeformWebhook",
    "WebhookResponses",
    "cdp_register_sources",
    "cdp_register_webhooks",
    "response_record",
    "response_records",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register(TYPE_NAME, TypeformSource)


@hookimpl
def cdp_register_webhooks(register: Register) -> None:
    register(TYPE_NAME, TypeformWebhook)
