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
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from keel.providers import demo_examples
from keel.providers._demo_model import DEMO_MODEL_DIRNAME
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


@dataclass
class Served:
    url: str
    env: dict[str, str]
    # The admin key `keel serve` printed on its first start.
    key: str


@pytest.fixture(scope="module")
def served(demo_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    port = _free_port()
    workdir = tmp_path_factory.mktemp("cwd")  # no ./keel.yaml here: embedded defaults
    home = tmp_path_factory.mktemp("quickstart-home")  # a first start: no database yet
    (home / "models").mkdir()
    (home / "models" / DEMO_MODEL_DIRNAME).symlink_to(demo_model_dir, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env |= {"KEEL_HOME": str(home), "KEEL_PORT": str(port), "HF_HUB_OFFLINE": "1"}
    output = workdir / "serve.out"
    with output.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "keel", "serve", "--log-level", "warning"],
            cwd=workdir,
            env=env,
            stdout=sink,
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
        assert proc.poll() is None, output.read_text()
    keys = [line for line in output.read_text().splitlines() if line.startswith("sk-keel-")]
    assert len(keys) == 1, f"the first start prints one admin key: {output.read_text()}"
    yield Served(url, env, keys[0])
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)


def test_demo_model_answers_through_the_sdk(served: Served) -> None:
    url = served.url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=served.key, max_retries=0)
    assert {m.id for m in client.models.list()} == {"keel-demo", "all-minilm-l6-v2"}
    example = demo_examples()[0]
    reply = client.chat.completions.create(
        model="keel-demo", messages=[{"role": "user", "content": example.question}], max_tokens=120
    )
    answer = reply.choices[0].message.content or ""
    assert _overlap(answer, example.answer) >= 0.8, (example, answer)
    assert reply.usage is not None and reply.usage.completion_tokens > 0


async def test_async_and_streaming(served: Served) -> None:
    url = served.url
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=served.key, max_retries=0)
    example = demo_examples()[1]
    reply = await client.chat.completions.create(
        model="keel-demo", messages=[{"role": "user", "content": example.question}], max_tokens=120
    )
    assert _overlap(reply.choices[0].message.content or "", example.answer) >= 0.8
    text, usage = await stream_text_and_usage(client, "keel-demo", example.question, max_tokens=120)
    await client.close()
    assert text == reply.choices[0].message.content, "greedy decoding: streaming must say the same"
    assert usage is not None and usage.completion_tokens > 0


def test_embeddings(served: Served) -> None:
    url = served.url
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=served.key, max_retries=0)
    data = client.embeddings.create(model="all-minilm-l6-v2", input=["hello world", "goodbye"]).data
    assert [len(d.embedding) for d in data] == [384, 384]
    assert abs(sum(x * x for x in data[0].embedding) - 1) < 1e-3


def test_calls_without_a_key_are_refused(served: Served) -> None:
    client = openai.OpenAI(base_url=f"{served.url}/v1", api_key="sk-keel-not-a-real-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="keel-demo", messages=[{"role": "user", "content": "hi"}])


def test_every_call_is_in_keel_logs(served: Served) -> None:
    url, env = served.url, served.env
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=served.key, max_retries=0)
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
    # Calls refused for a bad key are logged too (status 401, no key id); these are the others.
    chats = [r for r in rows if r["endpoint"] == "chat.completions" and r["key_id"] is not None]
    assert len(chats) >= 2
    assert any(r["endpoint"] == "embeddings" for r in rows)
    for row in chats:
        assert row["status"] == 200
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0
        assert row["usage_source"] == "reported"
        assert row["latency_ms"] > 0
    assert any(r["stream"] and r["ttft_ms"] for r in chats)
