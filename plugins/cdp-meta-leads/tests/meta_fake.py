"""A fake Graph API lead endpoint for respx, in the shapes Meta documents.

- ``GET https://graph.facebook.com/v21.0/{form_id}/leads?fields=...&limit=N[&after=C][&filtering=JSON]``
  with ``Authorization: Bearer TOKEN``; leads newest first.
- ``filtering=[{"field":"time_created","operator":"GREATER_THAN","value":UNIX}]``.
- ``{"data": [...], "paging": {"cursors": {"before": B, "after": A}, "next": URL}}``;
  the last page has cursors but no ``next``; an empty answer is ``{"data": []}``.
- Errors as ``{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}``
  with status 400 (an unknown token: code 190).
- ``GET /{lead_id}?fields=...`` (:class:`FakeLead`): one lead, what the webhook streams read.
- The ``leadgen`` webhook's POST body (:func:`event`), signed as Meta does (:func:`sign`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

import httpx
import respx

VERSION = "v21.0"
GRAPH = f"https://graph.facebook.com/{VERSION}"
TOKEN = "EAAtesttoken0123456789"
FORM_A = "1111111111"
FORM_B = "2222222222"
APP_SECRET = "0123456789abcdef0123456789abcdef"


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


class FakeLead:
    """``GET /{lead_id}?fields=...``: the lead with the fields asked for; Meta's code 100 for an unknown id."""

    def __init__(self, *leads: dict[str, Any]) -> None:
        self.leads = {item["id"]: item for item in leads}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request, lead_id: str) -> httpx.Response:
        self.requests.append(request)
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return graph_error(190, "Invalid OAuth access token - Cannot parse access token")
        found = self.leads.get(lead_id)
        if found is None:
            return graph_error(
                100,
                f"Unsupported get request. Object with ID '{lead_id}' does not exist, cannot be loaded due to "
                "missing permissions, or does not support this operation.",
                subcode=33,
            )
        wanted = set(request.url.params.get("fields", "id").split(","))
        return httpx.Response(200, json={k: v for k, v in found.items() if k in wanted})


def route(router: respx.Router, fake: Any) -> respx.Route:
    return router.route(method="GET", host="graph.facebook.com", path__regex=rf"^/{VERSION}/(?P<lead_id>\d+)$").mock(
        side_effect=fake
    )


def event(*leads: tuple[str, str]) -> dict[str, Any]:
    """A Page's leadgen POST, as Meta documents it (the dashboard's test sample has this shape)."""
    return {
        "object": "page",
        "entry": [
            {
                "id": "444444444444",
                "time": 1714557599,
                "changes": [
                    {
                        "field": "leadgen",
                        "value": {
                            "ad_id": "23850000000000001",
                            "form_id": form_id,
                            "leadgen_id": lead_id,
                            "created_time": 1714557598,
                            "page_id": "444444444444",
                            "adgroup_id": "23850000000000003",
                        },
                    }
                    for lead_id, form_id in leads
                ],
            }
        ],
    }


def raw(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
