"""Personal data: detectors for each entity and the ``pii`` scanner.

Structured entities are found by a pattern and then checked the way the thing itself
is checked (Luhn for cards, mod-97 for IBANs, libphonenumber's metadata for phones, the
SSA's rules for SSNs, ``ipaddress`` for IPs), with context rules against look-alikes
(an order number is not a phone; ``version 1.2.3.4`` is not an address). Dates of
birth need a birth keyword nearby; person names and street addresses are found only in
contexts where that is precise (``my name is``, ``Dear``, a number + street + suffix):
they are covered for precision, not recall (docs/guards.md has the numbers).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Literal

import phonenumbers

from keel.guards._registry import guard
from keel.guards._result import NO_CONTEXT, GuardResult, RuleScanner, ScanContext, Span, spans_result

PIIEntity = Literal[
    "EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS", "DATE_OF_BIRTH", "ADDRESS", "PERSON"
]
STRUCTURED_ENTITIES: tuple[PIIEntity, ...] = ("EMAIL", "PHONE", "CREDIT_CARD", "IBAN", "US_SSN", "IP_ADDRESS")
ALL_ENTITIES: tuple[PIIEntity, ...] = (*STRUCTURED_ENTITIES, "DATE_OF_BIRTH", "ADDRESS", "PERSON")

Detector = Callable[[str, "PIIOptions"], list[Span]]


class PIIOptions:
    __slots__ = ("ignore_private_ips", "regions")

    def __init__(self, regions: Sequence[str], ignore_private_ips: bool) -> None:
        self.regions = tuple(regions)
        self.ignore_private_ips = ignore_private_ips


# --- email -----------------------------------------------------------------------

# Found from each "@": the local part backwards, the domain forwards (a pattern that
# starts at the local part would be tried at every letter of the text).
_EMAIL_LOCAL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}$")
_EMAIL_DOMAIN = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])")


def find_emails(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    at = text.find("@")
    while at > 0:
        local = _EMAIL_LOCAL.search(text, max(0, at - 64), at)
        domain = _EMAIL_DOMAIN.match(text, at + 1) if local else None
        if local and domain and ".." not in text[local.start() : domain.end()]:
            spans.append(Span("EMAIL", local.start(), domain.end()))
        at = text.find("@", at + 1)
    return spans


# --- credit cards ----------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.,-])\d(?:[ -]?\d){12,18}(?![\w]|[.,-]\d)")
_CARD_GROUPS = {(4, 4, 4, 4), (4, 6, 5), (4, 6, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 3), (4, 4, 5)}


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def card_brand(digits: str) -> str | None:
    """The network whose numbers look like ``digits`` (prefix and length), else None."""
    n = len(digits)
    two, four, six = int(digits[:2]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4" and n in (13, 16, 19):
        return "visa"
    if (51 <= two <= 55 or 2221 <= four <= 2720) and n == 16:
        return "mastercard"
    if two in (34, 37) and n == 15:
        return "amex"
    if (four == 6011 or two == 65 or 644 <= int(digits[:3]) <= 649 or 622126 <= six <= 622925) and n in (
        16,
        19,
    ):
        return "discover"
    if 3528 <= four <= 3589 and 16 <= n <= 19:
        return "jcb"
    if (300 <= int(digits[:3]) <= 305 or two in (36, 38, 39) or four == 3095) and 14 <= n <= 19:
        return "diners"
    if two == 62 and 16 <= n <= 19:
        return "unionpay"
    if four in (5018, 5020, 5038, 5893, 6304, 6759, 6761, 6762, 6763) and 12 <= n <= 19:
        return "maestro"
    return None


def find_cards(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    for m in _CARD.finditer(text):
        raw = m.group()
        separators = {c for c in raw if not c.isdigit()}
        if len(separators) > 1:
            continue
        digits = raw.replace(" ", "").replace("-", "")
        if separators and tuple(len(g) for g in re.split(r"[ -]", raw)) not in _CARD_GROUPS:
            continue
        brand = card_brand(digits)
        if brand is not None and luhn_valid(digits):
            spans.append(Span("CREDIT_CARD", m.start(), m.end(), kind=brand))
    return spans


# --- IBAN ------------------------------------------------------------------------

_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_IBAN_START = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})(\d{2})(?=[ ]?[A-Za-z0-9])")


def iban_valid(compact: str) -> bool:
    compact = compact.upper()
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def find_ibans(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    for m in _IBAN_START.finditer(text):
        length = _IBAN_LENGTHS.get(m.group(1).upper())
        if length is None:
            continue
        # Walk forward over alphanumerics and single spaces until the country's length.
        i, count = m.start(), 0
        end = len(text)
        while i < end and count < length:
            c = text[i]
            if c.isascii() and c.isalnum():
                count += 1
            elif not (c == " " and i + 1 < end and text[i + 1] != " " and count >= 4):
                break
            i += 1
        if count != length or (i < end and text[i].isascii() and text[i].isalnum()):
            continue
        compact = text[m.start() : i].replace(" ", "")
        if iban_valid(compact):
            spans.append(Span("IBAN", m.start(), i, kind=compact[:2].upper()))
    return spans


# --- US SSN ----------------------------------------------------------------------

_SSN = re.compile(r"(?<![\w-])(\d{3})([- ])(\d{2})\2(\d{4})(?![\w]|-\d)")
_SSN_BARE = re.compile(r"(?<![\w-])(\d{3})(\d{2})(\d{4})(?![\w-])")
_SSN_CONTEXT = re.compile(r"(?i)\b(?:ssn|ss#|social\s+security(?:\s+(?:number|no\.?|#))?|ssa\s+number)\b")
# Numbers the SSA never issued or published as examples.
_SSN_EXAMPLES = {"078051120", "219099999", "123456789", "457555462"}


def ssn_valid(area: str, group: str, serial: str) -> bool:
    a = int(area)
    if a == 0 or a == 666 or a >= 900 or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _SSN_EXAMPLES


def find_ssns(text: str, options: PIIOptions) -> list[Span]:
    spans = [
        Span("US_SSN", m.start(), m.end())
        for m in _SSN.finditer(text)
        if ssn_valid(m.group(1), m.group(3), m.group(4))
    ]
    lowered = text.lower()
    if ("ss" in lowered or "social" in lowered) and _SSN_CONTEXT.search(text):
        for m in _SSN_BARE.finditer(text):
            before = text[max(0, m.start() - 40) : m.start()]
            if _SSN_CONTEXT.search(before) and ssn_valid(m.group(1), m.group(2), m.group(3)):
                spans.append(Span("US_SSN", m.start(), m.end()))
    return spans


# --- IP addresses ----------------------------------------------------------------

_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?<![\w.-]){_OCTET}(?:\.{_OCTET}){{3}}(?![\w]|\.\d|-\w)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:.])"
)
# Dotted numbers after these words are versions, sections or object ids, not hosts.
_NOT_AN_IP_BEFORE = re.compile(
    r"(?i)(?:\b(?:v|ver|version|versions|release|rel|build|rev|revision|firmware|fw|sdk|api|python|node|java|"
    r"chrome|firefox|kernel|patch|update|upgrade(?:d)?\s+to|section|sect|chapter|clause|article|step|figure|fig|"
    r"table|item|paragraph|para|rule|oid|tag|semver)\s*[:=#]?\s*"
    r"|[=~^<>!]=?\s*|@\s*|§\s*)$"
)


def find_ips(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    if "." in text:
        for m in _IPV4.finditer(text):
            if _NOT_AN_IP_BEFORE.search(text, max(0, m.start() - 24), m.start()):
                continue
            address = ipaddress.IPv4Address(m.group())
            if options.ignore_private_ips and (address.is_private or address.is_loopback):
                continue
            spans.append(Span("IP_ADDRESS", m.start(), m.end(), kind="ipv4"))
    if "::" in text or text.count(":") >= 5:
        for m in _IPV6.finditer(text):
            raw = m.group()
            if len(raw) < 6 or sum(c.isalnum() for c in raw) < 4:
                continue
            try:
                address6 = ipaddress.IPv6Address(raw)
            except ValueError:
                continue
            if options.ignore_private_ips and (address6.is_private or address6.is_loopback):
                continue
            spans.append(Span("IP_ADDRESS", m.start(), m.end(), kind="ipv6"))
    return spans


# --- phone numbers ---------------------------------------------------------------

_PHONE = re.compile(r"(?<![\w@#$€£¥+./:-])(?:\+|\b00)?[ ]?\(?\d[\d() .\-/\t]{5,22}\d(?![\w@%]|[.\-/,]\d)")
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|phones|tel|telephone|mobile|cell|cellphone|call|calling|text|sms|whatsapp|signal|fax|"
    r"contact|reach|dial|ring|hotline|helpline|landline|mob|ph|number|numbers|handy|telefon|téléphone|"
    r"portable|móvil|teléfono)\b"
)
_NOT_A_PHONE_BEFORE = re.compile(
    r"(?i)(?:\b(?:order|invoice|ticket|account|acct|ref|reference|tracking|case|serial|sku|isbn|issn|"
    r"transaction|txn|confirmation|booking|policy|member|membership|customer|employee|badge|id|pin|code|zip|"
    r"postcode|routing|amount|total|balance|price|cost|pr|issue|build|job|batch|lot|part|model|patent|"
    r"record|file|claim|voucher|receipt|shipment|parcel|package|container|vin|imei|mrn|npi|ein|tin|"
    r"passport|license|licence)\s*(?:no\.?|nr\.?|number|num|id|#)?\s*[:#=]?\s*|#\s*)$"
)
_DATE_LIKE = re.compile(
    r"^\d{4}[-/.]\d{1,2}[-/.]\d{1,2}$|^\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4}$|^\d{4}\s*-\s*\d{4}$"
)


def _phone_valid(candidate: str, region: str | None) -> bool:
    try:
        number = phonenumbers.parse(candidate, region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def find_phones(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    for m in _PHONE.finditer(text):
        raw = m.group().strip()
        start = m.start() + (len(m.group()) - len(m.group().lstrip()))
        end = start + len(raw)
        if raw.count("(") != raw.count(")"):
            # "(415) 555-2671)" or a bracket belonging to the sentence: trim it.
            raw = raw.strip("()")
            start = text.find(raw, start)
            end = start + len(raw)
        digits = re.sub(r"\D", "", raw)
        if not 7 <= len(digits) <= 15 or _DATE_LIKE.match(raw):
            continue
        before = text[max(0, start - 40) : start]
        international = raw.startswith("+") or raw.startswith("00")
        if international:
            candidate = "+" + digits[2:] if raw.startswith("00") else "+" + digits
            if _phone_valid(candidate, None):
                spans.append(Span("PHONE", start, end, kind="international"))
            continue
        immediate = before[-28:]
        in_context = _PHONE_CONTEXT.search(before) is not None
        if _NOT_A_PHONE_BEFORE.search(immediate) and not _PHONE_CONTEXT.search(immediate):
            continue
        formatted = len(digits) < len(raw)
        if not (formatted or in_context):
            continue
        if any(_phone_valid(raw, region) for region in options.regions):
            spans.append(Span("PHONE", start, end, kind="national"))
    return spans


# --- dates of birth --------------------------------------------------------------

_MONTHS = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+\d{{4}}"
    rf"|{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}})"
)
_DOB = re.compile(
    r"(?i)\b(?:born(?:\s+on)?|date\s+of\s+birth|birth\s*date|birthdate|d\.?o\.?b\.?|birthday(?:\s+is)?|"
    r"geburtsdatum|geboren(?:\s+am)?|n[ée]e?\s+le|fecha\s+de\s+nacimiento)"
    rf"(?:\s*(?:is|was|:|=|-|on|of)\s*)*[^\w\n]{{0,3}}(?P<date>{_DATE})(?!\d)"
)


_DOB_WORDS = ("born", "birth", "dob", "d.o.b", "geb", "né", "nacimiento")


def find_dates_of_birth(text: str, options: PIIOptions) -> list[Span]:
    lowered = text.lower()
    if not any(word in lowered for word in _DOB_WORDS):
        return []
    return [Span("DATE_OF_BIRTH", m.start("date"), m.end("date")) for m in _DOB.finditer(text)]


# --- street addresses ------------------------------------------------------------

_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Circle|Cir|Parkway|Pkwy|Highway|Hwy|Square|Sq|Crescent|Close|Gardens|Row|Mews|Alley|Trail|Plaza)\b\.?"
)
_US_ADDRESS = re.compile(
    r"\b\d{1,6}[A-Za-z]?\s+(?:(?:[NSEW]|North|South|East|West)\.?\s+)?(?:[A-Z][a-z]+\.?\s+|\d{1,3}(?:st|nd|rd|th)\s+)"
    rf"{{1,4}}?{_STREET_SUFFIX}"
    r"(?:,?\s*(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|#)\.?\s*[A-Za-z0-9-]+)?"
    r"(?:,\s*[A-Z][a-zA-Z]+(?:\s[A-Z][a-zA-Z]+){0,2},?\s+(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|"
    r"[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}))?"
)
# German-style "Hauptstraße 12": found from the street suffix, then back to the word start.
_DE_STREET = re.compile(
    r"(?:straße|strasse|str\.|weg|gasse|platz|allee|ring|damm)\s+\d{1,4}[a-z]?\b"
    r"(?:,\s*\d{4,5}\s+[A-ZÄÖÜ][a-zäöüß]+)?"
)
_DE_STREET_START = re.compile(r"(?<![\w])[A-ZÄÖÜ][a-zäöüß]*$")
_FR_STREET = re.compile(
    r"\b\d{1,4},?\s+(?:rue|avenue|boulevard|place|chemin|allée|impasse)\s+(?:[a-zA-Zéèêàç'-]+\s+){0,4}"
    r"[A-Za-zéèêàç'-]+(?:,\s*\d{5}\s+[A-Z][a-zéèêàç-]+)?"
)


def find_addresses(text: str, options: PIIOptions) -> list[Span]:
    spans = [Span("ADDRESS", m.start(), m.end()) for m in _US_ADDRESS.finditer(text)]
    for m in _DE_STREET.finditer(text):
        start = _DE_STREET_START.search(text, max(0, m.start() - 40), m.start())
        if start is not None:
            spans.append(Span("ADDRESS", start.start(), m.end(), kind="de"))
    spans += [Span("ADDRESS", m.start(), m.end(), kind="fr") for m in _FR_STREET.finditer(text)]
    return spans


# --- person names ----------------------------------------------------------------

_NAME = r"[A-Z][a-z]+(?:['-][A-Z]?[a-z]+)?"
_NAME_RUN = rf"{_NAME}(?:[ \t]+(?:[A-Z]\.[ \t]+)?{_NAME}){{0,2}}"
_PERSON_CONTEXTS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (
        ("name", "Name"),
        re.compile(rf"(?:[Mm]y name is|[Mm]y name's|[Nn]ame\s*:|[Ff]ull name\s*:)\s+(?P<name>{_NAME_RUN})"),
    ),
    (("all me",), re.compile(rf"[Cc]all me\s+(?P<name>{_NAME_RUN})")),
    (
        ("igned", "atient", "ustomer", "mployee", "ontact person"),
        re.compile(
            rf"(?:[Ss]igned\s*:?|[Pp]atient\s*:|[Cc]ustomer\s*:|[Ee]mployee\s*:|[Cc]ontact person\s*:)\s+"
            rf"(?P<name>{_NAME_RUN})"
        ),
    ),
    (
        ("Dear", "Hi ", "Hello"),
        re.compile(rf"(?:Dear|Hi|Hello)\s+(?=(?:{_NAME})\s+{_NAME}\b)(?P<name>{_NAME_RUN})"),
    ),
    (
        ("Mr", "Ms", "Miss", "Dr", "Prof", "Sir", "Madam"),
        re.compile(rf"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof|Sir|Madam)\.?\s+(?P<name>{_NAME_RUN})"),
    ),
    (
        ("egards,\n", "egards\n", "Sincerely", "Cheers", "Thanks,\n", "Thanks\n", "Best", "Yours", "wishes"),
        re.compile(
            rf"(?:(?:[Kk]ind |[Bb]est |[Ww]arm )?[Rr]egards|Sincerely|Cheers|Thanks|Best|Yours truly|"
            rf"Best wishes),?[ \t]*\n\s*"
            rf"(?P<name>{_NAME_RUN})"
        ),
    ),
]
_NOT_NAMES = frozenset(
    [
        "Sir",
        "Madam",
        "Team",
        "All",
        "Customer",
        "Customers",
        "Friend",
        "Friends",
        "Colleague",
        "Colleagues",
        "Everyone",
        "There",
        "Hiring",
        "Manager",
        "Support",
        "Admin",
        "User",
        "Users",
        "Reader",
        "Readers",
        "Sir/Madam",
        "Whom",
        "Valued",
        "Member",
        "Members",
        "Applicant",
        "Client",
        "Team",
        "The",
        "This",
        "That",
        "What",
        "How",
        "When",
        "Where",
        "Why",
        "Who",
        "Please",
        "Thank",
        "Thanks",
        "Hello",
        "Hi",
        "Dear",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
    ]
)


def find_persons(text: str, options: PIIOptions) -> list[Span]:
    spans = []
    matches = [
        m
        for triggers, pattern in _PERSON_CONTEXTS
        if any(t in text for t in triggers)
        for m in pattern.finditer(text)
    ]
    for m in matches:
        name = m.group("name")
        words = name.split()
        while words and words[-1] in _NOT_NAMES:
            words.pop()
        if not words or words[0] in _NOT_NAMES:
            continue
        end = m.start("name") + len(" ".join(words)) if len(words) > 1 else m.start("name") + len(words[0])
        # Re-measure: the name may have had single spaces only, so the join is exact.
        spans.append(Span("PERSON", m.start("name"), end))
    return spans


DETECTORS: dict[str, Detector] = {
    "EMAIL": find_emails,
    "CREDIT_CARD": find_cards,
    "IBAN": find_ibans,
    "US_SSN": find_ssns,
    "IP_ADDRESS": find_ips,
    "DATE_OF_BIRTH": find_dates_of_birth,
    "PHONE": find_phones,
    "ADDRESS": find_addresses,
    "PERSON": find_persons,
}
# Where two findings overlap, the earlier entity in this order wins.
_PRIORITY = {name: i for i, name in enumerate(DETECTORS)}


def resolve_overlaps(spans: list[Span]) -> list[Span]:
    """Keep the highest-priority span among overlapping ones (then the longest)."""
    chosen: list[Span] = []
    for span in sorted(spans, key=lambda s: (_PRIORITY.get(s.entity, 99), -(s.end - s.start), s.start)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def find_pii(text: str, entities: Sequence[str], options: PIIOptions) -> list[Span]:
    spans: list[Span] = []
    for entity in entities:
        spans += DETECTORS[entity](text, options)
    return resolve_overlaps(spans)


class PIIScanner(RuleScanner):
    def __init__(
        self, label: str, entities: Sequence[str], options: PIIOptions, allow: Sequence[str]
    ) -> None:
        self.label = label
        # Detectors run in priority order so that overlaps resolve the same way each time.
        self.entities = [e for e in DETECTORS if e in set(entities)]
        self.options = options
        self.allow = frozenset(a.lower() for a in allow)

    def scan(self, text: str, context: ScanContext = NO_CONTEXT) -> GuardResult:
        spans = find_pii(text, self.entities, self.options)
        if self.allow:
            spans = [s for s in spans if text[s.start : s.end].lower() not in self.allow]
        return spans_result(self.label, spans)


@guard("pii")
def pii(
    entities: Sequence[PIIEntity] = ALL_ENTITIES,
    regions: Sequence[str] = ("US",),
    allow: Sequence[str] = (),
    ignore_private_ips: bool = False,
) -> PIIScanner:
    """Personal data. ``regions``: where phone numbers written without a country code
    are read from (ISO 3166 codes); ``allow``: values never reported (your support address)."""
    for region in regions:
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r} (use ISO 3166 codes such as US, GB, DE)")
    options = PIIOptions([r.upper() for r in regions], ignore_private_ips)
    return PIIScanner("pii", entities, options, allow)
