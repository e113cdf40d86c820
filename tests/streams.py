"""Reading an openai SDK chat stream in tests."""

from __future__ import annotations

from typing import Any

import openai


async def stream_text_and_usage(
    client: openai.AsyncOpenAI, model: str, content: str, **kwargs: Any
) -> tuple[str, Any]:
    """Stream one chat completion with usage asked for; the text and the usage."""
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": content}],
        stream=True,
        stream_options={"include_usage": True},
        **kwargs,
    )
    text, usage = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        usage = chunk.usage or usage
    return text, usage
