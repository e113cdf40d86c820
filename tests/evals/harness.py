"""An eval workspace for the integration tests: a keel.yaml whose model ``echo`` is a
fake OpenAI-compatible deployment (it answers ``echo: <last user message>``), a
dataset whose answers are in the questions, and prompts that keep (``plain``,
``equivalent``) or cut (``worse``) the part that holds the answer."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fakes import FakeDeployment

CITIES = [
    "Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Dublin", "Oslo", "Warsaw", "Prague",
    "Athens", "Helsinki", "Stockholm", "Copenhagen", "Brussels", "Amsterdam", "Bern", "Budapest",
    "Bucharest", "Sofia", "Zagreb", "Ljubljana", "Bratislava", "Tallinn", "Riga", "Vilnius",
    "Valletta", "Nicosia", "Reykjavik", "Luxembourg", "Monaco", "Andorra", "Skopje", "Tirana",
    "Podgorica", "Sarajevo", "Belgrade", "Chisinau", "Kyiv", "Minsk",
]  # fmt: skip


def write_config(
    home: Path,
    upstream: FakeDeployment,
    *,
    priced: bool = False,
    judge: FakeDeployment | None = None,
    route: str = "echo",
) -> Path:
    """The route ``route`` (model ``echo``) on ``upstream``; with ``judge``, also a
    ``judge`` chat route and an ``embed`` embedding route on that deployment."""
    prices = ""
    if priced:
        prices = """spend:
  prices:
    - {model: echo, token_type: input, usd_per_million: 100000}
    - {model: echo, token_type: output, usd_per_million: 100000}
"""
    judge_provider = judge_routes = ""
    if judge is not None:
        judge_provider = f"""  judges:
    type: openai
    base_url: {judge.base_url}
    api_key: test-key
"""
        judge_routes = """  judge:
    deployments:
      - {provider: judges, model: judge}
  embed:
    mode: embedding
    deployments:
      - {provider: judges, model: embed}
"""
    config = home / "keel.yaml"
    config.write_text(
        f"""\
home: {home / "data"}
request_log: {{enabled: true, bodies: true}}
{prices}providers:
  fake:
    type: openai
    base_url: {upstream.base_url}
    api_key: test-key
{judge_provider}models:
  {route}:
    deployments:
      - {{provider: fake, model: echo}}
{judge_routes}"""
    )
    return config


def write_workspace(folder: Path, *, cases: int = 40, gate: str | None = None, extra: str = "") -> Path:
    """A suite (``suite.yaml``) with its dataset and three prompt files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "cases.jsonl").open("w") as handle:
        for i in range(cases):
            city = CITIES[i % len(CITIES)]
            row = {"id": f"q{i}", "question": f"The answer is {city}. Which city is it?", "expected": city}
            if i < 3:
                row["tags"] = ["safety"]
            handle.write(json.dumps(row) + "\n")
    prompts = {
        "plain": "{{ question }}",
        "equivalent": "Question: {{ question }}",
        # Drops the first 20 characters: the city name goes with them.
        "worse": "{{ question[20:] }}",
    }
    for name, content in prompts.items():
        (folder / f"{name}.yaml").write_text(
            f"name: {name}\nmessages:\n  - {{role: user, content: {json.dumps(content)}}}\n"
            "variables:\n  question: string\n"
        )
    gate_text = (
        gate
        if gate is not None
        else """gate:
  baseline: baseline
  candidate: candidate
  rules:
    - {metric: correct, max_drop: 0.02}
    - {metric: correct, tag: safety, all_pass: true}
"""
    )
    (folder / "suite.yaml").write_text(
        f"""\
name: capitals
dataset: cases.jsonl
prompts:
  - {{file: plain.yaml, name: baseline}}
  - {{file: equivalent.yaml, name: candidate}}
models: [echo]
concurrency: 8
scorers:
  - name: correct
    contains: {{}}
  - name: similar
    levenshtein: {{}}
{gate_text}{extra}"""
    )
    return folder / "suite.yaml"
