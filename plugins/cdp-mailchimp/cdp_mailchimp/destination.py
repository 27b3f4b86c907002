"""The destination: upsert audience members, their merge fields and tags, 500 per request.

``POST /lists/{list_id}`` (batch subscribe or update) with ``update_existing: true``
adds new members with ``status_if_new`` and updates existing ones without touching
their subscription status: cdp never subscribes again someone who unsubscribed.
Tags go in the same payload (``tags``: names; added to the member's tags, or
replacing them with ``sync_tags = true``).

Mailchimp answers 200 even when some members fail and lists them in ``errors``
(``email_address``, ``error``, ``error_code``): each of those records is sent to
quarantine with ``checkpoint.reject(record, reason)``, so none is lost silently. A
record without an email address is quarantined before anything is sent.

Forgetting a person (:meth:`MailchimpDestination.forget`, docs/privacy.md) is
``POST /lists/{list_id}/members/{subscriber_hash}/actions/delete-permanent`` for each of
their emails: the member is erased for good and the address cannot be imported again
(a plain ``DELETE`` only archives). 404: the audience holds nothing of them.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any, ClassVar, Literal

from cdp_core import (
    ConnectorContext,
    Destination,
    ForgetResult,
    ForgetState,
    ForgetSubject,
    PluginConfig,
    Record,
    RecordKind,
    WriteMode,
)
from cdp_core.forget import combine, result_of_error
from cdp_core.http import HttpClient, HttpError
from cdp_core.store.checkpoint import Checkpoint
from pydantic import Field

from cdp_mailchimp.api import BatchResult, MailchimpConfig, MemberError, make_client, subscriber_hash

log = logging.getLogger("cdp.mailchimp")

MAX_BATCH = 500
"""Mailchimp's limit of members per batch request."""


class MailchimpWriteOptions(PluginConfig):
    """``[syncs.G.nodes.N] options = {...}`` of a node writing to a ``mailchimp`` connector."""

    status_if_new: Literal["subscribed", "pending", "transactional", "unsubscribed"] = Field(
        description="The status of a member who is not in the audience yet. 'subscribed' only for people who gave "
        "email consent; 'pending' sends Mailchimp's opt-in confirmation; 'transactional' adds them without "
        "marketing consent. Existing members keep their status."
    )
    merge_fields: dict[str, str] = Field(
        default_factory=lambda: {"first_name": "FNAME", "last_name": "LNAME"},
        description="Record data field -> Mailchimp merge tag. Empty values are not sent (they never blank a field).",
    )
    email_field: str = Field(
        "email", min_length=1, description="Data field with the email when the record has no 'email' identifier."
    )
    tags_field: str = Field(
        "tags", description="Data field with the tag names (a list, or one comma-separated string); '' sends no tags."
    )
    sync_tags: bool = Field(
        False, description="true: a member's tags become exactly the ones sent; false: the tags sent are added."
    )
    batch_size: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH, description="Members per request (Mailchimp: up to 500).")
    skip_merge_validation: bool = Field(
        False, description="Accept members without a value for merge fields the audience marks required."
    )


class MailchimpDestination(Destination):
    """Upserts ``profile`` records as members of the connector's audience."""

    config_model = MailchimpConfig
    options_model = MailchimpWriteOptions
    write_mode = WriteMode.upsert  # one member per email address: writing a record again updates it
    accepts: ClassVar[frozenset[RecordKind] | None] = frozenset({RecordKind.profile})
    purpose: ClassVar[str | None] = "email"
    """Every person sent is checked against their email consent first (docs/consent.md); a graph may set another."""
    supports_forget: ClassVar[bool] = True
    config: MailchimpConfig
    options: MailchimpWriteOptions

    def __init__(
        self, config: MailchimpConfig, context: ConnectorContext, options: MailchimpWriteOptions | None = None
    ) -> None:
        if options is None:  # built to forget a person, outside any graph: nobody is added
            options = MailchimpWriteOptions.model_construct(status_if_new="transactional")
        super().__init__(config, context, options)
        self.client: HttpClient = make_client(config, context)

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        members: list[tuple[Record, str, dict[str, Any]]] = []
        for record in batch:
            email = self._email(record)
            if email is None:
                checkpoint.reject(
                    record,
                    f"mailchimp: the record has no email address (no 'email' identifier, no data field "
                    f"{self.options.email_field!r}); a Mailchimp member needs one",
                )
                continue
            members.append((record, email, self._member(record, email)))
        size = self.options.batch_size
        for start in range(0, len(members), size):
            self._send(members[start : start + size], checkpoint)

    def close(self) -> None:
        self.client.close()

    def forget(self, subject: ForgetSubject) -> ForgetResult:
        """Mailchimp's permanent delete of each of the person's emails in the audience (404: not a member)."""
        results: list[ForgetResult] = []
        for email in dict.fromkeys(e.strip().lower() for e in subject.identifiers.get("email", []) if e.strip()):
            path = f"/lists/{self.config.list_id}/members/{subscriber_hash(email)}/actions/delete-permanent"
            try:  # one attempt: the privacy product retries with its own backoff
                response = self.client.post(path, idempotent=False, allow_status={404})
            except HttpError as exc:
                results.append(result_of_error(exc, subject, "Mailchimp"))
                continue
            what = "not a member" if response.status_code == 404 else "member erased for good"
            results.append(ForgetResult(state=ForgetState.done, answer=f"Mailchimp {response.status_code}: {what}"))
        return combine(results, "Mailchimp: no email to ask with: nothing held")

    # -- one request ----------------------------------------------------------------------

    def _send(self, chunk: list[tuple[Record, str, dict[str, Any]]], checkpoint: Checkpoint) -> None:
        payload: list[dict[str, Any]] = []
        position: dict[str, int] = {}
        for _record, email, member in chunk:
            key = email.lower()
            if key in position:  # two records, one member: the later one is the newer state
                payload[position[key]] = member
            else:
                position[key] = len(payload)
                payload.append(member)
        body: dict[str, Any] = {"members": payload, "update_existing": True}
        if self.options.sync_tags:
            body["sync_tags"] = True
        params = {"skip_merge_validation": "true"} if self.options.skip_merge_validation else None
        result: BatchResult = self.client.request_json(
            "POST",
            f"/lists/{self.config.list_id}",
            model=BatchResult,
            json=body,
            params=params,
            idempotent=True,  # an upsert by email: sending it again changes nothing
        )
        refused: dict[str, MemberError] = {}
        for error in result.errors:
            refused.setdefault(error.email_address.strip().lower(), error)
        matched: set[str] = set()
        for record, email, _member in chunk:
            refusal = refused.get(email.lower())
            if refusal is not None:
                checkpoint.reject(record, _reason(refusal))
                matched.add(email.lower())
        missing = len(refused) - len(matched) + max(0, result.error_count - len(result.errors))
        if missing:
            log.warning(
                "connector %s: Mailchimp reported %d member error(s) cdp could not match to a record of the batch",
                self.context.name, missing,
            )  # fmt: skip
        log.debug(
            "connector %s: batch of %d: %d created, %d updated, %d refused",
            self.context.name, len(payload), result.total_created, result.total_updated, len(matched),
        )  # fmt: skip

    # -- a record as a member -------------------------------------------------------------

    def _email(self, record: Record) -> str | None:
        value = record.first_identifier("email") or record.data.get(self.options.email_field)  # the primary one
        if not isinstance(value, str) or not value.strip():
            return None
        return value.strip()

    def _member(self, record: Record, email: str) -> dict[str, Any]:
        member: dict[str, Any] = {"email_address": email, "status_if_new": self.options.status_if_new}
        merge: dict[str, Any] = {}
        for field, tag in self.options.merge_fields.items():
            value = record.data.get(field)
            if value is None or value == "":
                continue
            merge[tag] = value.isoformat() if isinstance(value, (datetime, date)) else value
        if merge:
            member["merge_fields"] = merge
        tags = _tags(record.data.get(self.options.tags_field)) if self.options.tags_field else None
        if tags is not None:
            member["tags"] = tags
        return member


def _tags(value: Any) -> list[str] | None:
    """Tag names from a list or a comma-separated string; None when the field is absent."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    names: list[str] = []
    for item in items:
        name = str(item.get("name", "")) if isinstance(item, dict) else str(item)
        name = name.strip()
        if name and name not in names:
            names.append(name)
    return names


def _reason(error: MemberError) -> str:
    code = f" ({error.error_code})" if error.error_code else ""
    text = error.error.strip() or "no reason given"
    field = f"; field {error.field}: {error.field_message}" if error.field else ""
    return f"mailchimp refused the member{code}: {text}{field}"
