"""A fake Graph API lead endpoint for respx, in the shapes Meta documents.

- ``GET https://graph.facebook.com/v21.0/{form_id}/leads?fields=...&limit=N[&after=C][&filtering=JSON]``
  with ``Authorization: Bearer TOKEN``; leads newest first.
- ``filtering=[{"field":"time_created","operator":"GREATER_THAN","value":UNIX}]``.
- ``{"data": [...], "paging": {"cursors": {"before": B, "after": A}, "next": URL}}``;
  the last page has cursors but no ``next``; an empty answer is ``{"data": []}``.
- Errors as ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``
  with status 400 (an unknown token: code 190).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx

VERSION = "v21.0"
GRAPH = f"https://graph.facebook.com/{VERSION}"
TOKEN = "EAAtesttoken0123456789"
FORM_A = "1111111111"
FORM_B = "2222222222"


def leads_url(form_id: str) -> str:
    return f"{GRAPH}/{form_id}/leads"


def _cursor(lead_id: str) -> str:
    return base64.b64encode(json.dumps({"id": lead_id}).encode()).decode()


def _uncursor(cursor: str) -> str:
    return str(json.loads(base64.b64decode(cursor))["id"])


def _created(lead: dict[str, Any]) -> int:
    return int(datetime.fromisoformat(lead["created_time"]).timestamp())


def graph_error(
    code: int, message: str, *, status: int = 400, subcode: int | None = None, **headers: str
) -> httpx.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf123"}
    if subcode is not None:
        error["error_subcode"] = subcode
    if code in (4, 17, 32, 613):
        error["is_transient"] = True
    return httpx.Response(status, json={"error": error}, headers=headers)


class FakeLeads:
    """``/{form_id}/leads`` of one form over a mutable list of leads."""

    def __init__(self, form_id: str, leads: list[dict[str, Any]]) -> None:
        self.form_id = form_id
        self.leads = leads
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        params = request.url.params
        limit = int(params.get("limit", 25))
        rows = sorted(self.leads, key=lambda lead: (_created(lead), lead["id"]), reverse=True)
        if "filtering" in params:
            for rule in json.loads(params["filtering"]):
                assert rule["field"] == "time_created" and rule["operator"] == "GREATER_THAN", rule
                rows = [lead for lead in rows if _created(lead) > int(rule["value"])]
        if "after" in params:
            last = _uncursor(params["after"])
            ids = [lead["id"] for lead in rows]
            rows = rows[ids.index(last) + 1 :] if last in ids else []
        wanted = set(params.get("fields", "id").split(","))
        page = [{k: v for k, v in lead.items() if k in wanted} for lead in rows[:limit]]
        body: dict[str, Any] = {"data": page}
        if page:
            body["paging"] = {"cursors": {"before": _cursor(page[0]["id"]), "after": _cursor(page[-1]["id"])}}
            if len(rows) > limit:
                body["paging"]["next"] = (
                    f"{leads_url(self.form_id)}?access_token={TOKEN}&fields={params.get('fields')}"
                    f"&limit={limit}&after={_cursor(page[-1]['id'])}"
                )
        return httpx.Response(200, json=body)

    def params_of(self, n: int) -> dict[str, str]:
        return dict(self.requests[n].url.params)


def lead(n: int, created: str, *, form: str = FORM_A, **fields: Any) -> dict[str, Any]:
    """A lead as ``/{form_id}/leads`` returns it; ``fields`` replace or add answers (None removes one)."""
    answers: dict[str, Any] = {
        "email": [f"lead{n}@example.com"],
        "full_name": [f"Lead Number{n}"],
        "phone_number": [f"+49171000{n:04d}"],
        "city": ["Hamburg"],
        "which_product_are_you_interested_in?": ["solar_panels"],
    }
    for name, value in fields.items():
        if value is None:
            answers.pop(name, None)
        else:
            answers[name] = value if isinstance(value, list) else [value]
    return {
        "id": f"{form[-1]}{n:05d}",
        "created_time": created,
        "ad_id": "23850000000000001",
        "ad_name": "Spring campaign ad",
        "campaign_id": "23850000000000002",
        "form_id": form,
        "is_organic": False,
        "platform": "fb",
        "field_data": [{"name": name, "values": values} for name, values in answers.items()],
    }
