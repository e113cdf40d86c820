"""Output placeholders never collide with the request's, which restoring puts back."""

from __future__ import annotations

from keel.core import PolicySettings, ScannerSettings
from keel.guards import build_policy


def test_an_email_the_model_adds_is_not_restored_as_the_users() -> None:
    policy = build_policy(
        "pii-redact",
        PolicySettings(
            action="redact",
            restore=True,
            input=[ScannerSettings(scanner="pii")],
            output=[ScannerSettings(scanner="pii")],
        ),
    )
    request = {"messages": [{"role": "user", "content": "Write to alice@example.com please."}]}
    sent, incoming = policy.guard_request(request)
    assert "alice@example.com" not in str(sent)
    answer = {
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Try bob@example.org or <EMAIL_1>."},
                "finish_reason": "stop",
            }
        ]
    }
    client, _ = policy.guard_response(answer, None, incoming.redactions)
    text = client["choices"][0]["message"]["content"]
    assert text.count("alice@example.com") == 1
    assert "bob@example.org" not in text


def test_the_stream_guard_numbers_after_the_request_too() -> None:
    policy = build_policy(
        "pii-redact",
        PolicySettings(
            action="redact",
            restore=True,
            input=[ScannerSettings(scanner="pii")],
            output=[ScannerSettings(scanner="pii")],
            stream_holdback=64,
        ),
    )
    _, incoming = policy.guard_request({"messages": [{"role": "user", "content": "Mail alice@example.com"}]})
    guard = policy.stream(None, incoming.redactions)
    released = [guard.feed("Try bob@example.org or <EMAIL_1>.").text]
    final = guard.finish()
    released.append(final.text)
    text = "".join(released)
    assert text.count("alice@example.com") == 1
    assert "bob@example.org" not in text
