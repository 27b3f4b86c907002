"""The HubSpot write-back: record fields become contact properties, in batches of at most 100.

``POST /crm/v3/objects/contacts/batch/update`` with ``{"inputs": [{"id": ..., "properties": {...}}]}``.
HubSpot answers 200 when every input was updated, 207 (multi-status) with
``errors[]`` when some were not, and 400 when it refuses the whole batch (one bad
value is enough). What it refuses goes to quarantine with HubSpot's reason:

* 207: each error names its inputs in ``context.ids``; an input neither in
  ``results`` nor named by an error is quarantined too (with the unattributed
  errors' text), never assumed written;
* 400 for a batch of several inputs: the batch is split in halves and each half
  sent again, down to the one input HubSpot refuses; the others are written;
* 400 ``PROPERTY_DOESNT_EXIST``: a mapped property is missing in the portal, which
  fails every record alike: the run fails with that message instead.

A batch update sets the same values again when sent twice, so it is marked
idempotent: 429 (with ``Retry-After``), 5xx and timeouts are retried by the core's
HTTP layer.

Forgetting a person (:meth:`HubSpotDestination.forget`, docs/privacy.md) is HubSpot's GDPR
delete, ``POST /crm/v3/objects/contacts/gdpr-delete``: ``{"objectId": "<contact id>"}``
for each of the person's ``hubspot_contact_id`` identifiers, else
``{"objectId": "<email>", "idProperty": "email"}`` for each email. It erases the contact
for good; an email that matches no contact is blocklisted so it cannot be used again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

import httpx
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
from cdp_core.http import ClientError, HttpClient, HttpError, error_url, response_json
from cdp_core.transforms.fields import MISSING, FieldName, FieldPath
from pydantic import Field, ValidationError, field_validator

from cdp_hubspot.config import BatchError, BatchResponse, HubSpotConfig, make_client

if TYPE_CHECKING:
    from cdp_core.store.checkpoint import Checkpoint

BATCH_UPDATE = "/crm/v3/objects/contacts/batch/update"
GDPR_DELETE = "/crm/v3/objects/contacts/gdpr-delete"
CONTACT_ID = "hubspot_contact_id"
"""The identifier type of a HubSpot contact id, as the source's contacts stream emits it."""
MAX_BATCH = 100
"""HubSpot's limit of inputs per batch request."""
_REASON_MAX = 600


class WriteBackOptions(PluginConfig):
    """Per graph node: ``options = { properties = { nps_score = "nps_score", ... } }``."""

    properties: dict[str, FieldName] = Field(
        min_length=1,
        description="HubSpot contact property -> record field (a data field, dotted for nested, or identifiers.TYPE). "
        "A field that is absent or null leaves the property as it is.",
    )
    id_identifier: str = Field(
        "hubspot_contact_id", min_length=1, description="The identifier type holding the HubSpot contact id."
    )
    batch_size: int = Field(MAX_BATCH, ge=1, le=MAX_BATCH, description="Inputs per batch request (at most 100).")

    @field_validator("properties")
    @classmethod
    def _property_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not name or name != name.strip():
                raise ValueError(f"invalid HubSpot property name {name!r}")
        return value


def property_value(value: Any) -> str:
    """A record value as HubSpot wants a property value: text.

    Numbers without a needless ``.0``, booleans ``true``/``false``, dates ISO 8601,
    lists as HubSpot's multi-select text (``a;b``). An object has no property form.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return ";".join(property_value(v) for v in value if v is not None)
    raise ValueError(f"a {type(value).__name__} has no HubSpot property form")


@dataclass
class _Input:
    """One contact of a batch request, and the records it carries (several when a batch repeats a contact)."""

    id: str
    properties: dict[str, str]
    records: list[Record] = field(default_factory=list)

    def body(self) -> dict[str, Any]:
        return {"id": self.id, "properties": self.properties}


class HubSpotDestination(Destination):
    """Writes record fields back to HubSpot contacts (``[connectors.X] type = "hubspot"`` as a destination)."""

    config_model = HubSpotConfig
    options_model = WriteBackOptions
    write_mode: ClassVar[WriteMode] = WriteMode.upsert
    accepts: ClassVar[frozenset[RecordKind] | None] = None
    purpose: ClassVar[str | None] = "crm"
    """Every person sent is checked against their crm consent first (docs/consent.md); a graph may set another."""
    commits_checkpoint: ClassVar[bool] = False
    supports_forget: ClassVar[bool] = True
    config: HubSpotConfig
    options: WriteBackOptions

    def __init__(
        self, config: HubSpotConfig, context: ConnectorContext, options: WriteBackOptions | None = None
    ) -> None:
        if options is None:  # built to forget a person, outside any graph: no properties to write
            options = WriteBackOptions.model_construct(properties={})
        super().__init__(config, context, options)
        self.client: HttpClient = make_client(config, context, search=False)
        self._paths = {name: FieldPath(path) for name, path in self.options.properties.items()}
        self.log = context.logger.getChild(f"hubspot.{context.name}")
        self.updated = 0
        """Contacts HubSpot confirmed updated in this run (for the logs and tests)."""

    def write(self, batch: list[Record], checkpoint: Checkpoint) -> None:
        inputs, skipped = self._inputs(batch, checkpoint)
        size = self.options.batch_size
        for start in range(0, len(inputs), size):
            self._send(inputs[start : start + size], checkpoint)
        if skipped:
            self.log.debug("%d record(s) had none of the mapped fields: nothing to update", skipped)

    def close(self) -> None:
        self.client.close()

    def forget(self, subject: ForgetSubject) -> ForgetResult:
        """HubSpot's GDPR delete of the person's contacts: by contact id, else by email (404: nothing held)."""
        ids = [v for v in subject.identifiers.get(CONTACT_ID, []) if v.strip().isdigit()]
        bodies: list[dict[str, str]] = [{"objectId": v.strip()} for v in ids]
        if not bodies:
            bodies = [{"objectId": e, "idProperty": "email"} for e in subject.identifiers.get("email", []) if e]
        results: list[ForgetResult] = []
        for body in bodies:
            try:  # one attempt: the privacy product retries with its own backoff
                response = self.client.post(GDPR_DELETE, json=body, idempotent=False, allow_status={404})
            except HttpError as exc:
                results.append(result_of_error(exc, subject, "HubSpot"))
                continue
            what = "no such contact" if response.status_code == 404 else "contact erased"
            results.append(ForgetResult(state=ForgetState.done, answer=f"HubSpot {response.status_code}: {what}"))
        return combine(results, "HubSpot: no contact id or email to ask with: nothing held")

    # -- records -> inputs ------------------------------------------------------------------

    def _inputs(self, batch: Iterable[Record], checkpoint: Checkpoint) -> tuple[list[_Input], int]:
        by_id: dict[str, _Input] = {}
        skipped = 0
        id_type = self.options.id_identifier
        for record in batch:
            contact = (record.first_identifier(id_type) or "").strip()
            if not contact:
                checkpoint.reject(
                    record, f"no {id_type} identifier: the HubSpot write-back updates known contacts only"
                )
                continue
            if not contact.isdigit():
                checkpoint.reject(record, f"{id_type} {contact!r} is not a HubSpot record id (digits only)")
                continue
            properties: dict[str, str] = {}
            problems: list[str] = []
            for name, path in self._paths.items():
                value = path.get(record)
                if value is MISSING or value is None:
                    continue
                try:
                    properties[name] = property_value(value)
                except ValueError as exc:
                    problems.append(f"{path.name} -> {name}: {exc}")
            if problems:
                checkpoint.reject(record, "cannot write to HubSpot: " + "; ".join(problems))
                continue
            if not properties:
                skipped += 1
                continue
            entry = by_id.get(contact)
            if entry is None:  # HubSpot refuses a batch naming one id twice: merge, later values win
                entry = by_id[contact] = _Input(contact, {})
            entry.properties.update(properties)
            entry.records.append(record)
        return list(by_id.values()), skipped

    # -- sending ----------------------------------------------------------------------------

    def _send(self, inputs: list[_Input], checkpoint: Checkpoint) -> None:
        response = self.client.post(
            BATCH_UPDATE, json={"inputs": [i.body() for i in inputs]}, idempotent=True, allow_status={400}
        )
        if response.status_code == 400:
            self._refused(inputs, response, checkpoint)
            return
        body = response_json(response, BatchResponse, connector=self.client.connector)
        done = {r.id for r in body.results}
        if not body.errors and all(i.id in done for i in inputs):
            self.updated += len(inputs)
            return
        by_id = {i.id: i for i in inputs}
        failed: dict[str, str] = {}
        unattributed: list[BatchError] = []
        for error in body.errors:
            named = [i for i in _error_ids(error) if i in by_id]
            for contact in named:
                failed.setdefault(contact, _describe(error, response.status_code))
            if not named:
                unattributed.append(error)
        for entry in inputs:
            if entry.id in failed:
                reason = f"HubSpot refused the update of contact {entry.id}: {failed[entry.id]}"
            elif entry.id in done:
                self.updated += 1
                continue
            elif unattributed:
                text = "; ".join(_describe(e, response.status_code) for e in unattributed)
                reason = f"HubSpot did not confirm the update of contact {entry.id}: {text}"
            else:
                reason = (
                    f"HubSpot did not confirm the update of contact {entry.id} "
                    f"(answer {response.status_code} without a result or an error for it)"
                )
            for record in entry.records:
                checkpoint.reject(record, reason[:_REASON_MAX])

    def _refused(self, inputs: list[_Input], response: httpx.Response, checkpoint: Checkpoint) -> None:
        """A 400 for the whole batch: find the inputs HubSpot refuses, write the others."""
        error = _error_body(response)
        text = _describe(error, 400)
        if "PROPERTY_DOESNT_EXIST" in (error.message or "") or error.category == "PROPERTY_DOESNT_EXIST":
            request = response.request
            raise ClientError(
                f"a property of the node's options.properties does not exist on HubSpot contacts: {text}; "
                "create it in HubSpot (Settings > Properties) or fix the mapping",
                connector=self.client.connector,
                method=request.method,
                url=error_url(request.url),
                status=400,
                response=response,
            )
        if len(inputs) == 1:
            reason = f"HubSpot refused the update of contact {inputs[0].id}: {text}"
            for record in inputs[0].records:
                checkpoint.reject(record, reason[:_REASON_MAX])
            return
        half = len(inputs) // 2
        self.log.info("HubSpot refused a batch of %d (%s); splitting it to find the refused input", len(inputs), text)
        self._send(inputs[:half], checkpoint)
        self._send(inputs[half:], checkpoint)


def _error_ids(error: BatchError) -> list[str]:
    ids: list[str] = []
    if error.id:
        ids.append(str(error.id))
    context = error.context if isinstance(error.context, dict) else {}
    for key in ("ids", "id"):
        value = context.get(key)
        if isinstance(value, (list, tuple)):
            ids.extend(str(v) for v in value)
        elif value is not None:
            ids.append(str(value))
    return ids


def _error_body(response: httpx.Response) -> BatchError:
    try:
        data = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return BatchError(message=f"400 {response.reason_phrase} (a body that is not JSON)")
    try:
        return BatchError.model_validate(data)
    except ValidationError:
        return BatchError(message=f"400 {response.reason_phrase}")


def _describe(error: BatchError, status: int) -> str:
    category = error.category or error.status or "error"
    message = (error.message or "").strip() or "no message"
    return f"{status} {category}: {message}"
