#!/usr/bin/env python3
"""Generate the offline demo data in samples/ (deterministic: a fixed seed, no clock, no network).

    python samples/generate.py            # rewrites the five files next to this script
    python samples/generate.py --out DIR  # somewhere else

One population of about 320 people (a small German coffee roaster's customers) shows
up, overlapping, in five exports, each shaped like the tool it imitates:

- crm_contacts.csv        HubSpot contacts export
- shop_orders.jsonl       Shopify orders (REST Admin API JSON, one order per line)
- newsletter_members.csv  Mailchimp audience export (id = md5 of the lowercased email)
- nps_answers.csv         Typeform NPS survey responses
- consents.csv            a consent-management export (cookie banner, preference center)

The messiness identity resolution has to cope with is planted on purpose: emails with
other case and surrounding blanks, phones in every common German format, umlauts,
people who use another email in the shop but the same phone, duplicate CRM contacts,
blocked values (test@test.com, all-zero phones), and a few broken rows (missing ids,
invalid emails, an NPS score of 11, an unquoted comma, a truncated JSON line) that
should end up in quarantine. samples/README.md lists them.

Only the standard library is used. Email domains are reserved example domains
(RFC 2606/6761); names and numbers are made up.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

SEED = 20240501
PEOPLE = 320
START = datetime(2024, 1, 2, 7, 0, tzinfo=UTC)
END = datetime(2024, 6, 28, 20, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")

FIRST_NAMES = [
    ("Anna", "f"), ("Lena", "f"), ("Marie", "f"), ("Sophie", "f"), ("Emma", "f"), ("Hannah", "f"),
    ("Lea", "f"), ("Jana", "f"), ("Katharina", "f"), ("Sabine", "f"), ("Ursula", "f"), ("Gisela", "f"),
    ("Bärbel", "f"), ("Dörte", "f"), ("Käthe", "f"), ("Anne-Kathrin", "f"), ("Zoë", "f"), ("Chloé", "f"),
    ("Özlem", "f"), ("Ayşe", "f"), ("Małgorzata", "f"), ("Julia", "f"), ("Laura", "f"), ("Claudia", "f"),
    ("Petra", "f"), ("Monika", "f"), ("Jürgen", "m"), ("Jörg", "m"), ("Björn", "m"), ("Sören", "m"),
    ("Günter", "m"), ("Hans-Peter", "m"), ("Max", "m"), ("Lukas", "m"), ("Felix", "m"), ("Jonas", "m"),
    ("Paul", "m"), ("Tobias", "m"), ("Stefan", "m"), ("Thomas", "m"), ("Michael", "m"), ("Andreas", "m"),
    ("Mehmet", "m"), ("René", "m"), ("Jan", "m"), ("Florian", "m"), ("Matthias", "m"), ("Uwe", "m"),
    ("Klaus", "m"), ("Dieter", "m"), ("Niklas", "m"), ("Timo", "m"),
]
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
    "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
    "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
    "Schmitz", "Krause", "Meier", "Lehmann", "Schulze", "Maier", "Köhler", "Herrmann", "König",
    "Walter", "Huber", "Kaiser", "Fuchs", "Peters", "Scholz", "Möller", "Weiß", "Jung", "Hahn",
    "Vogel", "Friedrich", "Keller", "Günther", "Berger", "Roth", "Lorenz", "Baumann", "Böhm",
    "Krämer", "Jäger", "Groß", "Seidel", "Brandt", "Kühn", "Engel", "Voigt", "Pfeiffer", "Yılmaz",
    "Kaya", "Nowak", "Kowalski", "de Vries", "van der Berg", "O'Brien", "Dubois", "Rossi",
]
# (city, country code, HubSpot country text, weight)
CITIES = [
    ("Berlin", "DE", "Germany", 14), ("Hamburg", "DE", "Germany", 8), ("München", "DE", "Deutschland", 9),
    ("Köln", "DE", "Germany", 7), ("Frankfurt am Main", "DE", "Germany", 6), ("Stuttgart", "DE", "Deutschland", 5),
    ("Düsseldorf", "DE", "Germany", 4), ("Leipzig", "DE", "DE", 4), ("Dresden", "DE", "Germany", 3),
    ("Nürnberg", "DE", "Germany", 3), ("Münster", "DE", "Deutschland", 2), ("Freiburg im Breisgau", "DE", "Germany", 2),
    ("Lübeck", "DE", "Germany", 2), ("Göttingen", "DE", "DE", 2), ("Würzburg", "DE", "Germany", 2),
    ("Wien", "AT", "Austria", 4), ("Graz", "AT", "Österreich", 2), ("Zürich", "CH", "Switzerland", 3),
    ("Basel", "CH", "Schweiz", 2),
]
EMAIL_DOMAINS = ["example.com", "example.de", "example.org", "example.net", "mail.example", "post.example"]
LANDLINE_PREFIX = {"Berlin": "30", "Hamburg": "40", "München": "89", "Köln": "221", "Frankfurt am Main": "69"}
DE_MOBILE = ["151", "152", "157", "160", "162", "163", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179"]
LIFECYCLE = [("subscriber", 12), ("lead", 30), ("marketingqualifiedlead", 12), ("salesqualifiedlead", 6),
             ("opportunity", 5), ("customer", 30), ("evangelist", 5)]
PRODUCTS = [
    ("ESP-1000", "Espresso Bohnen Milano 1 kg", "24.90"),
    ("ESP-0250", "Espresso Bohnen Milano 250 g", "8.50"),
    ("FIL-0500", "Filterkaffee Hausmischung 500 g", "12.50"),
    ("FIL-ETH-250", "Äthiopien Yirgacheffe 250 g", "11.90"),
    ("DEC-0500", "Entkoffeiniert Schwarzwald 500 g", "13.90"),
    ("TEE-CHAI", "Chai Gewürztee 250 g", "8.90"),
    ("ACC-HAND", "Handfilter Porzellan Gr. 2", "19.90"),
    ("ACC-MUEHLE", "Handmühle Edelstahl", "89.00"),
    ("ACC-SCHAUM", "Milchaufschäumer", "39.00"),
    ("ACC-ENTK", "Entkalker Bio 500 ml", "6.50"),
    ("GUT-25", "Geschenkgutschein 25 €", "25.00"),
    ("ABO-MON", "Kaffee-Abo monatlich", "21.00"),
]
NPS_COMMENTS = {
    "promoter": [
        "Super schneller Versand!", "Bester Espresso, den ich je zu Hause hatte.", "Alles bestens, gerne wieder.",
        "Tolle Beratung am Telefon, danke!", "Die Hausmischung ist großartig.", "Schnell, freundlich, lecker.",
        "Mein Lieblingsröster – weiter so!", "Das Abo ist super praktisch.", "", "",
    ],
    "passive": [
        "Guter Kaffee, aber etwas teuer.", "Lieferung hat 4 Tage gedauert.", "Passt, nichts Besonderes.",
        'Verpackung "nachhaltig"? Eher nicht.', "Geschmack gut, Mahlgrad könnte feiner sein.", "", "",
    ],
    "detractor": [
        "Kaffee war leider zu bitter.", "Die Lieferung hat 2 Wochen gedauert, das geht besser.",
        "Paket kam beschädigt an.\nDer Kundenservice hat nicht geantwortet.", "Zu teuer für die Qualität.",
        "Abo ließ sich nicht kündigen!!", "Falsche Sorte geliefert, Rücksendung war umständlich.", "",
    ],
}
# Two people written into every file in known shapes, so a demo can show them being unified.
SHOWCASE = {
    0: {"first": "Anna", "last": "Schmidt", "city": "Berlin", "email": "anna.schmidt@example.com", "phone": "1711234567",
        "crm_email": "  Anna.Schmidt@Example.com", "crm_phone": "0171 1234567", "shop_email": "anna.schmidt@example.com",
        "nl_email": "Anna.Schmidt@example.com", "nps_email": "anna.schmidt@example.com "},
    1: {"first": "Jürgen", "last": "Müller", "city": "München", "email": "juergen.mueller@example.de", "phone": "1717654321",
        "crm_email": "juergen.mueller@example.de", "crm_phone": "+49 (0)171-7654321", "shop_email": "j.mueller@example.net",
        "nl_email": "Juergen.Mueller@Example.de", "nps_email": "JUERGEN.MUELLER@EXAMPLE.DE"},
}
TAGS = ["Kunde", "VIP", "Gewinnspiel 2024", "Espresso-Fans", "Abo", "Weihnachtsmarkt"]


@dataclass
class Person:
    n: int
    first: str
    last: str
    gender: str
    city: str
    country: str
    country_text: str
    email: str
    phone_national: str  # digits after the country code, e.g. "1711234567"
    phone_cc: str  # "49", "43", "41"
    landline: bool
    since: datetime
    alt_email: str | None = None  # a second address used in the shop
    flags: dict[str, bool] = field(default_factory=dict)


def ascii_fold(text: str) -> str:
    table = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ë": "e", "é": "e",
             "ı": "i", "ş": "s", "ł": "l", "ó": "o", "'": "", " ": ""}
    return "".join(table.get(ch, ch) for ch in text)


class Generator:
    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.used_emails: set[str] = set()
        self.people: list[Person] = []

    # -- helpers ---------------------------------------------------------------------------
    def when(self, start: datetime = START, end: datetime = END) -> datetime:
        seconds = int((end - start).total_seconds())
        return start + timedelta(seconds=self.rng.randrange(max(seconds, 1)), milliseconds=self.rng.randrange(1000))

    def weighted(self, items: list[tuple]) -> tuple:
        return self.rng.choices(items, weights=[i[-1] for i in items])[0]

    def make_email(self, first: str, last: str) -> str:
        f, l = ascii_fold(first).lower(), ascii_fold(last).lower()
        patterns = [f"{f}.{l}", f"{f[0]}.{l}", f"{f}{l}", f"{f}_{l}", f"{l}.{f}", f"{f}.{l}{self.rng.randint(1, 99)}",
                    f"{f}{self.rng.randint(60, 99)}"]
        for _ in range(20):
            local = self.rng.choices(patterns, weights=[30, 12, 10, 5, 5, 10, 4])[0]
            email = f"{local}@{self.rng.choice(EMAIL_DOMAINS)}"
            if email not in self.used_emails:
                self.used_emails.add(email)
                return email
        email = f"{f}.{l}.{len(self.used_emails)}@example.com"
        self.used_emails.add(email)
        return email

    def phone(self, p: Person, style: str | None = None) -> str:
        """The person's number the way some human or tool typed it."""
        cc, nat = p.phone_cc, p.phone_national
        area, sub = (nat[:3], nat[3:]) if not p.landline else (LANDLINE_PREFIX.get(p.city, "30"), nat[len(LANDLINE_PREFIX.get(p.city, "30")):])
        if cc != "49":
            area, sub = nat[:3], nat[3:]
        style = style or self.rng.choices(
            ["national", "intl", "intl0", "0049", "compact", "e164", "slash", "dashed"], weights=[22, 22, 10, 6, 10, 14, 8, 8]
        )[0]
        if style == "national":
            return f"0{area} {sub}"
        if style == "intl":
            return f"+{cc} {area} {sub}"
        if style == "intl0":
            return f"+{cc} (0){area}-{sub}"
        if style == "0049":
            return f"00{cc} {area} {sub}"
        if style == "compact":
            return f"0{area}{sub}"
        if style == "slash":
            return f"0{area}/{sub}"
        if style == "dashed":
            return f"0{area}-{sub[:3]} {sub[3:]}"
        return f"+{cc}{nat}"

    def email_variant(self, email: str, messy: float) -> str:
        """The same address, sometimes with other case or blanks around it (as typed in forms)."""
        if self.rng.random() >= messy:
            return email
        local, domain = email.split("@")
        kind = self.rng.choice(["title", "upper_domain", "spaces", "title_spaces", "upper"])
        if kind == "title":
            return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
        if kind == "upper_domain":
            return f"{local}@{domain.upper()}"
        if kind == "spaces":
            return f"  {email} "
        if kind == "title_spaces":
            return "  " + ".".join(part.capitalize() for part in local.split(".")) + "@" + domain.capitalize()
        return email.upper()

    # -- the population ------------------------------------------------------------------------
    def population(self) -> None:
        rng = self.rng
        for n in range(PEOPLE):
            first, gender = rng.choice(FIRST_NAMES)
            last = rng.choice(LAST_NAMES)
            city, country, country_text, _ = self.weighted(CITIES)
            landline = country == "DE" and city in LANDLINE_PREFIX and rng.random() < 0.12
            if country == "DE":
                cc = "49"
                if landline:
                    prefix = LANDLINE_PREFIX[city]
                    nat = prefix + "".join(rng.choices(string.digits, k=10 - len(prefix)))
                    nat = prefix + str(rng.randint(1, 9)) + nat[len(prefix) + 1 :]
                else:
                    prefix = rng.choice(DE_MOBILE)
                    length = 7 if prefix.startswith("15") else rng.choice([6, 7])  # 015x numbers have 11 digits
                    nat = prefix + str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=length))
            elif country == "AT":
                cc, nat = "43", rng.choice(["664", "676", "699"]) + str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=6))
            else:
                cc, nat = "41", rng.choice(["76", "78", "79"]) + str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=6))
            p = Person(n, first, last, gender, city, country, country_text, self.make_email(first, last), nat, cc, landline,
                       self.when(START - timedelta(days=400), END - timedelta(days=30)))
            if rng.random() < 0.06:
                p.alt_email = self.make_email(first, last)
            p.flags = {
                "crm": rng.random() < 0.85,
                "shop": rng.random() < 0.52,
                "newsletter": rng.random() < 0.74,
                "nps": rng.random() < 0.45,
                "has_phone": rng.random() < 0.8,
            }
            if n in SHOWCASE:
                show = SHOWCASE[n]
                city = next(c for c in CITIES if c[0] == show["city"])
                p = Person(n, show["first"], show["last"], "f" if n == 0 else "m", city[0], city[1], city[2], show["email"],
                           show["phone"], "49", False, p.since, show["shop_email"] if n == 1 else None)
                self.used_emails.update({show["email"], show["shop_email"]})
                p.flags = dict.fromkeys(("crm", "shop", "newsletter", "nps", "has_phone"), True)
            self.people.append(p)

    # -- HubSpot ---------------------------------------------------------------------------------
    def crm_contacts(self) -> tuple[list[str], list[list[str]]]:
        rng = self.rng
        header = ["id", "email", "firstname", "lastname", "phone", "city", "country", "lifecyclestage", "lastmodifieddate"]
        rows: list[list[str]] = []
        next_id = 1251
        for p in self.people:
            if not p.flags["crm"]:
                continue
            next_id += rng.randint(1, 40)
            modified = self.when(max(p.since, START), END)
            stage = self.weighted(LIFECYCLE)[0]
            if p.flags["shop"] and rng.random() < 0.8:
                stage = "customer"
            show = SHOWCASE.get(p.n)
            rows.append([
                str(next_id),
                show["crm_email"] if show else self.email_variant(p.email, 0.12),
                p.first if rng.random() > 0.03 else p.first.upper(),
                p.last,
                show["crm_phone"] if show else self.phone(p) if p.flags["has_phone"] and rng.random() < 0.9 else "",
                p.city if rng.random() > 0.05 else "",
                p.country_text,
                stage,
                hubspot_time(modified),
            ])
        # Duplicate contacts: the same person entered twice (another id, the email typed differently).
        for p in rng.sample([p for p in self.people if p.flags["crm"] and p.n not in SHOWCASE], 6):
            next_id += rng.randint(1, 40)
            rows.append([str(next_id), f"  {p.email.upper()}", p.first, p.last, self.phone(p, "intl0"), p.city,
                         p.country_text, "lead", hubspot_time(self.when())])
        # Broken rows for quarantine.
        donor = rng.sample(self.people, 8)
        rows.append(["", donor[0].email, donor[0].first, donor[0].last, "", donor[0].city, donor[0].country_text, "lead",
                     hubspot_time(self.when())])  # missing id
        rows.append(["", "", "Unbekannt", "", "", "", "", "subscriber", hubspot_time(self.when())])  # missing id, nothing
        rows.append([str(next_id + 11), "anna.schmidt@", "Anna", "Schmidt", "0171 0000000", "Berlin", "Germany", "lead",
                     hubspot_time(self.when())])  # invalid email
        rows.append([str(next_id + 12), "kein-email-angegeben", "Jörg", "Weiß", "", "Köln", "Germany", "lead",
                     hubspot_time(self.when())])  # invalid email
        rows.append([str(next_id + 13), "max.mustermann@@example.de", "Max", "Mustermann", "+49 (0)30-1234567", "Berlin",
                     "Germany", "subscriber", hubspot_time(self.when())])  # invalid email
        rows.append([str(next_id + 14), "test@test.com", "Test", "Test", "0000 0000000", "", "", "subscriber",
                     hubspot_time(self.when())])  # blocked values
        rows.append([str(next_id + 15), "noreply@example.com", "No", "Reply", "", "", "", "other",
                     hubspot_time(self.when())])  # blocked value
        rows.sort(key=lambda r: r[8])  # exports come sorted by last modification
        return header, rows

    # -- Shopify ---------------------------------------------------------------------------------
    def shop_orders(self) -> list[str]:
        rng = self.rng
        orders: list[tuple[datetime, dict]] = []
        customer_ids: dict[int, int] = {}
        for p in self.people:
            if not p.flags["shop"]:
                continue
            customer_ids[p.n] = 6_912_000_000_000 + p.n * 7919 + rng.randint(0, 7000)
            for _ in range(rng.choices([1, 2, 3, 4, 6], weights=[40, 28, 16, 10, 6])[0]):
                orders.append((self.when(max(p.since, START), END), {"person": p}))
        for _ in range(5):  # guest checkouts: no customer account
            orders.append((self.when(), {"person": None}))
        orders.sort(key=lambda o: o[0])
        lines: list[str] = []
        order_id = 5_501_234_560_000
        for number, (created, extra) in enumerate(orders, start=1001):
            order_id += rng.randint(1000, 90000)
            p: Person | None = extra["person"]
            items = []
            for sku, title, price in rng.sample(PRODUCTS, rng.choices([1, 2, 3], weights=[55, 30, 15])[0]):
                items.append({"id": order_id * 10 + len(items) + 1, "sku": sku, "title": title,
                              "quantity": rng.choices([1, 2, 3], weights=[80, 15, 5])[0], "price": price})
            subtotal = sum(float(i["price"]) * i["quantity"] for i in items)
            shipping = 0.0 if subtotal >= 49 else 4.90
            status = rng.choices(["paid", "pending", "refunded", "partially_refunded", "voided"], weights=[84, 5, 5, 3, 3])[0]
            updated = created + timedelta(minutes=rng.randint(0, 60 * 24 * (5 if status in ("refunded", "partially_refunded") else 1)))
            currency = "CHF" if p is not None and p.country == "CH" else "EUR"
            if p is not None:
                email = p.alt_email if p.alt_email and rng.random() < 0.7 else p.email
                if p.n in SHOWCASE:
                    email = SHOWCASE[p.n]["shop_email"]
                elif rng.random() < 0.05:  # the shop keeps what the customer typed, trimmed
                    email = self.email_variant(email, 1.0).strip()
                phone = f"+{p.phone_cc}{p.phone_national}" if p.flags["has_phone"] and (p.n in SHOWCASE or rng.random() < 0.75) else None
                customer = {"id": customer_ids[p.n], "email": email, "phone": phone, "first_name": p.first, "last_name": p.last}
            else:
                first, _ = rng.choice(FIRST_NAMES)
                last = rng.choice(LAST_NAMES)
                email = self.make_email(first, last)
                customer = None
            order = {
                "id": order_id,
                "name": f"#{number}",
                "order_number": number,
                "email": customer["email"].strip().lower() if customer else email,
                "customer": customer,
                "total_price": f"{subtotal + shipping:.2f}",
                "subtotal_price": f"{subtotal:.2f}",
                "currency": currency,
                "financial_status": status,
                "line_items": items,
                "created_at": shopify_time(created),
                "updated_at": shopify_time(updated),
            }
            lines.append(json.dumps(order, ensure_ascii=False))
        # Broken and suspicious lines for quarantine and the blocked-value rules.
        p = rng.choice([p for p in self.people if p.flags["shop"]])
        missing_id = json.loads(lines[len(lines) // 3])
        missing_id.pop("id")
        missing_id["name"] = "#9001"
        lines.insert(len(lines) // 3 + 1, json.dumps(missing_id, ensure_ascii=False))
        test_order = json.loads(lines[len(lines) // 2])
        test_order.update(id=order_id + 1, name="#9002", email="test@test.com",
                          customer={"id": 6_912_999_999_999, "email": "test@test.com", "phone": "+490000000000",
                                    "first_name": "Test", "last_name": "Bestellung"})
        lines.insert(len(lines) // 2 + 1, json.dumps(test_order, ensure_ascii=False))
        bad_email = json.loads(lines[2 * len(lines) // 3])
        bad_email.update(id=order_id + 2, name="#9003", email="jürgen.müller@beispiel")
        bad_email["customer"] = {"id": customer_ids[p.n] + 1, "email": "jürgen.müller@beispiel", "phone": None,
                                 "first_name": "Jürgen", "last_name": "Müller"}
        lines.insert(2 * len(lines) // 3 + 1, json.dumps(bad_email, ensure_ascii=False))
        truncated = json.dumps(json.loads(lines[-1]) | {"id": order_id + 3, "name": "#9004"}, ensure_ascii=False)
        lines.insert(len(lines) - 2, truncated[: len(truncated) // 2])  # a line cut off mid-write
        return lines

    # -- Mailchimp ----------------------------------------------------------------------------
    def newsletter_members(self) -> tuple[list[str], list[list[str]]]:
        rng = self.rng
        header = ["id", "email_address", "status", "first_name", "last_name", "tags", "last_changed"]
        rows: list[list[str]] = []
        for p in self.people:
            if not p.flags["newsletter"]:
                continue
            email = SHOWCASE[p.n]["nl_email"] if p.n in SHOWCASE else self.email_variant(p.email, 0.08).strip()
            status = rng.choices(["subscribed", "unsubscribed", "cleaned", "pending"], weights=[70, 15, 7, 8])[0]
            tags = rng.sample(TAGS, rng.choices([0, 1, 2], weights=[50, 35, 15])[0])
            if p.flags["shop"] and "Kunde" not in tags and rng.random() < 0.6:
                tags.append("Kunde")
            rows.append([
                mailchimp_id(email),
                email,
                status,
                p.first if rng.random() > 0.1 else "",
                p.last if rng.random() > 0.15 else "",
                ",".join(tags),
                mailchimp_time(self.when(max(p.since, START), END)),
            ])
        # Broken rows.
        rows.append([mailchimp_id("max.mustermann@"), "max.mustermann@", "cleaned", "Max", "Mustermann", "",
                     mailchimp_time(self.when())])  # invalid email (bounced, cleaned)
        rows.append(["", "", "pending", "Lisa", "", "Gewinnspiel 2024", mailchimp_time(self.when())])  # no email, no id
        rows.append([mailchimp_id("gisela@localhost"), "gisela@localhost", "subscribed", "Gisela", "Weiß", "",
                     mailchimp_time(self.when())])  # invalid email
        rows.sort(key=lambda r: r[6])
        return header, rows

    # -- Typeform -------------------------------------------------------------------------------
    def nps_answers(self) -> tuple[list[str], list[list[str]]]:
        rng = self.rng
        header = ["token", "submitted_at", "email", "score", "comment", "channel"]
        rows: list[list[str]] = []
        for p in self.people:
            if not p.flags["nps"]:
                continue
            for _ in range(rng.choices([1, 2, 3], weights=[70, 22, 8])[0]):
                category = rng.choices(["promoter", "passive", "detractor"], weights=[46, 30, 24])[0]
                score = {"promoter": rng.choice([9, 10, 10]), "passive": rng.choice([7, 8]),
                         "detractor": rng.choices(range(7), weights=[2, 1, 2, 3, 4, 6, 8])[0]}[category]
                channel = rng.choices(["email", "web", "app", "sms"], weights=[55, 25, 15, 5])[0]
                email = self.email_variant(p.email, 0.15) if channel != "web" or rng.random() < 0.6 else ""
                if p.n in SHOWCASE:
                    email, score, category = SHOWCASE[p.n]["nps_email"], (10 if p.n == 0 else 3), "x"
                    comment = "Bester Espresso, den ich je zu Hause hatte." if p.n == 0 else "Abo ließ sich nicht kündigen!!"
                else:
                    comment = rng.choice(NPS_COMMENTS[category])
                rows.append([token(rng), typeform_time(self.when(max(p.since, START), END)), email, str(score),
                             comment, channel])
        # Anonymous web answers, and broken ones.
        for _ in range(6):
            rows.append([token(rng), typeform_time(self.when()), "", str(rng.randint(0, 10)), "", "web"])
        donor = rng.sample([p for p in self.people if p.flags["nps"]], 4)
        rows.append([token(rng), typeform_time(self.when()), donor[0].email, "11", "Elf von zehn!", "email"])  # out of range
        rows.append([token(rng), typeform_time(self.when()), donor[1].email, "", "Keine Bewertung abgegeben", "email"])
        rows.append([token(rng), typeform_time(self.when()), donor[2].email, "zehn", "", "app"])  # not a number
        rows.append(["", typeform_time(self.when()), donor[3].email, "8", "Token fehlt", "web"])  # missing token
        rows.append([token(rng), typeform_time(self.when()), "kein@email", "3", "Versand zu langsam", "email"])  # invalid email
        rows.sort(key=lambda r: r[1])
        return header, rows

    # -- consent ---------------------------------------------------------------------------------
    def consents(self) -> tuple[list[str], list[list[str]]]:
        """A consent-management export (cookie banner and preference center): one row per decision.

        Its own random stream (seed + 1), so that adding it left the other files as they were.
        Anna Schmidt (a promoter) grants ads consent on the banner and revokes it later in the
        preference center: the demo's hashed ad export holds her back.
        """
        rng = random.Random(SEED + 1)
        header = ["id", "email", "purpose", "status", "source", "updated_at"]
        rows: list[list[str]] = []
        for p in self.people:
            if p.n in SHOWCASE or rng.random() > 0.7:
                continue
            granted = START + timedelta(seconds=rng.randrange(int((END - START).total_seconds())))
            rows.append(["", p.email, "ads", "granted" if rng.random() < 0.8 else "denied", "cookie_banner", hubspot_time(granted)])
            if rng.random() < 0.5:
                rows.append(["", p.email, "personalization", rng.choice(["granted", "denied"]), "preference_center",
                             hubspot_time(granted + timedelta(days=rng.randrange(1, 30)))])
        anna = SHOWCASE[0]["email"]
        rows.append(["", anna, "ads", "granted", "cookie_banner", hubspot_time(datetime(2024, 2, 1, 9, 30, tzinfo=UTC))])
        rows.append(["", anna, "ads", "revoked", "preference_center", hubspot_time(datetime(2024, 5, 14, 18, 5, tzinfo=UTC))])
        rows.sort(key=lambda r: (r[5], r[1], r[2]))
        for i, row in enumerate(rows, 1):
            row[0] = f"c{i:05d}"
        return header, rows


def hubspot_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def shopify_time(when: datetime) -> str:
    return when.astimezone(BERLIN).isoformat(timespec="seconds")


def mailchimp_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def typeform_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def mailchimp_id(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode()).hexdigest()  # noqa: S324 - Mailchimp's subscriber hash


def token(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_lowercase + string.digits, k=32))


def write_csv(path: Path, header: list[str], rows: list[list[str]], raw_lines: dict[int, str] | None = None) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for i, row in enumerate(rows):
            if raw_lines and i in raw_lines:
                handle.write(raw_lines[i] + "\n")
            else:
                writer.writerow(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent, help="folder to write to")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gen = Generator()
    gen.population()

    header, rows = gen.crm_contacts()
    # One export row with an unquoted comma in the city: a field too many.
    broken = len(rows) // 2
    r = rows[broken]
    raw = {broken: ",".join([r[0], r[1].strip(), r[2], r[3], r[4], "Frankfurt, Main", r[6], r[7], r[8]])}
    write_csv(args.out / "crm_contacts.csv", header, rows, raw)

    (args.out / "shop_orders.jsonl").write_text("\n".join(gen.shop_orders()) + "\n", encoding="utf-8")

    header, rows = gen.newsletter_members()
    write_csv(args.out / "newsletter_members.csv", header, rows)

    header, rows = gen.nps_answers()
    write_csv(args.out / "nps_answers.csv", header, rows)

    header, rows = gen.consents()
    write_csv(args.out / "consents.csv", header, rows)

    for name in ("crm_contacts.csv", "shop_orders.jsonl", "newsletter_members.csv", "nps_answers.csv", "consents.csv"):
        path = args.out / name
        with path.open(encoding="utf-8", newline="") as handle:
            count = sum(1 for _ in csv.reader(handle)) - 1 if name.endswith(".csv") else None
        if count is None:
            count = len(path.read_text(encoding="utf-8").splitlines())
        print(f"{path}: {count} records")


if __name__ == "__main__":
    main()
