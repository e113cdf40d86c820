"""Typed placeholders: one per distinct value, restorable, also across stream pieces."""

from __future__ import annotations

from keel.guards import Span, StreamRestorer, redact, restore


def test_redact_numbers_placeholders_per_entity_and_reuses_them() -> None:
    text = "a@x.io wrote to b@y.io and a@x.io again; card 4111111111111111"
    spans = [
        Span("EMAIL", 0, 6),
        Span("EMAIL", 16, 22),
        Span("EMAIL", 27, 33),
        Span("CREDIT_CARD", 46, 62),
    ]
    redacted, mapping = redact(text, spans)
    assert redacted == "<EMAIL_1> wrote to <EMAIL_2> and <EMAIL_1> again; card <CREDIT_CARD_1>"
    assert mapping == {"<EMAIL_1>": "a@x.io", "<EMAIL_2>": "b@y.io", "<CREDIT_CARD_1>": "4111111111111111"}
    assert restore(redacted, mapping) == text


def test_a_shared_mapping_continues_numbering_and_reuses_values() -> None:
    mapping: dict[str, str] = {}
    first, _ = redact("a@x.io", [Span("EMAIL", 0, 6)], mapping)
    second, _ = redact("b@y.io or a@x.io", [Span("EMAIL", 0, 6), Span("EMAIL", 10, 16)], mapping)
    assert (first, second) == ("<EMAIL_1>", "<EMAIL_2> or <EMAIL_1>")


def test_overlapping_spans_keep_the_first_longest() -> None:
    redacted, mapping = redact("abcdef", [Span("X", 0, 4), Span("Y", 2, 6), Span("Z", 0, 2)])
    assert redacted == "<X_1>ef" and list(mapping) == ["<X_1>"]


def test_restore_leaves_unknown_placeholders() -> None:
    assert restore("hi <EMAIL_1> and <EMAIL_9>", {"<EMAIL_1>": "a@x.io"}) == "hi a@x.io and <EMAIL_9>"


def test_stream_restorer_joins_a_placeholder_cut_in_two() -> None:
    restorer = StreamRestorer({"<EMAIL_1>": "a@x.io", "<PHONE_12>": "+1 415 555 2671"})
    pieces = ["Write to <EM", "AIL_1> or call <PHO", "NE_1", "2> now <", "b"]
    out = "".join(restorer.feed(p) for p in pieces) + restorer.flush()
    assert out == "Write to a@x.io or call +1 415 555 2671 now <b"
    # A lone "<" that is no placeholder is held only while it could still become one.
    assert restorer.feed("x < y") == "x < y"
