"""Output and generic scanners: JSON and schemas, refusals, canaries and verbatim
leaks, URL allow-lists, banned substrings and topics, regex, token limits, language."""

from __future__ import annotations

import pytest

from keel.guards import ScanContext, build_scanner, detect_language, new_canary, plant_canary
from keel.guards._generic import estimate_tokens

SCHEMA = {
    "type": "object",
    "required": ["name", "age"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0},
        "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "uniqueItems": True},
        "kind": {"$ref": "#/$defs/kind"},
    },
    "$defs": {"kind": {"anyOf": [{"const": "x"}, {"type": "null"}]}},
}


@pytest.mark.parametrize(
    ("text", "verdict", "reason"),
    [
        ('{"name": "Ann", "age": 3}', "pass", ""),
        ('```json\n{"name": "Ann", "age": 3, "tags": ["a"], "kind": null}\n```', "pass", ""),
        ('{"name": "Ann"', "block", "not valid JSON"),
        ('{"name": "", "age": -1}', "block", "$.name: shorter than 1"),
        ('{"name": "Ann", "age": 3.5}', "block", "$.age: expected integer"),
        ('{"name": "Ann", "age": 3, "extra": 1}', "block", "unexpected property 'extra'"),
        ('{"name": "Ann", "age": 3, "tags": ["a", "a"]}', "block", "not unique"),
        ('{"name": "Ann", "age": 3, "kind": "y"}', "block", "matches none of anyOf"),
        ('{"age": true, "name": "x"}', "block", "$.age: expected integer, got boolean"),
    ],
)
def test_json_schema(text: str, verdict: str, reason: str) -> None:
    result = build_scanner("json", {"schema": SCHEMA}).scan(text)
    assert result.verdict == verdict
    assert reason in result.reason


def test_json_without_schema_and_unsupported_keyword() -> None:
    assert build_scanner("json").scan("[1, 2]").verdict == "pass"
    from keel.core import ConfigError

    with pytest.raises(ConfigError, match="'if' at # is not supported"):
        build_scanner("json", {"schema": {"if": {}}})


@pytest.mark.parametrize(
    ("text", "refused"),
    [
        ("I'm sorry, but I can't help with that.", True),
        ("As an AI language model, I cannot provide that.", True),
        ("I must decline this request.", True),
        ("I must respectfully decline to write that.", True),
        ("That goes against my guidelines.", True),
        ("I'm sorry to hear that. Here is a refund code.", False),
        ("You can't divide by zero, so return None.", False),
        ("I can't wait to see it!", False),
    ],
)
def test_refusal(text: str, refused: bool) -> None:
    assert build_scanner("refusal").scan(text).violation is refused


def test_canary_token_and_verbatim_system_prompt() -> None:
    token = new_canary()
    assert token.startswith("kc-") and token in plant_canary("You are a bot.", token)
    system = (
        "You are Max, the support assistant for Acme. Never discuss pricing with customers under any case."
    )
    scanner = build_scanner("canary", {"min_words": 8})
    context = ScanContext(stage="output", canary=token, system_prompt=system)
    assert scanner.scan("Happy to help with your order!", context).verdict == "pass"
    leak = scanner.scan(f"Sure: {token.upper()}", context)
    assert leak.violation and leak.spans[0].entity == "CANARY"
    verbatim = scanner.scan(
        "My instructions: you are Max, the support assistant for Acme. Never discuss pricing, ok?", context
    )
    assert verbatim.violation and verbatim.spans[0].entity == "SYSTEM_PROMPT"
    fixed = build_scanner("canary", {"token": "my-fixed-canary"})
    assert fixed.scan("leak my-fixed-canary").violation


def test_urls_outside_allow_list() -> None:
    scanner = build_scanner("urls", {"allow": ["example.com"]})
    text = "see https://docs.example.com/x, http://example.com and https://evil.io/p?q=1 or www.bad.net."
    result = scanner.scan(text)
    assert [text[s.start : s.end] for s in result.spans] == ["https://evil.io/p?q=1", "www.bad.net"]
    assert (
        build_scanner("urls", {"allow": ["example.com"], "schemes": ["https"]})
        .scan("http://example.com")
        .violation
    )
    assert not scanner.scan("no links here").violation


def test_banned_substrings_topics_and_regex() -> None:
    banned = build_scanner("banned_substrings", {"substrings": ["ass", "Project Falcon"]})
    assert not banned.scan("a class of its own").violation
    assert banned.scan("what is project   falcon?").violation
    topics = build_scanner(
        "banned_topics", {"topics": {"weapons": ["rifle", "ammunition"], "medical": ["diagnosis"]}}
    )
    result = topics.scan("Which rifle should I buy?")
    assert result.violation and result.spans[0].kind == "weapons"
    regex = build_scanner("regex", {"patterns": {"TICKET": r"TCK-(?P<n>\d+)"}, "ignore_case": True})
    assert [s.entity for s in regex.scan("see tck-12").spans] == ["TICKET"]


def test_max_tokens() -> None:
    assert estimate_tokens("Hello, world! 12345") == 6
    scanner = build_scanner("max_tokens", {"limit": 10})
    assert scanner.scan("short text").verdict == "pass"
    result = scanner.scan("word " * 20)
    assert result.violation and "over the limit of 10" in result.reason


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Could you please help me write a letter to my landlord about the heating?", "en"),
        ("Kannst du mir bitte helfen, einen Brief an meinen Vermieter zu schreiben?", "de"),
        ("Peux-tu m'aider à écrire une lettre à mon propriétaire ?", "fr"),
        ("¿Puedes ayudarme a escribir una carta para mi casero?", "es"),
        ("Можешь помочь мне написать письмо арендодателю?", "ru"),
        ("你能帮我给房东写封信吗？", "zh"),  # noqa: RUF001
        ("ok", None),
    ],
)
def test_language_detection(text: str, language: str | None) -> None:
    assert detect_language(text)[0] == language


def test_language_scanner() -> None:
    scanner = build_scanner("language", {"allow": ["en", "de"]})
    assert scanner.scan("This is an English sentence about the weather today.").verdict == "pass"
    result = scanner.scan("Ceci est une phrase en français sur le temps qu'il fait.")
    assert result.violation and "fr" in result.reason
    assert scanner.scan("ok").verdict == "pass"  # too short to decide
