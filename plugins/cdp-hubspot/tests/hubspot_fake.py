"""A fake HubSpot CRM v3 API for respx, in the shapes HubSpot documents.

* ``POST /crm/v3/objects/{contacts|companies}/search``: ``filterGroups`` (OR of
  AND-ed filters; GT, GTE, LT, LTE, EQ, NEQ on datetimes and numbers), one sort,
  ``limit`` up to 200, ``after`` as an offset; ``after`` at or past 10,000 is a 400
  (HubSpot's cap). Answers ``{"total", "results", "paging": {"next": {"after"}}}``
  with no ``paging`` on the last page. Records that share a sort value come in
  *descending* id order, so a client that counts on id order fails.
* ``POST /crm/v3/objects/contacts/batch/update``: up to 100 inputs; unknown ids
  give 207 with ``errors[{"category": "OBJECT_NOT_FOUND", "context": {"ids": [...]}}]``;
  a value outside an enumeration's options, or an unknown property, is a 400 for
  the whole batch, as HubSpot does.
* ``GET /crm/v3/objects/contacts?archived=true``: the archived contacts by id, ``limit`` up to 100,
  ``after`` the next id (``paging.next.after``, no ``paging`` on the last page); each result with
  ``archived: true``, ``archivedAt`` and ``updatedAt``; ``install_archived`` adds the route.
* A request without ``Authorization: Bearer <token>`` gets HubSpot's 401.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx

BASE = "https://api.hubapi.com"
TOKEN = "pat-eu1-test-token"
SEARCH_CAP = 10_000
T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def at(minutes: float) -> str:
    """A HubSpot datetime property value, ``minutes`` after T0."""
    return iso(T0 + timedelta(minutes=minutes))


def ms(value: str) -> int:
    text = str(value)
    if text.isdigit():
        return int(text)
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def contact(n: int, minutes: float, **props: Any) -> dict[str, Any]:
    properties = {
        "email": f"person{n}@example.com",
        "firstname": f"Person{n}",
        "lastname": "Example",
        "phone": None,
        "createdate": at(0),
        "lastmodifieddate": at(minutes),
        "hs_object_id": str(n),
    }
    properties.update(props)
    return {
        "id": str(n),
        "properties": properties,
        "createdAt": at(0),
        "updatedAt": properties["lastmodifieddate"],
        "archived": False,
    }


def company(n: int, minutes: float, **props: Any) -> dict[str, Any]:
    properties = {
        "name": f"Company {n}",
        "domain": f"company{n}.example",
        "phone": "+49 30 1234567",
        "createdate": at(0),
        "hs_lastmodifieddate": at(minutes),
        "hs_object_id": str(n),
    }
    properties.update(props)
    return {
        "id": str(n),
        "properties": properties,
        "createdAt": at(0),
        "updatedAt": properties["hs_lastmodifieddate"],
        "archived": False,
    }


def unauthorized() -> httpx.Response:
    return httpx.Response(
        401,
        json={
            "status": "error",
            "message": "Authentication credentials not found. This API supports OAuth 2.0 authentication.",
            "correlationId": "4f5e0d2a-0000-0000-0000-000000000000",
            "category": "INVALID_AUTHENTICATION",
        },
    )


def bad_request(message: str, category: str = "VALIDATION_ERROR") -> httpx.Response:
    return httpx.Response(
        400,
        json={"status": "error", "message": message, "correlationId": "c0ffee00-0000", "category": category},
    )


def _value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "hs_object_id":
        return int(value)
    if "date" in name:
        return ms(value)
    return value


_OPS = {
    "GT": lambda a, b: a is not None and a > b,
    "GTE": lambda a, b: a is not None and a >= b,
    "LT": lambda a, b: a is not None and a < b,
    "LTE": lambda a, b: a is not None and a <= b,
    "EQ": lambda a, b: a == b,
    "NEQ": lambda a, b: a != b,
}


@dataclass
class FakeHubSpot:
    """The state of one portal, and every request it answered."""

    objects: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"contacts": [], "companies": []})
    searches: list[dict[str, Any]] = field(default_factory=list)
    batches: list[list[dict[str, Any]]] = field(default_factory=list)
    updated: dict[str, dict[str, str]] = field(default_factory=dict)
    """contact id -> the properties written to it."""
    known_properties: set[str] = field(default_factory=lambda: {"nps_score", "nps_category", "firstname", "city"})
    options: dict[str, set[str]] = field(default_factory=lambda: {"nps_category": {"promoter", "passive", "detractor"}})
    on_search: Any = None
    """Called with the request before each search is answered (to change the data mid-read)."""
    archived: list[dict[str, Any]] = field(default_factory=list)
    """Archived contacts (``archive()``), listed by ``GET /crm/v3/objects/contacts?archived=true``."""
    lists: list[dict[str, str]] = field(default_factory=list)
    """The query of every list request answered."""
    on_list: Any = None
    """Called with the request before each list request is answered (to archive a contact mid-read)."""
    now: datetime | None = None
    """When set, the list answers carry it as their ``Date`` header (the server's clock)."""

    def install(self, router: Any) -> FakeHubSpot:
        # One route per URL: a test that mocks the same URL again replaces the route (respx).
        for object_type in self.objects:
            router.post(f"{BASE}/crm/v3/objects/{object_type}/search").mock(side_effect=self.search)
        router.post(f"{BASE}/crm/v3/objects/contacts/batch/update").mock(side_effect=self.batch_update)
        return self

    # -- search -------------------------------------------------------------------------------
    def search(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return unauthorized()
        if self.on_search is not None:
            self.on_search(request)
        object_type = request.url.path.split("/")[4]
        body = json.loads(request.content)
        self.searches.append(body)
        limit = int(body.get("limit", 10))
        if limit > 200:
            return bad_request("limit must be at most 200")
        after = int(body.get("after") or 0)
        if after >= SEARCH_CAP:
            return bad_request(f"Paging past {SEARCH_CAP} results is not supported; refine the search (after={after})")
        rows = [o for o in self.objects[object_type] if self._matches(o, body.get("filterGroups") or [])]
        sorts = body.get("sorts") or [{"propertyName": "hs_object_id", "direction": "ASCENDING"}]
        if len(sorts) > 1:
            return bad_request("only one sort is supported")
        name = sorts[0]["propertyName"]
        reverse = sorts[0].get("direction", "ASCENDING") == "DESCENDING"
        rows.sort(key=lambda o: -int(o["properties"]["hs_object_id"]))  # ties: descending ids (stable sort keeps it)
        rows.sort(key=lambda o: _value(name, o["properties"].get(name)), reverse=reverse)
        window = rows[after : after + limit]
        wanted = body.get("properties")
        results = [self._shape(o, wanted) for o in window]
        answer: dict[str, Any] = {"total": len(rows), "results": results}
        if after + limit < len(rows):
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return httpx.Response(200, json=answer)

    @staticmethod
    def _matches(obj: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
        if not groups:
            return True
        for group in groups:
            ok = True
            for f in group.get("filters", []):
                name = f["propertyName"]
                actual = _value(name, obj["properties"].get(name))
                if not _OPS[f["operator"]](actual, _value(name, f["value"])):
                    ok = False
                    break
            if ok:
                return True
        return False

    @staticmethod
    def _shape(obj: dict[str, Any], wanted: list[str] | None) -> dict[str, Any]:
        out = dict(obj)
        if wanted is not None:
            out["properties"] = {k: obj["properties"].get(k) for k in wanted}
        return out

    def modify(self, object_type: str, object_id: str, minutes: float, **props: Any) -> None:
        """An edit in HubSpot: new values and a new last-modified time."""
        time_property = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        for obj in self.objects[object_type]:
            if obj["id"] == object_id:
                obj["properties"].update(props, **{time_property: at(minutes)})
                obj["updatedAt"] = at(minutes)
                return
        raise KeyError(object_id)

    # -- batch update -------------------------------------------------------------------------
    def batch_update(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return unauthorized()
        inputs = json.loads(request.content)["inputs"]
        self.batches.append(inputs)
        if len(inputs) > 100:
            return bad_request("Batch input size must be at most 100")
        ids = [i["id"] for i in inputs]
        if len(set(ids)) != len(ids):
            return bad_request("Duplicate IDs found in batch input")
        for item in inputs:
            for name, value in item["properties"].items():
                if not isinstance(value, str):
                    return bad_request(f"Property values must be strings, got {type(value).__name__}")
                if name not in self.known_properties:
                    problem = {"isValid": False, "message": f'Property "{name}" does not exist',
                               "error": "PROPERTY_DOESNT_EXIST", "name": name}  # fmt: skip
                    return bad_request(f"Property values were not valid: {json.dumps([problem])}")
                allowed = self.options.get(name)
                if allowed is not None and value not in allowed:
                    problem = {"isValid": False, "message": f"{value} was not one of the allowed options",
                               "error": "INVALID_OPTION", "name": name}  # fmt: skip
                    return bad_request(f"Property values were not valid: {json.dumps([problem])}")
        known = {o["id"] for o in self.objects["contacts"]}
        missing = [i for i in ids if i not in known]
        results = []
        now = iso(T0 + timedelta(days=30))
        for item in inputs:
            if item["id"] in known:
                self.updated.setdefault(item["id"], {}).update(item["properties"])
                results.append({"id": item["id"], "properties": item["properties"], "createdAt": at(0),
                                "updatedAt": now, "archived": False})  # fmt: skip
        body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": now, "startedAt": now,
                                "completedAt": now}  # fmt: skip
        if not missing:
            return httpx.Response(200, json=body)
        body["numErrors"] = 1
        body["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted or not exist. Check that ids are valid.",
                "context": {"ids": missing},
                "links": {},
            }
        ]
        return httpx.Response(207, json=body)

    # -- archived contacts: the list endpoint -------------------------------------------------
    def install_archived(self, router: Any) -> FakeHubSpot:
        router.get(f"{BASE}/crm/v3/objects/contacts").mock(side_effect=self.list_contacts)
        return self

    def archive(self, object_id: str, minutes: float, *, archived_at: bool = True) -> None:
        """A contact deleted in HubSpot: out of the search, into the archived list (``archivedAt`` unless not)."""
        live = [o for o in self.objects["contacts"] if o["id"] == object_id]
        obj = dict(live[0]) if live else contact(int(object_id), minutes)
        self.objects["contacts"] = [o for o in self.objects["contacts"] if o["id"] != object_id]
        self.archived = [o for o in self.archived if o["id"] != object_id]
        obj.update(archived=True, updatedAt=at(minutes))
        if archived_at:
            obj["archivedAt"] = at(minutes)
        else:
            obj.pop("archivedAt", None)
        self.archived.append(obj)

    def restore(self, object_id: str, minutes: float) -> None:
        """A restore (within 90 days): back in the search with a new modification time."""
        [obj] = [o for o in self.archived if o["id"] == object_id]
        self.archived.remove(obj)
        obj = {k: v for k, v in obj.items() if k != "archivedAt"}
        obj.update(archived=False)
        self.objects["contacts"].append(obj)
        self.modify("contacts", object_id, minutes)

    def list_contacts(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return unauthorized()
        if self.on_list is not None:
            self.on_list(request)
        query = dict(request.url.params)
        self.lists.append(query)
        if query.get("archived") != "true":
            return bad_request("this fake lists archived contacts only")
        limit = int(query.get("limit", 10))
        if limit > 100:
            return bad_request("limit must be at most 100")
        after = int(query.get("after") or 0)

        def number(obj: dict[str, Any]) -> int:  # hs_object_id: a test may take the id out of an answer
            return int(obj["properties"]["hs_object_id"])

        rows = sorted((o for o in self.archived if number(o) >= after), key=number)
        window = rows[:limit]
        answer: dict[str, Any] = {"results": [dict(o, properties=dict(o["properties"])) for o in window]}
        if len(rows) > limit:
            answer["paging"] = {"next": {"after": str(number(window[-1]) + 1), "link": "..."}}
        headers = {"Date": format_datetime(self.now, usegmt=True)} if self.now is not None else {}
        return httpx.Response(200, json=answer, headers=headers)
