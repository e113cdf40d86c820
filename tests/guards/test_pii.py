"""PII detectors: each entity found where it is, look-alikes not found."""

from __future__ import annotations

import pytest

from keel.guards import build_scanner
from keel.guards._pii import card_brand, iban_valid, luhn_valid, ssn_valid


def found(text: str, **settings: object) -> list[tuple[str, str]]:
    result = build_scanner("pii", settings).scan(text)
    return [(s.entity, text[s.start : s.end]) for s in result.spans]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail bob.smith+tag@mail.example.co.uk now", [("EMAIL", "bob.smith+tag@mail.example.co.uk")]),
        ("call +44 20 7946 0958 today", [("PHONE", "+44 20 7946 0958")]),
        ("call (415) 555-2671 today", [("PHONE", "(415) 555-2671")]),
        ("phone: 4155552671", [("PHONE", "4155552671")]),
        ("0049 30 901820 is the office", [("PHONE", "0049 30 901820")]),
        ("card 4111 1111 1111 1111 exp 09/27", [("CREDIT_CARD", "4111 1111 1111 1111")]),
        ("amex 3782-822463-10005", [("CREDIT_CARD", "3782-822463-10005")]),
        ("IBAN DE89 3704 0044 0532 0130 00 thanks", [("IBAN", "DE89 3704 0044 0532 0130 00")]),
        ("iban GB82WEST12345698765432", [("IBAN", "GB82WEST12345698765432")]),
        ("ssn 536-22-8726", [("US_SSN", "536-22-8726")]),
        ("my social security number is 536228726", [("US_SSN", "536228726")]),
        ("host 203.0.113.7 is down", [("IP_ADDRESS", "203.0.113.7")]),
        ("from 2001:db8:85a3::8a2e:370:7334 we saw", [("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")]),
        ("DOB: 03/14/1985", [("DATE_OF_BIRTH", "03/14/1985")]),
        ("I was born on March 3, 1985 in Ohio", [("DATE_OF_BIRTH", "March 3, 1985")]),
        ("ship to 221 Baker Street, London NW1 6XE", [("ADDRESS", "221 Baker Street, London NW1 6XE")]),
        ("My name is Ada Lovelace.", [("PERSON", "Ada Lovelace")]),
    ],
)
def test_entities_are_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3.4 shipped",  # a version, not a host
        "pip install foo==10.2.3.1",
        "see section 3.1.4.1",
        "card 4111 1111 1111 1112 fails Luhn",
        "IBAN DE89 3704 0044 0532 0130 01 has a bad checksum",
        "ssn 000-12-3456 and 666-12-3456 and 912-34-5678 are never issued",
        "order 4155552671 shipped",  # an order number, not a phone
        "invoice #4155552671",
        "the total is $4,155.55 and 2024-01-15 was the date",
        "trace 3f2b9c1e-8d4a-4e6b-9f0a-1c2d3e4f5a6b at 10:30:45",
        "Dear Sir or Madam, please advise.",
        "std::vector<int> v; a::b",
        "meeting 2023-2024 budget",
    ],
)
def test_look_alikes_are_not_found(text: str) -> None:
    assert found(text) == []


def test_allow_list_and_private_ips_settings() -> None:
    assert found("write to support@acme.io", allow=["SUPPORT@acme.io"]) == []
    assert found("db at 10.0.0.12 and 8.8.8.8", ignore_private_ips=True) == [("IP_ADDRESS", "8.8.8.8")]
    assert found("card 4111 1111 1111 1111, mail a@b.io", entities=["EMAIL"]) == [("EMAIL", "a@b.io")]


def test_regions_decide_national_phone_numbers() -> None:
    assert found("Tel. 030 901820") == []
    assert found("Tel. 030 901820", regions=["DE"]) == [("PHONE", "030 901820")]


def test_checks() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert card_brand("378282246310005") == "amex" and card_brand("1234567812345678") is None
    assert iban_valid("DE89370400440532013000") and not iban_valid("DE89370400440532013001")
    assert ssn_valid("536", "22", "8726") and not ssn_valid("078", "05", "1120")


def test_overlapping_findings_keep_the_more_specific_entity() -> None:
    # A card number is also a digit run a phone pattern could take.
    assert found("pay with 5555555555554444") == [("CREDIT_CARD", "5555555555554444")]
