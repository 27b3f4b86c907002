"""A fake of a Pipedrive-like persons API, for respx: the REST source's and the hand-written source's tests.

``GET /v1/persons?start=&limit=&sort=update_time ASC&updated_since=&api_token=``:
persons updated at or after ``updated_since`` (inclusive), oldest change first,
``start``/``limit`` paging (the limit capped at ``max_limit``, as the real API caps it),
``additional_data.pagination.more_items_in_collection`` and ``next_start``; ``data`` is
null on an empty page. Each person has ``email`` and ``phone`` as lists of
``{value, primary}`` objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

BASE = "https://api.pipedrive.example"
URL = f"{BASE}/v1/persons"
TOKEN = "pd-test-token"
FORMAT = "%Y-%m-%d %H:%M:%S"


def person(n: int, *, emails: int = 1, phones: int = 1, day: int | None = None) -> dict[str, Any]:
    return {
        "id": n,
        "name": f"Person {n}",
        "org_name": f"Org {n % 2}",
        "active_flag": True,
        "email": [{"value": f"p{n}.{i}@example.com", "primary": i == 0} for i in range(emails)],
        "phone": [{"value": f"+4930{n}{i}0000", "primary": i == 0} for i in range(phones)],
        "update_time": f"2024-05-{day or n:02d} 10:00:00",
    }


def persons() -> list[dict[str, Any]]:
    """Five persons (two with two emails, one with two phones) and one malformed item (no id)."""
    rows = [person(1, emails=2), person(2, phones=2), person(3), person(4, emails=2), person(5)]
    rows.insert(4, {"name": "no id", "email": [], "phone": [], "update_time": "2024-05-04 12:00:00"})
    return rows


class FakePipedrive:
    """The endpoint over a list of persons that tests change between calls."""

    def __init__(self, rows: list[dict[str, Any]], *, max_limit: int = 2) -> None:
        self.rows = rows
        self.max_limit = max_limit
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        params = request.url.params
        if params.get("api_token") != TOKEN:
            return httpx.Response(401, json={"success": False, "error": "unauthorized"})
        since = params.get("updated_since")
        rows = [r for r in self.rows if since is None or _at(r) >= datetime.strptime(since, FORMAT)]
        if params.get("sort") == "update_time ASC":
            rows.sort(key=lambda r: (_at(r), str(r.get("id"))))
        start, limit = int(params.get("start", 0)), min(int(params.get("limit", 100)), self.max_limit)
        page, more = rows[start : start + limit], start + limit < len(rows)
        pagination: dict[str, Any] = {"start": start, "limit": limit, "more_items_in_collection": more}
        if more:
            pagination["next_start"] = start + limit
        return httpx.Response(200, json={"success": True, "data": page or None, "additional_data": {"pagination": pagination}})

    def touch(self, person_id: int, when: str) -> None:
        """Update a person (its update_time), which moves it to the end of the ordering."""
        for row in self.rows:
            if row.get("id") == person_id:
                row["update_time"] = when


def _at(row: dict[str, Any]) -> datetime:
    return datetime.strptime(row["update_time"], FORMAT)
