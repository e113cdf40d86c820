"""Incremental parser for ``text/event-stream`` bodies (server-sent events).

Upstream bytes arrive in arbitrary TCP-sized pieces: an event, a line, even a ``\\r\\n``
pair may be split across two reads. ``SSEParser.feed`` takes each piece as it comes and
returns the events it completed. It works on ``bytes`` with C-level ``split``/``find``
(no regex, no per-line decode), because it runs for every chunk of every stream.

Follows the WHATWG event-stream rules that matter to LLM APIs: ``\\n``, ``\\r\\n`` and
``\\r`` line ends, several ``data:`` lines joined with ``\\n``, ``:`` comment lines
(keep-alives) ignored, ``event:`` names (Anthropic's stream uses them), one optional
space after the colon, a leading BOM, and a blank line dispatching the event.
"""

from __future__ import annotations

DEFAULT_EVENT = "message"
# An upstream that never sends a line end would otherwise grow the buffer without bound.
MAX_PENDING_BYTES = 16 * 1024 * 1024

SSEEvent = tuple[str, bytes]


class SSEParser:
    """Feed body pieces, get back complete ``(event name, data bytes)`` events."""

    __slots__ = ("_data", "_event", "_skip_lf", "_started", "_tail")

    def __init__(self) -> None:
        self._tail = b""  # incomplete last line of the previous piece
        self._data: list[bytes] = []  # data lines of the event being read
        self._event = DEFAULT_EVENT
        self._skip_lf = False  # previous piece ended in "\r": a leading "\n" completes it
        self._started = False

    def feed(self, piece: bytes) -> list[SSEEvent]:
        if not piece:
            return []
        if not self._started:
            self._started = True
            if piece.startswith(b"\xef\xbb\xbf"):
                piece = piece[3:]
        if self._skip_lf:
            self._skip_lf = False
            if piece[:1] == b"\n":
                piece = piece[1:]
        if b"\r" in piece:
            self._skip_lf = piece.endswith(b"\r")
            piece = piece.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._tail:
            piece = self._tail + piece
        lines = piece.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_PENDING_BYTES:
            raise ValueError(f"event-stream line longer than {MAX_PENDING_BYTES} bytes")

        events: list[SSEEvent] = []
        data = self._data
        for line in lines:
            if not line:
                if data:
                    events.append((self._event, data[0] if len(data) == 1 else b"\n".join(data)))
                    data.clear()
                self._event = DEFAULT_EVENT
            elif line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[0] == 0x3A:  # ":" starts a comment (keep-alive)
                continue
            else:
                name, _, value = line.partition(b":")
                if value[:1] == b" ":
                    value = value[1:]
                if name == b"event":
                    self._event = value.decode("utf-8", "replace") or DEFAULT_EVENT
                elif name == b"data":  # "data" with no colon: an empty data line
                    data.append(value)
                # "id" and "retry" matter to browsers reconnecting, not to a proxy.
        return events

    def flush(self) -> list[SSEEvent]:
        """Events completed by the end of the body (a last event without blank line)."""
        events = self.feed(b"\n\n") if (self._tail or self._data) else []
        self._tail = b""
        return events
