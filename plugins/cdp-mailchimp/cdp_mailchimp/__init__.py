"""cdp-mailchimp: a Mailchimp audience as a cdp source and destination (type ``mailchimp``).

- Source streams ``members`` (``profile`` records: merge fields, tags, status) and
  ``consents`` (``consent`` records for the purpose ``email``), both incremental by
  ``last_changed`` (:mod:`cdp_mailchimp.source`).
- Destination: upserts members with merge fields and tags, 500 per request; the
  members Mailchimp refuses go to quarantine (:mod:`cdp_mailchimp.destination`).

Both share one config model, :class:`MailchimpConfig` (API key with its data center,
audience id). README.md shows a connectors.toml.
"""

from __future__ import annotations

from cdp_core import Register, hookimpl

from cdp_mailchimp.api import TYPE_NAME, MailchimpConfig, subscriber_hash
from cdp_mailchimp.destination import MailchimpDestination, MailchimpWriteOptions
from cdp_mailchimp.source import CONSENT_STATUS, ConsentsStream, MailchimpSource, MembersStream

__version__ = "0.1.0"

__all__ = [
    "CONSENT_STATUS",
    "TYPE_NAME",
    "ConsentsStream",
    "MailchimpConfig",
    "MailchimpDestination",
    "MailchimpSource",
    "MailchimpWriteOptions",
    "MembersStream",
    "subscriber_hash",
]


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register(TYPE_NAME, MailchimpSource)


@hookimpl
def cdp_register_destinations(register: Register) -> None:
    register(TYPE_NAME, MailchimpDestination)
