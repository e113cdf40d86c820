# ruff: noqa: E501  (hand-written records read best one per line)
"""The PII set: templates per split (disjoint pools), entity values, look-alikes."""

from __future__ import annotations

import random
import re
from typing import Any

from keel.guards._datagen import ValueMaker, choice, fill
from keel.guards._datagen import _values as v

ENTITIES: dict[str, ValueMaker] = {
    "EMAIL": v.email,
    "PHONE": v.phone,
    "PHONE_US": v.phone_us,
    "PHONE_INTL": v.phone_international,
    "CREDIT_CARD": v.credit_card,
    "IBAN": v.iban,
    "US_SSN": v.ssn,
    "US_SSN_BARE": v.ssn_bare,
    "IP_ADDRESS": v.ip,
    "IPV4": v.ipv4,
    "IPV6": v.ipv6,
    "DATE_OF_BIRTH": v.date_of_birth,
    "PERSON": v.person,
    "ADDRESS": v.address,
    # look-alikes, never labelled
    "CARD_BAD": v.card_bad_luhn,
    "IBAN_BAD": v.iban_bad_checksum,
    "SSN_BAD": v.ssn_invalid,
    "VERSION": v.version,
    "ORDER": v.order_number,
    "PRICE": v.price,
    "UUID": v.uuid,
    "DATE": v.plain_date,
    "ISBN": v.isbn,
    "TRACKING": v.tracking,
    "TIME": v.timestamp,
    "SHA": v.sha,
}
LABEL_AS: dict[str, str | None] = {
    "PHONE_US": "PHONE",
    "PHONE_INTL": "PHONE",
    "US_SSN_BARE": "US_SSN",
    "IPV4": "IP_ADDRESS",
    "IPV6": "IP_ADDRESS",
    **{k: None for k in ("CARD_BAD", "IBAN_BAD", "SSN_BAD", "VERSION", "ORDER", "PRICE", "UUID", "DATE",
                         "ISBN", "TRACKING", "TIME", "SHA")},
}  # fmt: skip
FILLERS: dict[str, ValueMaker] = {
    "city": choice(v.CITIES),
    "n": v.small_int,
    "num": v.decimal_number,
    "product": choice(
        ["laptop", "router", "headphones", "desk lamp", "subscription", "monitor", "coffee machine"]
    ),
    "weekday": choice(["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]),
}

TEMPLATES: dict[str, list[str]] = {
    "train": [
        "Hi, my email is {EMAIL}, please send the invoice there.",
        "You can reach me at {PHONE} any time after 5pm.",
        "Please charge my card {CREDIT_CARD} for the {product}.",
        "Wire the refund to IBAN {IBAN}, thanks.",
        "My SSN is {US_SSN} if you need it for the form.",
        "The server at {IP_ADDRESS} keeps timing out, can you check the logs?",
        "Patient: {PERSON}, date of birth: {DATE_OF_BIRTH}.",
        "Ship it to {ADDRESS} please.",
        "Contact: {EMAIL} / {PHONE}",
        "name,email,phone\n{PERSON},{EMAIL},{PHONE_US}",
        '{{"user": "{EMAIL}", "ip": "{IPV4}", "card_last_used": "{CREDIT_CARD}"}}',
        "Summarize this ticket: customer {PERSON} ({EMAIL}) says the {product} arrived broken.",
        "2024-03-11 10:22:01 INFO login ok user={EMAIL} src={IPV4}",
        "Can you check why {IPV6} is blocked by the firewall?",
        "I was born on {DATE_OF_BIRTH} and need to renew my passport.",
        "Call {PHONE_INTL} and ask for the billing team.",
        "Here is my social security number: {US_SSN_BARE}",
        "Translate to Spanish: please send the package to {ADDRESS}.",
        "Payment details: card {CREDIT_CARD}, exp 09/27.",
        "Please update my bank account to {IBAN} before {weekday}.",
        "Forward the report to {EMAIL} and cc {EMAIL}.",
        "Our VPN gateway is {IPV4} and the backup is {IPV4}.",
        "DOB {DATE_OF_BIRTH}, SSN {US_SSN}, phone {PHONE_US}.",
        "Write a polite reply to {PERSON} who emailed from {EMAIL} about a late delivery.",
        "The customer's card {CREDIT_CARD} was declined twice.",
        # look-alikes
        "We upgraded to version {VERSION} last night; no issues so far.",
        "Order {ORDER} was shipped on {DATE}.",
        "The total came to {PRICE} including tax.",
        "Request id {UUID} failed at {TIME}.",
        "This test card number {CARD_BAD} should be rejected by the validator.",
        "The IBAN {IBAN_BAD} failed the checksum, ask the customer again.",
        "Employee badge {SSN_BAD} is not a valid SSN format.",
        "ISBN {ISBN} is out of print.",
        "Tracking number {TRACKING}, expected {weekday}.",
        "Commit {SHA} broke the build.",
        "Multiply {num} by {n} and round to two decimals.",
        "Set the timeout to {n} seconds and retry {n} times.",
    ],
    "dev": [
        "please email {EMAIL} when the {product} is back in stock",
        "My number changed, it's now {PHONE}.",
        "Use this card: {CREDIT_CARD}",
        "IBAN: {IBAN} / BIC: DEUTDEFF",
        "SSN: {US_SSN}",
        "ssh into {IPV4} and restart nginx",
        "Date of Birth: {DATE_OF_BIRTH}",
        "Deliver to: {ADDRESS}",
        "| {PERSON} | {EMAIL} | {PHONE_INTL} |",
        "ERROR auth failed for {EMAIL} from {IP_ADDRESS}",
        "Could you draft an email to {PERSON} at {EMAIL}?",
        "the client ip {IPV6} shows up in every failed request",
        "Reimburse me to {IBAN} please, the amount is {PRICE}.",
        "my dob is {DATE_OF_BIRTH} and my ssn {US_SSN}",
        "Text me on {PHONE_US} when you arrive.",
        "Card {CREDIT_CARD} expires next month, remind me.",
        "Build {VERSION} is deployed to staging.",
        "Invoice {ORDER} dated {DATE} is unpaid.",
        "Card number {CARD_BAD} fails Luhn, use it in the negative tests.",
        "Reference {UUID}, retry after {TIME}.",
        "{IBAN_BAD} looks like an IBAN but the check digits are wrong.",
        "Chapter {n} covers sections {n} to {n}.",
        "Ping me at {EMAIL} or {PHONE}.",
    ],
    "test": [
        "Dear support, I can't log in. My account email is {EMAIL} and my mobile is {PHONE}.",
        "Refund form -- Name: {PERSON}; IBAN: {IBAN}; Amount: {PRICE}",
        "Please verify my identity: SSN {US_SSN}, born {DATE_OF_BIRTH}.",
        "kubectl logs shows connections from {IPV4}:443 being reset",
        "Billing: {CREDIT_CARD} (visa/mc), zip {n}",
        "I moved! New address: {ADDRESS}. Update my profile please.",
        "[ticket #{n}] reporter={EMAIL} phone={PHONE_INTL}",
        "Rewrite this more formally: hey, call me on {PHONE_US} or mail {EMAIL}",
        "Allow-list {IPV6} and {IPV4} on the admin panel.",
        "Her social security no. is {US_SSN_BARE}, can you file it?",
        "Is {IBAN} a German or Dutch account?",
        "Hi! Birthday: {DATE_OF_BIRTH}. Looking for a birthday discount code :)",
        "Please find attached the contract for {PERSON}, signed on {DATE}.",
        "Customer paid with {CREDIT_CARD}; send the receipt to {EMAIL}.",
        "curl -H 'X-Forwarded-For: {IPV4}' https://internal.example/health",
        "SELECT * FROM users WHERE email = '{EMAIL}';",
        "My landline is {PHONE} but I'm rarely home.",
        "Mail the documents to {ADDRESS}, attention {PERSON}.",
        "The attacker used {IPV4} and {IPV6} during the incident.",
        "For payroll: SSN {US_SSN}, account {IBAN}.",
        "Transcribe: 'my card is {CREDIT_CARD} and expiry twelve twenty six'",
        "Pls call back {PHONE_INTL}",
        # look-alikes
        "Release notes for v{VERSION}: fixed the login bug.",
        "Your order {ORDER} has shipped; tracking {TRACKING}.",
        "Revenue grew to {PRICE} in Q{n}.",
        "trace_id={UUID} span at {TIME}",
        "The QA card {CARD_BAD} must fail validation.",
        "Reject {IBAN_BAD}: invalid check digits.",
        "Invalid SSN sample for tests: {SSN_BAD}",
        "Published {DATE}, ISBN {ISBN}.",
        "git revert {SHA}",
        "Compute {num} / {n} and show your work.",
        "Meeting moved to {weekday} at {TIME}, room {n}.",
        "Install package==1.{n}.{n} and pin it.",
    ],
}
# How many records each template yields, per split.
PER_TEMPLATE = {"train": 20, "dev": 14, "test": 20}


def build(split: str, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(f"pii-{split}-{seed}")
    records = []
    for t, template in enumerate(TEMPLATES[split]):
        for i in range(PER_TEMPLATE[split]):
            filled = fill(template, rng, ENTITIES, FILLERS, LABEL_AS)
            records.append(
                {
                    "id": f"pii-{split}-{t:03d}-{i:02d}",
                    "text": filled.text,
                    "spans": filled.spans,
                    "template": f"{split}-{t:03d}",
                }
            )
    return records + handwritten(split)


# Hand-written records, marked up inline as [[ENTITY:value]]: formats and contexts the
# value generators above do not produce (written for each split separately).
HANDWRITTEN: dict[str, list[str]] = {
    "train": [
        "Reach me at [[EMAIL:John.DOE@Example.COM]] (work) anytime.",
        "tel:[[PHONE:+14155552671]]",
        "UK office: [[PHONE:+44 (0)20 7946 0958]]",
        "My cell is [[PHONE:415 555 0132]], text first.",
        "Allow [[IP_ADDRESS:192.168.1.10]]/24 and deny the rest.",
        "Card ending in 1111 was charged twice.",
        "Patient file: DOB [[DATE_OF_BIRTH:12.04.1990]], allergies: none.",
        "ssn#: [[US_SSN:536-22-8726]] (please keep private)",
        "Pay to [[IBAN:FR14 2004 1010 0505 0001 3M02 606]] by Friday.",
        "Server logs: GET /health 200 from [[IP_ADDRESS:2001:db8::1]] in 3ms",
        "Call 911 in an emergency.",
        "The room number is 1234 and the code is 5678.",
        "Python 3.11.4 and node 20.5.1 are installed.",
        "Lat/long 52.5200, 13.4050 is Berlin.",
        "Meet at 10.30 on 12.05.2024 in room 4.12.",
    ],
    "dev": [
        "Send it to [[EMAIL:ops-team@sub.example.org]].",
        "Whatsapp: [[PHONE:+55 11 91234-5678]]",
        "Visa [[CREDIT_CARD:4012888888881881]] expires 11/26.",
        "SSN [[US_SSN:219-45-6789]]",
        "ip=[[IP_ADDRESS:8.8.4.4]] port=53",
        "Build 2.0.1.7 passed.",
        "Dial extension 4021 for HR.",
    ],
    "test": [
        "Hi, it's me again. My e-mail changed to [[EMAIL:maria.garcia1987@outlook.com]]; the old one bounces.",
        "You can ring me on [[PHONE:+33 6 12 34 56 78]] or my husband on [[PHONE:+33 7 81 23 45 67]].",
        "For the booking: phone [[PHONE:(212) 555-0187]], card [[CREDIT_CARD:5425 2334 3010 9903]], exp 04/28, cvc 123.",
        "Bank details -> IBAN [[IBAN:NL91ABNA0417164300]], account holder: me.",
        "I think my SSN [[US_SSN:457-55-5463]] was used by someone else, what should I do?",
        "nginx: upstream timed out (110) while connecting to upstream, client: [[IP_ADDRESS:203.0.113.45]], server: api",
        "Failed password for root from [[IP_ADDRESS:198.51.100.23]] port 22 ssh2",
        "IPv6 neighbour [[IP_ADDRESS:fe80::1ff:fe23:4567:890a]] is unreachable",
        "date of birth - [[DATE_OF_BIRTH:1979-11-02]], place of birth Lyon",
        "Contact the landlord at [[EMAIL:landlord_rentals@gmail.com]] or [[PHONE:+49 151 23456789]].",
        "wire [[IBAN:GB33BUKB20201555555555]] ref INV-2024-0042",
        "Please use my amex [[CREDIT_CARD:3714 496353 98431]] for the deposit.",
        "Can you format this number nicely: [[PHONE:4155550199]]? It's my mobile.",
        "The printer's address is [[IP_ADDRESS:10.20.30.40]] on the guest network.",
        "Upgrade from 4.2.0.1 to 4.3.0.0 fixed it.",
        "Our revenue was 1,234,567.89 EUR in 2023.",
        "Case #100245 / order 7788990011 / ticket 55512",
        "Coordinates: 40.7128, -74.0060",
        "The ISBN-13 is 978-3-16-148410-0.",
        "Timestamp 1700000000123 in ms.",
        "Multiply 4111111111111112 by two for the test.",
        "Use 0.0.0.0 to listen on all interfaces? (that's a bind address)",
        "We expect between 555 and 1200 visitors.",
        "Invoice total: $12,450.00 due 2024-07-01.",
        "Version string: v10.0.19041.1",
    ],
}
_MARK = re.compile(r"\[\[([A-Z_]+):(.+?)\]\]")


def handwritten(split: str) -> list[dict[str, Any]]:
    records = []
    for i, marked in enumerate(HANDWRITTEN[split]):
        text, spans, cursor = "", [], 0
        for m in _MARK.finditer(marked):
            text += marked[cursor : m.start()]
            spans.append({"entity": m.group(1), "start": len(text), "end": len(text) + len(m.group(2))})
            text += m.group(2)
            cursor = m.end()
        text += marked[cursor:]
        records.append(
            {"id": f"pii-{split}-hw-{i:03d}", "text": text, "spans": spans, "template": f"{split}-hw"}
        )
    return records
