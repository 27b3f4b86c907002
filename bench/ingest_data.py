#!/usr/bin/env python3
"""Seeded, deterministic test data for bench/ingest.py: exports of one customer base from six tools.

    python bench/ingest_data.py --persons 100000 --out bench/out      # also run by bench/ingest.py

Writes, into ``OUT/ingest-P<persons>-E<events>-O<orders>-N<nps>-S<seed>/``:

- ``crm_contacts.csv``        HubSpot-like contacts      (identifiers: hubspot_contact_id, email, phone)
- ``shop_customers.jsonl``    Shopify-like customers     (shopify_customer_id, email, phone)
- ``newsletter_members.csv``  Mailchimp-like members     (mailchimp_member_id, email, sometimes phone)
- ``events.jsonl``            kind event, ``event`` name (email, shopify_customer_id or mailchimp_member_id; some anonymous)
- ``shop_orders.jsonl``       kind order                 (customer.id, email, customer.phone; guests: email only)
- ``nps_answers.csv``         kind nps_response, 0-10    (email; some anonymous)

The three person files together hold exactly ``--persons`` records. One person appears in one, two or
three of them (mean about 1.5), and never looks quite the same twice:

- emails in case and whitespace variants (``Anna.Mueller7@Example.de``, ``" anna.mueller7@example.de "``),
  and about 12 % of people use a second (work) address in one source;
- mobile numbers in the formats people type: ``0171 1234567``, ``+49 171 1234567``, ``+49 (0)171-1234567``,
  ``0049171...``, ``+49171...``, ``0171/1234567``; 0.3 % are not phone numbers at all;
- families (about 4 % of people, 2 to 7 members) share one family email and one landline, so with the
  demo's limits (one hubspot/shopify id, five emails, three phones per profile) records merge across
  sources and the limits are hit for real;
- blocked test values (``test@test.com``, ``noreply@...``, ``+49 171 0000000``) on about 0.6 % of records:
  they must never link anyone.

Everything else is proportional to ``--persons`` by default (events = persons, orders = persons / 5,
NPS answers = persons / 10). The folder is complete when its ``manifest.json`` exists; it is reused
while the counts and the seed stay the same.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

FIRST = [
    "Anna",
    "Jürgen",
    "Zoë",
    "Björn",
    "Dörte",
    "Lukas",
    "Sophie",
    "Mehmet",
    "Özlem",
    "Paul",
    "Käthe",
    "Jonas",
    "Marie",
    "Sören",
    "Ayşe",
    "Felix",
    "Lena",
    "Günter",
    "Chloé",
    "Max",
    "Ursula",
    "Thomas",
    "Claudia",
    "Lisa",
    "Michael",
    "Sabine",
    "Emre",
    "Katarzyna",
    "Niklas",
    "Hannah",
]
LAST = [
    "Müller",
    "Schmidt",
    "Weiß",
    "Schäfer",
    "Krüger",
    "Köhler",
    "Yılmaz",
    "Wagner",
    "Becker",
    "Groß",
    "Hoffmann",
    "Meyer",
    "Jäger",
    "Böhm",
    "Fischer",
    "Nowak",
    "Braun",
    "König",
    "Lange",
    "Koch",
    "Kühn",
    "Voigt",
    "Kaiser",
    "Meier",
    "Schulz",
    "Wolf",
    "Neumann",
    "Schwarz",
    "Zimmermann",
    "Hartmann",
]
CITIES = [
    ("Berlin", "10115", "30"),
    ("Hamburg", "20095", "40"),
    ("München", "80331", "89"),
    ("Köln", "50667", "221"),
    ("Frankfurt am Main", "60311", "69"),
    ("Leipzig", "04109", "341"),
    ("Düsseldorf", "40213", "211"),
    ("Nürnberg", "90402", "911"),
    ("Stuttgart", "70173", "711"),
    ("Dresden", "01067", "351"),
]
MOBILE = ["151", "152", "157", "160", "170", "171", "172", "173", "175", "176", "177", "178", "179"]
MAIL_DOMAINS = ["example.com", "example.de", "example.org", "mail.example", "post.example", "web.example"]
WORK_DOMAINS = ["firma.example", "agentur.example", "praxis.example", "kanzlei.example"]
STAGES = ["subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer"]
TAGS = ["Abo", "Gewinnspiel 2024", "Newsletter", "Rabatt", "Espresso", "Filter", "Events"]
PRODUCTS = [
    ("ESP-0250", "Espresso Bohnen Milano 250 g", "8.50"),
    ("FIL-0500", "Filterkaffee Hausmischung 500 g", "12.50"),
    ("ABO-MON", "Kaffee-Abo monatlich", "21.00"),
    ("ACC-MUEHLE", "Handmühle Edelstahl", "89.00"),
    ("ACC-SCHAUM", "Milchaufschäumer", "39.00"),
    ("ESP-1000", "Espresso Bohnen Napoli 1 kg", "27.90"),
]
EMAIL_EVENTS = ["email_opened", "email_clicked", "email_bounced"]
SHOP_EVENTS = ["product_viewed", "added_to_cart", "checkout_started"]
WEB_EVENTS = ["page_viewed", "lead_form_sent", "search"]
COMMENTS = [
    "",
    "",
    "",
    "Guter Kaffee, aber etwas teuer.",
    "Schnelle Lieferung!",
    "Die Bohnen waren zu stark geröstet.",
    "Alles bestens.",
    "Kundenservice sehr freundlich",
    "Verpackung könnte nachhaltiger sein",
    "Top 👍",
]
BLOCKED_EMAILS = ["test@test.com", "noreply@shop.example", "no-reply@example.com", "TEST@TEST.COM "]
BLOCKED_PHONE = "+49 171 0000000"

# Which of the three sources a person is in (crm, shop, newsletter): weights; mean 1.48 sources per person.
MEMBERSHIP = [
    ((1, 0, 0), 25),
    ((0, 1, 0), 20),
    ((0, 0, 1), 15),
    ((1, 1, 0), 12),
    ((1, 0, 1), 10),
    ((0, 1, 1), 10),
    ((1, 1, 1), 8),
]
START = datetime(2023, 1, 1, tzinfo=UTC)


def fold(text: str) -> str:
    table = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ë": "e", "é": "e", "ı": "i", "ş": "s"}
    return "".join(table.get(ch, ch) for ch in text.lower())


def folder_for(out: Path, persons: int, events: int, orders: int, nps: int, seed: int) -> Path:
    return out / f"ingest-P{persons}-E{events}-O{orders}-N{nps}-S{seed}"


class _Person:
    __slots__ = (
        "birthday",
        "born",
        "city",
        "crm",
        "email",
        "family",
        "family_email",
        "first",
        "hubspot",
        "i",
        "landline",
        "last",
        "mailchimp",
        "mobile",
        "news",
        "shop",
        "shopify",
        "work",
    )

    i: int
    first: str
    last: str
    email: str
    work: str | None
    mobile: str | None
    city: tuple[str, str, str]
    birthday: str
    hubspot: int | None
    shopify: int | None
    mailchimp: str | None
    family: int | None
    family_email: str | None
    landline: str | None
    crm: bool
    shop: bool
    news: bool
    born: datetime


def _iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class Generator:
    """Writes the six files; deterministic for a given seed and counts."""

    def __init__(self, persons: int, events: int, orders: int, nps: int, seed: int) -> None:
        self.persons, self.events, self.orders, self.nps, self.seed = persons, events, orders, nps, seed
        self.rng = random.Random(seed)
        self.people: list[_Person] = []
        self.stats = {
            "people": 0,
            "families": 0,
            "family_members": 0,
            "blocked_values": 0,
            "work_emails": 0,
            "invalid_phones": 0,
        }

    # -- variants ---------------------------------------------------------------------------
    def email_variant(self, email: str) -> str:
        roll = self.rng.random()
        if roll < 0.72:
            return email
        if roll < 0.82:
            local, _, domain = email.partition("@")
            return ".".join(p[:1].upper() + p[1:] for p in local.split(".")) + "@" + domain.capitalize()
        if roll < 0.87:
            return email.upper()
        if roll < 0.94:
            return f"  {email} "
        return f" {email.capitalize()}\t"

    def phone_variant(self, prefix: str, sub: str) -> str:
        roll = self.rng.random()
        if roll < 0.003:
            self.stats["invalid_phones"] += 1
            return self.rng.choice(("12345", "n/a", "0"))
        return self.rng.choice(
            (
                f"0{prefix} {sub}",
                f"+49 {prefix} {sub}",
                f"+49 (0){prefix}-{sub}",
                f"0049{prefix}{sub}",
                f"+49{prefix}{sub}",
                f"0{prefix}/{sub}",
            )
        )

    def mobile_variant(self, person: _Person) -> str:
        assert person.mobile is not None
        prefix, sub = person.mobile.split(" ")
        return self.phone_variant(prefix, sub)

    def landline_variant(self, person: _Person) -> str:
        assert person.landline is not None
        area, sub = person.landline.split(" ")
        return self.rng.choice((f"0{area} {sub}", f"+49 {area} {sub}", f"0{area}/{sub}", f"+49 ({area}) {sub}"))

    def blocked_email(self) -> str:
        self.stats["blocked_values"] += 1
        return self.rng.choice(BLOCKED_EMAILS)

    # -- people ---------------------------------------------------------------------------------
    def _new_person(self, i: int, family: tuple[int, str, str, str, tuple[str, str, str]] | None) -> _Person:
        rng = self.rng
        p = _Person()
        p.i = i
        p.first = rng.choice(FIRST)
        p.city = family[4] if family else rng.choice(CITIES)
        p.last = family[1] if family else rng.choice(LAST)
        pattern = rng.randrange(4)
        f, la = fold(p.first), fold(p.last)
        local = (f"{f}.{la}", f"{f}{la}", f"{f[0]}.{la}", f"{f}_{la}")[pattern]
        p.email = f"{local}{i}@{rng.choice(MAIL_DOMAINS)}"
        p.work = None
        if rng.random() < 0.12:
            p.work = f"{f[0]}.{la}.{i}@{rng.choice(WORK_DOMAINS)}"
            self.stats["work_emails"] += 1
        p.mobile = None
        if rng.random() < 0.85:
            prefix = rng.choice(MOBILE)
            digits = 7 if prefix.startswith("15") else 6
            p.mobile = f"{prefix} {rng.randint(1, 9)}{rng.randrange(10**digits):0{digits}d}"
        p.family = family[0] if family else None
        p.family_email = family[2] if family else None
        p.landline = family[3] if family else None
        p.birthday = f"{rng.randint(1945, 2005)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        p.born = START + timedelta(seconds=i * 41 + rng.randrange(40))
        return p

    def _people(self) -> list[tuple[_Person, tuple[int, int, int]]]:
        """People with their source membership, until the memberships add up to exactly ``persons`` records."""
        rng = self.rng
        memberships = [m for m, _ in MEMBERSHIP]
        weights = [w for _, w in MEMBERSHIP]
        total = 0
        i = 0
        result = []
        family: tuple[int, str, str, str, tuple[str, str, str]] | None = None
        family_left = 0
        while total < self.persons:
            if family_left == 0:
                family = None
                if rng.random() < 0.01:  # a family starts: 2-7 people (mean ~4): ~4 % of people live in one
                    family_left = rng.randint(2, 7)
                    last = rng.choice(LAST)
                    city = rng.choice(CITIES)
                    fam_id = self.stats["families"]
                    family = (
                        fam_id,
                        last,
                        f"familie.{fold(last)}.{fam_id}@{rng.choice(MAIL_DOMAINS)}",
                        f"{city[2]} {rng.randint(2, 9)}{rng.randrange(10**6):06d}",
                        city,
                    )
                    self.stats["families"] += 1
            person = self._new_person(i, family)
            if family_left:
                family_left -= 1
                self.stats["family_members"] += 1
            member = rng.choices(memberships, weights)[0]
            take = sum(member)
            if total + take > self.persons:  # the last person: only as many sources as records are left
                left = self.persons - total
                member = tuple(1 if (v and sum(member[: k + 1]) <= left) else 0 for k, v in enumerate(member))  # type: ignore[assignment]
                take = sum(member)
            person.crm, person.shop, person.news = bool(member[0]), bool(member[1]), bool(member[2])
            person.hubspot = 100_000 + i * 3 + rng.randrange(3) if person.crm else None
            person.shopify = 6_912_000_000_000 + i * 7 + rng.randrange(7) if person.shop else None
            person.mailchimp = hashlib.md5(f"{self.seed}:{i}".encode()).hexdigest() if person.news else None
            total += take
            result.append((person, member))
            i += 1
        self.stats["people"] = len(result)
        return result

    # -- files ----------------------------------------------------------------------------------
    def write(self, folder: Path) -> dict[str, int]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = self.rng
        people = self._people()
        self.people = [p for p, _ in people]
        counts = {"crm_contacts": 0, "shop_customers": 0, "newsletter_members": 0}
        crm_f = (folder / "crm_contacts.csv").open("w", encoding="utf-8", newline="")
        shop_f = (folder / "shop_customers.jsonl").open("w", encoding="utf-8")
        news_f = (folder / "newsletter_members.csv").open("w", encoding="utf-8", newline="")
        with crm_f, shop_f, news_f:
            crm = csv.writer(crm_f)
            crm.writerow(
                [
                    "id",
                    "email",
                    "firstname",
                    "lastname",
                    "phone",
                    "city",
                    "zip",
                    "country",
                    "date_of_birth",
                    "lifecyclestage",
                    "lastmodifieddate",
                ]
            )
            news = csv.writer(news_f)
            news.writerow(["id", "email_address", "status", "first_name", "last_name", "phone", "tags", "last_changed"])
            shop_lines: list[str] = []
            for p, _member in people:
                if p.crm:
                    email = p.work if p.work and rng.random() < 0.5 else p.email
                    if p.family_email and rng.random() < 0.5:
                        email = p.family_email
                    email = self.email_variant(email) if rng.random() > 0.03 else ""  # 3 % without email
                    if rng.random() < 0.002:
                        email = self.blocked_email()
                    phone = ""
                    if p.landline and rng.random() < 0.6:
                        phone = self.landline_variant(p)
                    elif p.mobile and rng.random() < 0.75:
                        phone = self.mobile_variant(p)
                    if phone and rng.random() < 0.002:
                        phone, self.stats["blocked_values"] = BLOCKED_PHONE, self.stats["blocked_values"] + 1
                    when = p.born + timedelta(seconds=rng.randrange(30 * 86400))
                    crm.writerow(
                        [
                            p.hubspot,
                            email,
                            p.first,
                            p.last,
                            phone,
                            p.city[0],
                            p.city[1],
                            "Deutschland",
                            p.birthday if rng.random() < 0.4 else "",
                            rng.choice(STAGES),
                            _iso_z(when),
                        ]
                    )
                    counts["crm_contacts"] += 1
                if p.shop:
                    email = p.family_email if p.family_email and rng.random() < 0.5 else p.email
                    email = self.email_variant(email)
                    if rng.random() < 0.002:
                        email = self.blocked_email()
                    phone = self.mobile_variant(p) if p.mobile and rng.random() < 0.6 else None
                    if phone and rng.random() < 0.002:
                        phone, self.stats["blocked_values"] = BLOCKED_PHONE, self.stats["blocked_values"] + 1
                    created = p.born + timedelta(seconds=rng.randrange(60 * 86400))
                    updated = created + timedelta(seconds=rng.randrange(90 * 86400))
                    shop_lines.append(
                        json.dumps(
                            {
                                "id": p.shopify,
                                "email": email,
                                "first_name": p.first,
                                "last_name": p.last,
                                "phone": phone,
                                "accepts_marketing": rng.random() < 0.4,
                                "orders_count": rng.randrange(0, 12),
                                "total_spent": f"{rng.uniform(0, 900):.2f}",
                                "tags": rng.choice(("", "vip", "wholesale", "newsletter")),
                                "default_address": {"city": p.city[0], "zip": p.city[1], "country_code": "DE"},
                                "created_at": created.isoformat(),
                                "updated_at": updated.isoformat(),
                            },
                            ensure_ascii=False,
                        )
                    )
                    if len(shop_lines) >= 10_000:
                        shop_f.write("\n".join(shop_lines) + "\n")
                        shop_lines.clear()
                    counts["shop_customers"] += 1
                if p.news:
                    email = p.work if p.work and rng.random() < 0.3 else p.email
                    email = self.email_variant(email)
                    if rng.random() < 0.002:
                        email = self.blocked_email()
                    phone = self.mobile_variant(p) if p.mobile and rng.random() < 0.2 else ""
                    when = p.born + timedelta(seconds=rng.randrange(45 * 86400))
                    news.writerow(
                        [
                            p.mailchimp,
                            email,
                            rng.choice(
                                ("subscribed", "subscribed", "subscribed", "unsubscribed", "cleaned", "pending")
                            ),
                            p.first if rng.random() < 0.9 else "",
                            p.last if rng.random() < 0.7 else "",
                            phone,
                            rng.choice(TAGS),
                            when.strftime("%Y-%m-%d %H:%M:%S"),
                        ]
                    )
                    counts["newsletter_members"] += 1
            if shop_lines:
                shop_f.write("\n".join(shop_lines) + "\n")
        counts["events"] = self._events(folder / "events.jsonl")
        counts["shop_orders"] = self._orders(folder / "shop_orders.jsonl")
        counts["nps_answers"] = self._nps(folder / "nps_answers.csv")
        return counts

    def _someone(self) -> _Person:
        # Activity is skewed: a fifth of the people produce about two thirds of it.
        rng = self.rng
        n = len(self.people)
        if rng.random() < 0.65:
            return self.people[rng.randrange(max(1, n // 5))]
        return self.people[rng.randrange(n)]

    def _events(self, path: Path) -> int:
        rng = self.rng
        span = max(1, len(self.people) * 41)
        lines: list[str] = []
        with path.open("w", encoding="utf-8") as handle:
            for k in range(self.events):
                p = self._someone()
                when = START + timedelta(seconds=rng.randrange(span + 120 * 86400))
                event: dict[str, object] = {"id": f"evt_{k:09d}"}
                roll = rng.random()
                if roll < 0.05:  # anonymous: a page view before anyone logged in
                    name, props = (
                        "page_viewed",
                        {
                            "path": rng.choice(("/", "/shop", "/blog/espresso", "/abo")),
                            "anonymous_id": f"anon-{rng.randrange(10**9):09d}",
                        },
                    )
                elif roll < 0.30 and p.mailchimp:
                    name = rng.choice(EMAIL_EVENTS)
                    event["mailchimp_member_id"] = p.mailchimp
                    props = {"campaign": f"2024-{rng.randint(1, 52):02d}-newsletter"}
                elif roll < 0.55 and p.shopify:
                    name = rng.choice(SHOP_EVENTS)
                    event["shopify_customer_id"] = p.shopify
                    sku, title, price = rng.choice(PRODUCTS)
                    props = {"sku": sku, "title": title, "price": price}
                else:
                    name = rng.choice(WEB_EVENTS)
                    event["email"] = self.email_variant(p.email)
                    props = {
                        "path": rng.choice(("/kontakt", "/shop", "/blog/filterkaffee", "/abo")),
                        "utm_source": rng.choice(("google", "newsletter", "instagram", "")),
                    }
                event["event"] = name
                event["occurred_at"] = when.isoformat()
                event["properties"] = props
                lines.append(json.dumps(event, ensure_ascii=False))
                if len(lines) >= 10_000:
                    handle.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                handle.write("\n".join(lines) + "\n")
        return self.events

    def _orders(self, path: Path) -> int:
        rng = self.rng
        shoppers = [p for p in self.people if p.shopify] or self.people
        lines: list[str] = []
        with path.open("w", encoding="utf-8") as handle:
            for k in range(self.orders):
                p = shoppers[rng.randrange(max(1, len(shoppers) // 4))] if rng.random() < 0.5 else rng.choice(shoppers)
                items = []
                total = 0.0
                for _ in range(rng.randint(1, 3)):
                    sku, title, price = rng.choice(PRODUCTS)
                    qty = rng.randint(1, 2)
                    total += float(price) * qty
                    items.append({"sku": sku, "title": title, "quantity": qty, "price": price})
                created = p.born + timedelta(seconds=rng.randrange(365 * 86400))
                order: dict[str, object] = {
                    "id": 5_501_234_000_000 + k,
                    "name": f"#{1001 + k}",
                    "order_number": 1001 + k,
                    "email": self.email_variant(p.email),
                    "total_price": f"{total + 4.90:.2f}",
                    "currency": "EUR",
                    "financial_status": rng.choice(("paid", "paid", "paid", "pending", "refunded", "voided")),
                    "line_items": items,
                    "created_at": created.isoformat(),
                    "updated_at": (created + timedelta(seconds=rng.randrange(3 * 86400))).isoformat(),
                }
                if p.shopify and rng.random() < 0.9:  # else a guest checkout: the email only
                    order["customer"] = {
                        "id": p.shopify,
                        "email": p.email,
                        "phone": self.mobile_variant(p) if p.mobile and rng.random() < 0.5 else None,
                    }
                lines.append(json.dumps(order, ensure_ascii=False))
                if len(lines) >= 10_000:
                    handle.write("\n".join(lines) + "\n")
                    lines.clear()
            if lines:
                handle.write("\n".join(lines) + "\n")
        return self.orders

    def _nps(self, path: Path) -> int:
        rng = self.rng
        scores = list(range(11))
        weights = [2, 1, 1, 2, 2, 4, 6, 10, 18, 24, 30]
        span = max(1, len(self.people) * 41)
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["token", "submitted_at", "email", "score", "comment", "channel"])
            for k in range(self.nps):
                p = self._someone()
                email = "" if rng.random() < 0.12 else self.email_variant(p.email)  # anonymous answers count too
                when = START + timedelta(seconds=rng.randrange(span + 180 * 86400))
                writer.writerow(
                    [
                        f"nps{k:09d}{rng.randrange(16**6):06x}",
                        when.strftime("%Y-%m-%d %H:%M:%S"),
                        email,
                        rng.choices(scores, weights)[0],
                        rng.choice(COMMENTS),
                        rng.choice(("web", "email", "app")),
                    ]
                )
        return self.nps


def ensure(out: Path, persons: int, events: int, orders: int, nps: int, seed: int, *, quiet: bool = False) -> Path:
    """The data folder for these counts, generated unless a complete one is cached."""
    folder = folder_for(out, persons, events, orders, nps, seed)
    manifest = folder / "manifest.json"
    if manifest.exists():
        if not quiet:
            size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
            print(f"data: {folder} ({size:.0f} MiB, cached)", flush=True)
        return folder
    if not quiet:
        print(
            f"generating {persons:,} person records, {events:,} events, {orders:,} orders, {nps:,} NPS answers "
            f"(seed {seed}) -> {folder}",
            flush=True,
        )
    started = time.perf_counter()
    gen = Generator(persons, events, orders, nps, seed)
    counts = gen.write(folder)
    meta = {
        "persons": persons,
        "events": events,
        "orders": orders,
        "nps": nps,
        "seed": seed,
        "files": counts,
        **gen.stats,
    }
    manifest.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    if not quiet:
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(
            f"  {time.perf_counter() - started:.1f} s, {size:.0f} MiB; {gen.stats['people']:,} people behind the "
            f"{persons:,} person records, {gen.stats['families']:,} families",
            flush=True,
        )
    return folder


def scaled(persons: int, events: int | None, orders: int | None, nps: int | None) -> tuple[int, int, int]:
    return (
        persons if events is None else events,
        persons // 5 if orders is None else orders,
        persons // 10 if nps is None else nps,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=None, help="default: = persons")
    parser.add_argument("--orders", type=int, default=None, help="default: persons / 5")
    parser.add_argument("--nps", type=int, default=None, help="default: persons / 10")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "out")
    args = parser.parse_args()
    events, orders, nps = scaled(args.persons, args.events, args.orders, args.nps)
    ensure(args.out.resolve(), args.persons, events, orders, nps, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
