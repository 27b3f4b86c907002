"""A fake Mailchimp Marketing API (one audience) for respx, in the documented shapes.

- ``GET /3.0/lists/{list_id}/members``: ``count``, ``offset``, ``since_last_changed``
  (exclusive, "changed after"; ``inclusive_since=True`` makes it include its bound),
  ``before_last_changed``, ``sort_field=last_changed`` + ``sort_dir``, ``fields`` /
  ``exclude_fields``; answers ``{"members": [...], "list_id", "total_items", "_links"}``.
- ``POST /3.0/lists/{list_id}``: batch subscribe or update, at most 500 members;
  answers 200 with ``new_members``, ``updated_members``, ``errors`` (``email_address``,
  ``error``, ``error_code``, ``field``, ``field_message``), ``total_created``,
  ``total_updated``, ``error_count``.
- HTTP basic auth: any user name, the API key as the password; otherwise 401 in
  Mailchimp's problem-detail shape.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import httpx
import respx

KEY = "0123456789abcdef0123456789abcdef-us21"
LIST_ID = "a1b2c3d4e5"
BASE = "https://us21.api.mailchimp.com/3.0"


def member_id(email: str) -> str:
    return hashlib.md5(email.lower().encode()).hexdigest()


def stamp(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def problem(status: int, title: str, detail: str) -> httpx.Response:
    return httpx.Response(
        status,
        json={"type": "https://mailchimp.com/developer/marketing/docs/errors/", "title": title, "status": status,
              "detail": detail, "instance": "f1d5c0a2-0000-4000-8000-000000000000"},
        headers={"Content-Type": "application/problem+json; charset=utf-8"},
    )  # fmt: skip


class FakeMailchimp:
    def __init__(self, key: str = KEY, list_id: str = LIST_ID, *, inclusive_since: bool = False) -> None:
        self.key, self.list_id, self.inclusive_since = key, list_id, inclusive_since
        self.base = f"https://{key.rpartition('-')[2]}.api.mailchimp.com/3.0"
        self.members: dict[str, dict[str, Any]] = {}
        self.list_requests: list[httpx.Request] = []
        self.batches: list[dict[str, Any]] = []
        self.after_list: Any = None
        """Called with the fake after each members page is served (to change data mid-read)."""

    # -- data -----------------------------------------------------------------------------
    def add(
        self,
        email: str,
        last_changed: str,
        status: str = "subscribed",
        merge_fields: dict[str, Any] | None = None,
        tags: list[str] = (),  # type: ignore[assignment]
    ) -> str:
        mid = member_id(email)
        self.members[mid] = {
            "id": mid,
            "email_address": email,
            "unique_email_id": mid[:10],
            "contact_id": mid[::-1],
            "full_name": "",
            "web_id": 100 + len(self.members),
            "email_type": "html",
            "status": status,
            "merge_fields": {"FNAME": "", "LNAME": "", "ADDRESS": "", "PHONE": "", "BIRTHDAY": ""}
            | dict(merge_fields or {}),
            "stats": {"avg_open_rate": 0, "avg_click_rate": 0},
            "ip_signup": "",
            "timestamp_signup": "",
            "member_rating": 2,
            "last_changed": last_changed,
            "language": "",
            "vip": False,
            "tags_count": len(tags),
            "tags": [{"id": 1000 + i, "name": name} for i, name in enumerate(tags)],
            "list_id": self.list_id,
            "_links": [{"rel": "self", "href": f"{self.base}/lists/{self.list_id}/members/{mid}", "method": "GET"}],
        }
        return mid

    def change(self, email: str, last_changed: str, **fields: Any) -> str:
        mid = member_id(email)
        self.members[mid].update(fields, last_changed=last_changed)
        return mid

    # -- respx ----------------------------------------------------------------------------
    def install(self, router: respx.Router) -> FakeMailchimp:
        router.get(f"{self.base}/lists/{self.list_id}/members").mock(side_effect=self.list_members)
        router.post(f"{self.base}/lists/{self.list_id}").mock(side_effect=self.batch)
        return self

    def _authorized(self, request: httpx.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        _user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return password == self.key

    def list_members(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        self.list_requests.append(request)
        params = request.url.params
        if params.get("sort_field", "last_changed") != "last_changed" or params.get("sort_dir", "ASC") != "ASC":
            return problem(400, "Invalid Resource", "unexpected sort")
        rows = list(self.members.values())
        since = params.get("since_last_changed")
        before = params.get("before_last_changed")
        if since:
            bound = stamp(since)
            rows = [
                m
                for m in rows
                if stamp(m["last_changed"]) > bound or (self.inclusive_since and stamp(m["last_changed"]) == bound)
            ]
        if before:
            rows = [m for m in rows if stamp(m["last_changed"]) < stamp(before)]
        rows.sort(key=lambda m: (stamp(m["last_changed"]), m["web_id"]))
        offset, count = int(params.get("offset", 0)), int(params.get("count", 10))
        page = [json.loads(json.dumps(m)) for m in rows[offset : offset + count]]
        fields = params.get("fields")
        if fields:
            wanted = {f.split(".", 1)[1] for f in fields.split(",") if f.startswith("members.")}
            page = [{k: v for k, v in m.items() if k in wanted} for m in page]
        excluded = params.get("exclude_fields", "")
        if "members._links" in excluded.split(","):
            for m in page:
                m.pop("_links", None)
        body: dict[str, Any] = {"members": page, "list_id": self.list_id, "total_items": len(rows)}
        if not fields and "_links" not in excluded.split(","):
            body["_links"] = []
        if self.after_list is not None:
            self.after_list(self)
        return httpx.Response(200, json=body)

    def batch(self, request: httpx.Request) -> httpx.Response:
        if not self._authorized(request):
            return problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )
        body = json.loads(request.content)
        self.batches.append(body)
        members = body.get("members", [])
        if len(members) > 500:
            return problem(400, "Invalid Resource", "The resource submitted could not be validated.")
        created, updated, errors = [], [], []
        for member in members:
            email = member.get("email_address", "")
            if "@" not in email or " " in email.strip() or email.strip().endswith("@"):
                errors.append({
                    "email_address": email,
                    "error": f"{email} looks fake or invalid, please enter a real email address.",
                    "error_code": "ERROR_GENERIC",
                    "field": "email_address",
                    "field_message": "Invalid email",
                })  # fmt: skip
                continue
            mid = member_id(email)
            tags = list(member.get("tags", []))
            if mid in self.members:
                current = self.members[mid]
                if not body.get("update_existing"):
                    errors.append({"email_address": email, "error": f"{email} is already a list member.",
                                   "error_code": "ERROR_CONTACT_EXISTS", "field": "", "field_message": ""})  # fmt: skip
                    continue
                current["merge_fields"].update(member.get("merge_fields", {}))
                if "status" in member:
                    current["status"] = member["status"]
                names = (
                    tags
                    if body.get("sync_tags")
                    else [t["name"] for t in current["tags"]]
                    + [t for t in tags if t not in [x["name"] for x in current["tags"]]]
                )
                current["tags"] = [{"id": 2000 + i, "name": n} for i, n in enumerate(names)]
                updated.append(current)
            else:
                status = member.get("status") or member.get("status_if_new")
                if status is None:
                    errors.append({"email_address": email, "error": "status is required", "error_code": "ERROR_GENERIC",
                                   "field": "status", "field_message": "required"})  # fmt: skip
                    continue
                self.add(email, "2025-01-01T00:00:00+00:00", status=status,
                         merge_fields=member.get("merge_fields"), tags=tags)  # fmt: skip
                created.append(self.members[mid])
        return httpx.Response(200, json={
            "new_members": created, "updated_members": updated, "errors": errors,
            "total_created": len(created), "total_updated": len(updated), "error_count": len(errors),
            "_links": [],
        })  # fmt: skip
