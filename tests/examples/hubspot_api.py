"""A fake of HubSpot's contacts search, for respx: the REST source's HubSpot-like example.

``POST /crm/v3/objects/contacts/search`` with ``Authorization: Bearer TOKEN`` and a JSON
body: ``filterGroups`` (filters on a property: GTE, GT, LTE, LT, EQ; datetimes compared as
epoch milliseconds, the value a number or a string), one ascending or descending
``sorts`` entry, ``limit`` (at most 200: more is a 400, as HubSpot answers), ``after``
(a position in the result set), ``properties`` (the ones returned). Answers
``{"total", "results": [{"id", "properties", "createdAt", "updatedAt", "archived"}],
"paging": {"next": {"after"}}}``, without ``paging`` on the last page. Contacts that
share a sort value come in descending id order, so a client counting on id order fails.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

BASE = "https://api.hubapi.example"
URL = f"{BASE}/crm/v3/objects/contacts/search"
TOKEN = "pat-test-token"
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)

_OPS = {
    "GT": lambda a, b: a > b,
    "GTE": lambda a, b: a >= b,
    "LT": lambda a, b: a < b,
    "LTE": lambda a, b: a <= b,
    "EQ": lambda a, b: a == b,
}


def at(minutes: int) -> str:
    """A HubSpot datetime property value, ``minutes`` after T0."""
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def contact(n: int, minutes: int) -> dict[str, Any]:
    properties = {
        "email": f"person{n}@example.com",
        "firstname": f"Person{n}",
        "lastname": "Example",
        "lastmodifieddate": at(minutes),
        "hs_object_id": str(n),
    }
    return {"id": str(n), "properties": properties, "createdAt": at(0), "updatedAt": at(minutes), "archived": False}


def ms(value: Any) -> int:
    text = str(value)
    return int(text) if text.isdigit() else int(datetime.fromisoformat(text).timestamp() * 1000)


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    return ms(value) if "date" in name else int(value) if name == "hs_object_id" else value


class FakeHubSpotSearch:
    """The endpoint over a list of contacts that tests change between calls."""

    def __init__(self, contacts: list[dict[str, Any]]) -> None:
        self.contacts = contacts
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return httpx.Response(401, json={"status": "error", "category": "INVALID_AUTHENTICATION",
                                             "message": "Authentication credentials not found."})  # fmt: skip
        body = json.loads(request.content)
        self.bodies.append(body)
        limit = int(body.get("limit", 10))
        if limit > 200:
            return httpx.Response(400, json={"status": "error", "category": "VALIDATION_ERROR",
                                             "message": "limit must be at most 200"})  # fmt: skip
        rows = [c for c in self.contacts if self._matches(c, body.get("filterGroups") or [])]
        (sort,) = body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        name = sort["propertyName"]
        rows.sort(key=lambda c: -int(c["id"]))  # ties: descending ids (the stable sort keeps it)
        rows.sort(key=lambda c: _value(name, c["properties"].get(name)), reverse=sort.get("direction") == "DESCENDING")
        after = int(body.get("after") or 0)
        wanted = body.get("properties")
        results = [
            {**c, "properties": {k: c["properties"].get(k) for k in wanted} if wanted else c["properties"]}
            for c in rows[after : after + limit]
        ]
        answer: dict[str, Any] = {"total": len(rows), "results": results}
        if after + limit < len(rows):
            answer["paging"] = {"next": {"after": str(after + limit), "link": f"{URL}?after={after + limit}"}}
        return httpx.Response(200, json=answer)

    @staticmethod
    def _matches(contact: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
        def holds(f: dict[str, Any]) -> bool:
            actual = _value(f["propertyName"], contact["properties"].get(f["propertyName"]))
            return actual is not None and _OPS[f["operator"]](actual, _value(f["propertyName"], f["value"]))

        return not groups or any(all(holds(f) for f in group.get("filters", [])) for group in groups)

    def modify(self, contact_id: str, minutes: int, **properties: Any) -> None:
        """An edit in HubSpot: new values and a newer lastmodifieddate (it moves to the end of the ordering)."""
        for c in self.contacts:
            if c["id"] == contact_id:
                c["properties"].update(properties, lastmodifieddate=at(minutes))
                c["updatedAt"] = at(minutes)
                return
        raise KeyError(contact_id)
