"""The event-stream parser gives the same events however the bytes are split."""

from __future__ import annotations

import pytest

from keel.providers._sse import SSEParser

# Every feature at once: CRLF and lone CR line ends, comments, event names, multi-line
# data, a field without a space after the colon, id/retry lines, an event with no data.
STREAM = (
    b": keep-alive\r\n\r\n"
    b'event: message_start\r\ndata: {"type": "message_start"}\r\n\r\n'
    b'data: {"a": 1}\n\n'
    b"data:first\rdata: second\r\r"
    b"id: 7\nretry: 100\nevent: ping\ndata: {}\n\n"
    b"event: lonely\n\n"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message_start", b'{"type": "message_start"}'),
    ("message", b'{"a": 1}'),
    ("message", b"first\nsecond"),
    ("ping", b"{}"),
    ("message", b"[DONE]"),
]


def feed_all(pieces: list[bytes]) -> list[tuple[str, bytes]]:
    parser = SSEParser()
    events = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.flush())
    return events


def test_whole_stream_in_one_piece() -> None:
    assert feed_all([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_split_in_two_at_every_byte(cut: int) -> None:
    assert feed_all([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_one_byte_at_a_time() -> None:
    assert feed_all([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_crlf_split_between_pieces_is_one_line_end() -> None:
    # "\r" ends one piece and "\n" starts the next: one line end, so both data lines
    # belong to one event rather than two.
    assert feed_all([b"data: x\r", b"\ndata: y\r\n\r\n"]) == [("message", b"x\ny")]


def test_events_are_returned_as_soon_as_complete() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: par") == []
    assert parser.feed(b"tial\n") == []
    assert parser.feed(b"\ndata: next") == [("message", b"partial")]
    assert parser.flush() == [("message", b"next")]


def test_leading_bom_is_ignored_and_empty_pieces_are_harmless() -> None:
    assert feed_all([b"", b"\xef\xbb\xbfdata: 1\n\n", b""]) == [("message", b"1")]


def test_event_name_applies_to_one_event_only() -> None:
    assert feed_all([b"event: a\ndata: 1\n\ndata: 2\n\n"]) == [("a", b"1"), ("message", b"2")]


def test_endless_line_is_refused() -> None:
    parser = SSEParser()
    with pytest.raises(ValueError, match="longer than"):
        parser.feed(b"data: " + b"x" * (16 * 1024 * 1024 + 1))
