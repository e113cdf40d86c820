"""The README's promise: `keel serve` with no config at all serves the demo chat model and
embeddings to the official openai SDK (sync, async, streaming), and `keel logs` shows
every call with its usage and latency."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from keel.providers import demo_examples
from tests.streams import stream_text_and_usage

pytestmark = pytest.mark.timeout(900)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _overlap(answer: str, expected: str) -> float:
    got, want = set(answer.lower().split()), set(expected.lower().split())
    return len(got & want) / len(want)


@pytest.fixture(scope="module")
def served(demo_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    port = _free_port()
    workdir = tmp_path_factory.mktemp("cwd")  # no ./keel.yaml here: embedded defaults
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env |= {"KEEL_HOME": str(demo_home), "KEEL_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "keel", "serve", "--log-level", "warning"],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health/ready").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
    yield url, env
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def test_demo_model_answers_through_the_sdk(served: tuple[str, dict[str, str]]) -> None:
    url, _ = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    assert {m.id for m in client.models.list()} == {"keel-demo", "all-minilm-l6-v2"}
    example = demo_examples()[0]
    reply = client.chat.completions.create(
        model="keel-demo", messages=[{"role": "user", "content": example.question}], max_tokens=120
    )
    answer = reply.choices[0].message.content or ""
    assert _overlap(answer, example.answer) >= 0.8, (example, answer)
    assert reply.usage is not None and reply.usage.completion_tokens > 0


async def test_async_and_streaming(served: tuple[str, dict[str, str]]) -> None:
    url, _ = served
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    example = demo_examples()[1]
    reply = await client.chat.completions.create(
        model="keel-demo", messages=[{"role": "user", "content": example.question}], max_tokens=120
    )
    assert _overlap(reply.choices[0].message.content or "", example.answer) >= 0.8
    text, usage = await stream_text_and_usage(client, "keel-demo", example.question, max_tokens=120)
    await client.close()
    assert text == reply.choices[0].message.content, "greedy decoding: streaming must say the same"
    assert usage is not None and usage.completion_tokens > 0


def test_embeddings(served: tuple[str, dict[str, str]]) -> None:
    url, _ = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    data = client.embeddings.create(model="all-minilm-l6-v2", input=["hello world", "goodbye"]).data
    assert [len(d.embedding) for d in data] == [384, 384]
    assert abs(sum(x * x for x in data[0].embedding) - 1) < 1e-3


def test_every_call_is_in_keel_logs(served: tuple[str, dict[str, str]]) -> None:
    url, env = served
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    client.chat.completions.create(model="keel-demo", messages=[{"role": "user", "content": "What is Keel?"}])
    list(
        client.chat.completions.create(
            model="keel-demo", messages=[{"role": "user", "content": "What is Keel?"}], stream=True
        )
    )
    client.embeddings.create(model="all-minilm-l6-v2", input="logged too")
    time.sleep(1.0)  # the request log writer flushes every 250 ms
    out = subprocess.run(
        [sys.executable, "-m", "keel", "logs", "--json", "--limit", "100"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = json.loads(out)
    chats = [r for r in rows if r["endpoint"] == "chat.completions"]
    assert len(chats) >= 2
    assert any(r["endpoint"] == "embeddings" for r in rows)
    for row in chats:
        assert row["status"] == 200
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["usage_source"] == "reported"
        assert row["latency_ms"] > 0
    assert any(r["stream"] and r["ttft_ms"] for r in chats)
