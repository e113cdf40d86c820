"""What a relayed stream said, gathered chunk by chunk.

The gateway forwards chunks as they come; this keeps just enough to record the answer
in the request log and to count its tokens when the provider reports no usage.
"""

from __future__ import annotations

from typing import Any


class StreamTranscript:
    __slots__ = ("_finish", "_parts", "_tools", "chunks")

    def __init__(self) -> None:
        self._parts: dict[int, list[str]] = {}
        self._finish: dict[int, str] = {}
        self._tools: dict[int, list[str]] = {}
        self.chunks = 0

    def add(self, chunk: dict[str, Any]) -> None:
        self.chunks += 1
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta")
            text = delta.get("content") if delta is not None else choice.get("text")
            if text:
                self._parts.setdefault(index, []).append(text)
            if delta is not None:
                for call in delta.get("tool_calls") or ():
                    fn = call.get("function") or {}
                    piece = (fn.get("name") or "") + (fn.get("arguments") or "")
                    if piece:
                        self._tools.setdefault(index, []).append(piece)
            reason = choice.get("finish_reason")
            if reason:
                self._finish[index] = reason

    def text(self) -> str:
        """All generated text (content and tool-call names/arguments), for counting."""
        pieces = [t for parts in self._parts.values() for t in parts]
        pieces += [t for parts in self._tools.values() for t in parts]
        return "".join(pieces)

    def summary(self) -> dict[str, Any]:
        """The answer as a compact OpenAI-like object, for the request log."""
        indexes = sorted(set(self._parts) | set(self._tools) | set(self._finish))
        return {
            "choices": [
                {
                    "index": i,
                    "content": "".join(self._parts.get(i, ())),
                    **({"tool_calls": "".join(self._tools[i])} if i in self._tools else {}),
                    "finish_reason": self._finish.get(i),
                }
                for i in indexes
            ]
        }


def response_text(answer: dict[str, Any]) -> str:
    """The generated text of a complete answer, joined as ``StreamTranscript.text`` joins
    a stream of the same answer (all content, then tool-call names and arguments), so
    that counting tokens gives the same number for both."""
    contents: list[str] = []
    tools: list[str] = []
    for choice in answer.get("choices") or ():
        message = choice.get("message")
        text = message.get("content") if isinstance(message, dict) else choice.get("text")
        if isinstance(text, str):
            contents.append(text)
        if isinstance(message, dict):
            for call in message.get("tool_calls") or ():
                fn = call.get("function") or {}
                tools.append((fn.get("name") or "") + (fn.get("arguments") or ""))
    return "".join(contents) + "".join(tools)
