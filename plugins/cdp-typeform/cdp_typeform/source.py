"""The source: stream ``responses``, one ``nps_response`` record per answered form.

**Incremental by the ``after`` token.** The first request of a first read asks for
``sort=submitted_at,asc``; every later request asks for the responses ``after`` the
last token read, which Typeform returns in the order it processed them (and
``after`` excludes its token). The cursor after each page is ``{"after": TOKEN}``,
the page's last token: a resumed or later run asks for what came after it, so it
never repeats a response, and a response Typeform processed late (submitted earlier,
stored later) still comes after the token, where a ``since`` filter on
``submitted_at`` would have missed it.

**Records.** key = the response token; data = ``score`` (the number answered to
``score_field``), ``comment``, ``survey``, ``channel``, ``form_id``;
identifiers = ``email`` (hidden field or email answer; anonymous answers have none and
stay unlinked in the store); occurred_at = ``submitted_at``. A response without a
whole-number score from 0 to 10 in ``score_field`` is quarantined with the reason
(``Page.rejects``): the cursor still moves past it. So is a response that does not match
the API's shape (no token, a date that is not one): the page goes on; only a malformed
page (no ``items`` list) fails the read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from cdp_core import ConnectorContext, Incremental, Page, Record, RecordKind, Rejected, Source, Stream
from cdp_core.http import HttpClient, response_json
from cdp_core.isolation import split_items

from cdp_typeform.api import Answer, ResponseItem, ResponsesPage, TypeformConfig, make_client
from cdp_typeform.mapping import response_record
from cdp_typeform.webhooks import WebhookResponses


class ResponsesStream(Stream):
    """The form's responses as ``nps_response`` records (see the module's docs)."""

    name = "responses"
    kind = RecordKind.nps_response
    primary_key = ("token",)
    cursor_field = "token"  # incremental by the `after` token (processing order), not by a timestamp
    identifier_types = ("email",)

    def __init__(self, source: TypeformSource) -> None:
        self.source = source

    def read(self, cursor: Any) -> Iterator[Page]:
        config: TypeformConfig = self.source.config
        if cursor is not None and not (isinstance(cursor, dict) and isinstance(cursor.get("after"), (str, type(None)))):
            raise ValueError(f'typeform cursor: expected {{"after": TOKEN}}, got {cursor!r}')
        # The last token read; dedupes tokens inside one read only (`after` is exclusive across reads).
        tokens = Incremental(self.cursor_field, type="token", cursor_key="after", seen_as=None).load(
            cursor or None, what="typeform cursor"
        )
        path = f"/forms/{config.form_id}/responses"
        while True:
            params: dict[str, Any] = {"page_size": config.page_size}
            if tokens.last_value:
                params["after"] = tokens.last_value
            else:
                params["sort"] = "submitted_at,asc"  # `after` and `sort` exclude each other
            response = self.source.client.get(path, params=params)
            body: ResponsesPage = response_json(response, ResponsesPage, connector=self.source.client.connector)
            items, rejects = split_items(
                body.items, ResponseItem, where=f"GET {path}", key_field="token", prefix="typeform: "
            )
            records: list[Record] = []
            more = bool(body.items) and (len(body.items) >= config.page_size or body.page_count > 1)
            if more and not items:
                raise ValueError(
                    f"typeform: GET {path}: no response of a full page could be read (all quarantined): cannot page on"
                )
            for item, raw in items:
                if not tokens.admit(item.token, item.token):
                    continue
                record, reason = self._record(item)
                if record is not None:
                    records.append(record)
                else:
                    rejects.append(Rejected(reason=f"typeform: {reason}", raw=raw, key=item.token))
            yield Page(records, tokens.to_cursor(), rejects)
            if not more:
                return

    def _record(self, item: ResponseItem) -> tuple[Record | None, str]:
        return response_record(item, self.source.config, f"{self.source.context.name}.{self.name}")


class TypeformSource(Source):
    """One Typeform form as a source of NPS answers: stream ``responses``."""

    config_model = TypeformConfig
    config: TypeformConfig

    def __init__(self, config: TypeformConfig, context: ConnectorContext) -> None:
        super().__init__(config, context)
        self.client: HttpClient = make_client(config, context)  # no I/O until the first request

    def streams(self) -> Sequence[Stream]:
        return [ResponsesStream(self), WebhookResponses(self)]

    def close(self) -> None:
        self.client.close()


__all__ = ["Answer", "ResponsesStream", "TypeformSource"]
