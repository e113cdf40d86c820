"""Generated values for the PII and secrets sets: each a real-shaped value that passes
(or, for look-alikes, deliberately fails) the checks its kind has."""

from __future__ import annotations

import random
import string

import phonenumbers

FIRST = [
    "James",
    "Maria",
    "Wei",
    "Aisha",
    "Carlos",
    "Olga",
    "Hiroshi",
    "Fatima",
    "Liam",
    "Sofia",
    "Noah",
    "Priya",
    "Mateo",
    "Chloe",
    "Ahmed",
    "Elena",
    "Lucas",
    "Mei",
    "Kwame",
    "Ingrid",
    "Diego",
    "Hannah",
    "Omar",
    "Yuki",
    "Pierre",
    "Zara",
    "Tomasz",
    "Amara",
    "Sven",
    "Leila",
    "Rafael",
    "Anya",
    "Jonas",
    "Nadia",
    "Felix",
    "Grace",
    "Ivan",
    "Lucia",
    "Arjun",
    "Freya",
]
LAST = [
    "Smith",
    "Garcia",
    "Chen",
    "Khan",
    "Müller",
    "Rossi",
    "Tanaka",
    "Okafor",
    "Novak",
    "Silva",
    "Johansson",
    "Dubois",
    "Kowalski",
    "Nguyen",
    "Patel",
    "Fischer",
    "Moreau",
    "Hernandez",
    "Schmidt",
    "Ivanova",
    "Larsen",
    "Costa",
    "Brown",
    "Kim",
    "Haddad",
    "Nakamura",
    "Byrne",
    "Lindqvist",
    "Ortiz",
    "Petrov",
    "Walsh",
    "Conti",
    "Sato",
    "Mensah",
    "Weber",
]
CITIES = [
    "Springfield",
    "Portland",
    "Austin",
    "Denver",
    "Boston",
    "Madison",
    "Columbus",
    "Raleigh",
    "Phoenix",
    "Oakland",
    "Salem",
    "Dayton",
]
STATES = ["OR", "TX", "CO", "MA", "WI", "OH", "NC", "AZ", "CA", "IL", "NY", "WA"]
STREETS = [
    "Oak",
    "Maple",
    "Cedar",
    "Pine",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Main",
    "Church",
    "Mill",
    "River",
    "Sunset",
    "Highland",
]
SUFFIXES = [
    "Street",
    "St",
    "Avenue",
    "Ave",
    "Road",
    "Rd",
    "Drive",
    "Dr",
    "Lane",
    "Ln",
    "Boulevard",
    "Blvd",
    "Court",
    "Way",
    "Place",
]
DOMAINS = [
    "gmail.com",
    "outlook.com",
    "yahoo.co.uk",
    "proton.me",
    "example.com",
    "acme-corp.io",
    "mail.example.org",
    "uni-hamburg.de",
    "company.co",
    "fastmail.fm",
    "icloud.com",
    "stanford.edu",
    "gov.uk",
    "hospital.org",
    "startup.ai",
]


def email(rng: random.Random) -> str:
    first, last = rng.choice(FIRST).lower(), rng.choice(LAST).lower()
    first = first.replace("ü", "u")
    last = last.replace("ü", "ue")
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}_{last}{rng.randint(1, 99)}",
            f"{first}{rng.randint(1970, 2005)}",
            f"{last}.{first[0]}",
            f"{first}+{rng.choice(['news', 'work', 'shop'])}",
            f"{first}-{last}",
        ]
    )
    return f"{local}@{rng.choice(DOMAINS)}"


_PHONE_REGIONS = (
    "US",
    "GB",
    "DE",
    "FR",
    "IN",
    "BR",
    "JP",
    "AU",
    "ES",
    "IT",
    "NL",
    "MX",
    "CA",
    "ZA",
    "SE",
    "SG",
)
_PHONE_TYPES = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


def _valid_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    for _ in range(200):
        example = phonenumbers.example_number_for_type(region, rng.choice(_PHONE_TYPES))
        if example is None:
            continue
        national = str(example.national_number)
        # Keep the leading (area/operator) digits, vary the rest.
        keep = max(2, len(national) - 5)
        digits = national[:keep] + "".join(rng.choice(string.digits) for _ in range(len(national) - keep))
        number = phonenumbers.parse("+" + str(example.country_code) + digits, None)
        if phonenumbers.is_valid_number(number):
            return number
    raise RuntimeError(f"no valid number for {region}")


def phone_international(rng: random.Random) -> str:
    number = _valid_number(rng, rng.choice(_PHONE_REGIONS))
    style = rng.random()
    if style < 0.45:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style < 0.7:
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    text = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return text.replace(" ", rng.choice(["-", ".", " "])) if style < 0.85 else "00" + text[1:]


def phone_us(rng: random.Random) -> str:
    number = _valid_number(rng, "US")
    d = str(number.national_number)
    return rng.choice(
        [
            f"({d[:3]}) {d[3:6]}-{d[6:]}",
            f"{d[:3]}-{d[3:6]}-{d[6:]}",
            f"{d[:3]}.{d[3:6]}.{d[6:]}",
            f"{d[:3]} {d[3:6]} {d[6:]}",
            f"+1 {d[:3]} {d[3:6]} {d[6:]}",
            f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}",
            f"1-{d[:3]}-{d[3:6]}-{d[6:]}",
        ]
    )


def phone(rng: random.Random) -> str:
    return phone_us(rng) if rng.random() < 0.5 else phone_international(rng)


def luhn_digit(partial: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str((10 - total % 10) % 10)


_CARD_PREFIXES = [("4", 16), ("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15),
                  ("6011", 16), ("65", 16), ("3530", 16), ("36", 14), ("62", 16)]  # fmt: skip


def _card_digits(rng: random.Random) -> str:
    prefix, length = rng.choice(_CARD_PREFIXES)
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    return body + luhn_digit(body)


def _group_card(digits: str, rng: random.Random) -> str:
    sep = rng.choice([" ", " ", "-", ""])
    if not sep:
        return digits
    if len(digits) == 15 or len(digits) == 14:
        groups = [digits[:4], digits[4:10], digits[10:]]
    else:
        groups = [digits[i : i + 4] for i in range(0, len(digits), 4)]
    return sep.join(groups)


def credit_card(rng: random.Random) -> str:
    return _group_card(_card_digits(rng), rng)


def card_bad_luhn(rng: random.Random) -> str:
    digits = _card_digits(rng)
    wrong = str((int(digits[-1]) + rng.randint(1, 9)) % 10)
    return _group_card(digits[:-1] + wrong, rng)


_IBAN_FORMATS = {
    "DE": "8n10n", "GB": "4a6n8n", "FR": "5n5n11c2n", "ES": "4n4n1n1n10n", "IT": "1a5n5n12c", "NL": "4a10n",
    "BE": "3n7n2n", "CH": "5n12c", "AT": "5n11n", "PL": "8n16n", "SE": "3n16n1n", "IE": "4a6n8n",
    "PT": "4n4n11n2n", "DK": "4n9n1n", "NO": "4n6n1n", "FI": "3n11n",
}  # fmt: skip


def _iban(rng: random.Random, country: str | None = None) -> str:
    country = country or rng.choice(list(_IBAN_FORMATS))
    bban = ""
    for count, kind in ((int(part[:-1]), part[-1]) for part in _split_format(_IBAN_FORMATS[country])):
        pool = {"n": string.digits, "a": string.ascii_uppercase, "c": string.ascii_uppercase + string.digits}
        bban += "".join(rng.choice(pool[kind]) for _ in range(count))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    return f"{country}{check:02d}{bban}"


def _split_format(fmt: str) -> list[str]:
    parts, current = [], ""
    for ch in fmt:
        current += ch
        if ch.isalpha():
            parts.append(current)
            current = ""
    return parts


def _group_iban(compact: str, rng: random.Random) -> str:
    if rng.random() < 0.4:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def iban(rng: random.Random) -> str:
    return _group_iban(_iban(rng), rng)


def iban_bad_checksum(rng: random.Random) -> str:
    good = _iban(rng)
    check = int(good[2:4])
    bad = f"{good[:2]}{(check + rng.randint(1, 50)) % 97 + 2:02d}{good[4:]}"
    return _group_iban(bad, rng)


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    group = rng.randint(1, 99)
    serial = rng.randint(1, 9999)
    sep = rng.choice(["-", "-", "-", " "])
    return f"{area:03d}{sep}{group:02d}{sep}{serial:04d}"


def ssn_bare(rng: random.Random) -> str:
    return ssn(rng).replace("-", "").replace(" ", "")


def ssn_invalid(rng: random.Random) -> str:
    area = rng.choice([0, 666, rng.randint(900, 999)])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def ipv4(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    if kind < 0.5:
        return f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    return f"{rng.randint(11, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    style = rng.random()
    if style < 0.4:
        return ":".join(groups)
    if style < 0.8:
        return f"2001:db8:{groups[2]}:{groups[3]}::{groups[7]}"
    return f"fe80::{groups[5]}:{groups[6]}:{groups[7]}"


def ip(rng: random.Random) -> str:
    return ipv4(rng) if rng.random() < 0.75 else ipv6(rng)


_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def date_of_birth(rng: random.Random) -> str:
    y, m, d = rng.randint(1940, 2006), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice(
        [
            f"{m:02d}/{d:02d}/{y}",
            f"{d:02d}.{m:02d}.{y}",
            f"{y}-{m:02d}-{d:02d}",
            f"{_MONTHS[m - 1]} {d}, {y}",
            f"{d} {_MONTHS[m - 1]} {y}",
            f"{_MONTHS[m - 1][:3]} {d}, {y}",
        ]
    )


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def address(rng: random.Random) -> str:
    number = rng.randint(1, 9999)
    street = f"{rng.choice(STREETS)} {rng.choice(SUFFIXES)}"
    if rng.random() < 0.5:
        return f"{number} {street}"
    return f"{number} {street}, {rng.choice(CITIES)}, {rng.choice(STATES)} {rng.randint(10000, 99999)}"


# --- look-alikes (never labelled) ---------------------------------------------------


def version(rng: random.Random) -> str:
    return f"{rng.randint(1, 12)}.{rng.randint(0, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 200)}"


def order_number(rng: random.Random) -> str:
    return str(rng.randint(10**9, 10**10 - 1))


def price(rng: random.Random) -> str:
    return f"${rng.randint(1, 99)},{rng.randint(100, 999)}.{rng.randint(10, 99)}"


def uuid(rng: random.Random) -> str:
    h = "".join(rng.choice("0123456789abcdef") for _ in range(32))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def plain_date(rng: random.Random) -> str:
    return f"{rng.randint(2019, 2025)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def isbn(rng: random.Random) -> str:
    return f"978-{rng.randint(0, 1)}-{rng.randint(100, 999)}-{rng.randint(10000, 99999)}-{rng.randint(0, 9)}"


def tracking(rng: random.Random) -> str:
    return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def timestamp(rng: random.Random) -> str:
    return f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"


def sha(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(40))


def small_int(rng: random.Random) -> str:
    return str(rng.randint(2, 500))


def decimal_number(rng: random.Random) -> str:
    return f"{rng.randint(0, 9999)}.{rng.randint(0, 99):02d}"
