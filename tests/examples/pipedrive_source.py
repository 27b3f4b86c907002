"""A hand-written source for the Pipedrive-like persons API, with the kernel's helpers (docs/writing-plugins.md).

The same API as the declarative example of docs/rest-source.md; a test keeps it under 80 lines of code.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, Field, SecretStr

from cdp_core import ConnectorContext, Incremental, Page, PluginConfig, Record, Register, Rejected, Source, Stream
from cdp_core import hookimpl
from cdp_core.http import ApiKeyQuery, RateLimit, check_base_url, client_for, offset_pages
from cdp_core.incremental_pages import Position, incremental_pages
from cdp_core.isolation import reject

FORMAT = "%Y-%m-%d %H:%M:%S"


class PipedriveConfig(PluginConfig):
    base_url: Annotated[str, AfterValidator(check_base_url)] = "https://api.pipedrive.example"
    api_token: SecretStr = Field(description='as "${PIPEDRIVE_API_TOKEN}"')
    page_size: int = Field(100, ge=1, le=500)


class Persons(Stream):
    name, primary_key, cursor_field = "persons", ("id",), "update_time"
    identifier_types = ("pipedrive_person_id", "email", "phone")

    def __init__(self, source: PipedriveSource) -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        def fetch(since: Any, start: Position) -> Iterator[tuple[list[Any], Position]]:
            params = {"sort": "update_time ASC", **({"updated_since": since.strftime(FORMAT)} if since else {})}
            for page in offset_pages(
                self.source.client, "/v1/persons", items="data", limit=self.source.config.page_size,
                offset=int(start or 0), offset_param="start", params=params,
                has_more="additional_data.pagination.more_items_in_collection",
                next_offset="additional_data.pagination.next_start",
            ):  # fmt: skip
                yield page.data.get("data") or [], page.next_cursor

        for batch in incremental_pages(Incremental("update_time"), cursor, fetch, ascending=True):
            built = [self.record(item) for item in batch.items]
            rejects = [reject(why, item) for item, why in batch.bad] + [r for r in built if isinstance(r, Rejected)]
            yield Page([r for r in built if isinstance(r, Record)], batch.cursor, rejects)

    def record(self, person: Any) -> Record | Rejected:
        if not isinstance(person, dict) or person.get("id") is None:
            return reject("a person without an id", person)
        emails = [e["value"] for e in person.get("email") or [] if e.get("value")]
        phones = [p["value"] for p in person.get("phone") or [] if p.get("value")]
        identifiers: dict[str, str | list[str]] = {"pipedrive_person_id": str(person["id"])}
        identifiers.update({k: v for k, v in (("email", emails), ("phone", phones)) if v})
        return Record(
            stream=f"{self.source.context.name}.persons", key=str(person["id"]), data=person,
            identifiers=identifiers, occurred_at=person["update_time"].replace(" ", "T") + "Z",
        )  # fmt: skip


class PipedriveSource(Source):
    config_model = PipedriveConfig
    config: PipedriveConfig

    def __init__(self, config: PipedriveConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        auth = ApiKeyQuery("api_token", config.api_token)
        self.client = client_for(context, base_url=config.base_url, auth=auth, rate_limit=RateLimit(10, per=2))

    def streams(self) -> Sequence[Stream]:
        return [Persons(self)]

    def close(self) -> None:
        self.client.close()


@hookimpl
def cdp_register_sources(register: Register) -> None:
    register("pipedrive_handwritten", PipedriveSource)
