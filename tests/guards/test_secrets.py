"""Secrets: provider keys, private keys, JWTs, passwords, keyed values; placeholders not."""

from __future__ import annotations

import pytest

from keel.guards import build_scanner

OPENAI = "sk-proj-" + "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7dEf0hIj3kLm6n"
ANTHROPIC = "sk-ant-api03-" + "x" * 20 + "Y7z" * 20 + "AA"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
PRIVATE_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----"


def found(text: str) -> list[tuple[str, str | None, str]]:
    return [(s.entity, s.kind, text[s.start : s.end]) for s in build_scanner("secrets").scan(text).spans]


@pytest.mark.parametrize(
    ("text", "entity", "kind", "value"),
    [
        (f"export OPENAI_API_KEY={OPENAI}", "API_KEY", "openai", OPENAI),
        (f"key {ANTHROPIC} here", "API_KEY", "anthropic", ANTHROPIC),
        ("aws AKIAIOSFODNN7EXAMPL3 id", "API_KEY", "aws", "AKIAIOSFODNN7EXAMPL3"),
        ("ghp_" + "a1B2" * 9, "API_KEY", "github", "ghp_" + "a1B2" * 9),
        ("xoxb-1234567890-1234567890-abcdefghijABCDEFGHIJ1234", "API_KEY", "slack", None),
        ("sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc", "API_KEY", "stripe", None),
        ("AIza" + "SyA-1234567890abcdefghijklmnopqrstu", "API_KEY", "google", None),
        (f"Authorization: Bearer {JWT}", "JWT", None, JWT),
        (f"here:\n{PRIVATE_KEY}\nthanks", "PRIVATE_KEY", None, PRIVATE_KEY),
        ("postgres://app:S3cretPass!@db.example.com/app", "PASSWORD", "url", "S3cretPass!"),
        ("password: hunter2x", "PASSWORD", "assignment", "hunter2x"),
        ("mysql -u root -pTr0ub4dor&3 -h db", "PASSWORD", "cli", "Tr0ub4dor&3"),
        ('api_secret = "a8f9Kq2LmZ7xP0vR3tYw"', "SECRET", "keyed", "a8f9Kq2LmZ7xP0vR3tYw"),
        ("the token is 9f8e7d6c5b4a3f2e1d0c", "SECRET", "keyed", "9f8e7d6c5b4a3f2e1d0c"),
    ],
)
def test_secrets_are_found(text: str, entity: str, kind: str | None, value: str | None) -> None:
    spans = found(text)
    assert len(spans) == 1, spans
    assert spans[0][0] == entity
    if kind is not None:
        assert spans[0][1] == kind
    if value is not None:
        assert spans[0][2] == value


@pytest.mark.parametrize(
    "text",
    [
        "export OPENAI_API_KEY=${OPENAI_API_KEY}",
        "api_key: <your-api-key>",
        "token = os.environ['TOKEN']",
        "password: ********",
        "secret: none",
        "Use scikit-learn, not sk-learn.",
        "request_id: 3f2b9c1e-8d4a-4e6b-9f0a-1c2d3e4f5a6b",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "The password must be at least 12 characters long.",
        "the token bucket refills 50 tokens per second",
    ],
)
def test_placeholders_and_ids_are_not_secrets(text: str) -> None:
    assert found(text) == []


def test_result_never_holds_the_secret() -> None:
    result = build_scanner("secrets").scan(f"key={OPENAI}")
    assert OPENAI not in repr(result) and OPENAI not in str(result.to_dict())
