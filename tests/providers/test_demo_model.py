"""The demo model: deterministic, atomic, rebuilt only when its data changes, and it
answers its FAQ."""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from keel.providers import _demo_model
from keel.providers._demo_model import (
    DEFAULT_STEPS,
    MANIFEST_NAME,
    build_demo_model,
    demo_data_hash,
    demo_examples,
    ensure_demo_model,
    read_manifest,
)

# Building the full demo model (session fixture) can take minutes on a busy machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", text.lower())


def token_f1(answer: str, expected: str) -> float:
    got, want = Counter(_words(answer)), Counter(_words(expected))
    common = sum((got & want).values())
    if not common:
        return 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return 2 * precision * recall / (precision + recall)


def _weights_hash(model_dir: Path) -> str:
    return hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()


def test_training_data_is_packaged_and_complete() -> None:
    examples = demo_examples()
    assert len(examples) >= 60
    assert len({e.question for e in examples}) == len(examples)
    assert all(e.answer and len(e.paraphrases) >= 2 for e in examples)


def test_same_seed_same_model_other_seed_other_model(tmp_path: Path) -> None:
    first = build_demo_model(tmp_path / "a", seed=0, steps=3, progress=False)
    second = build_demo_model(tmp_path / "b", seed=0, steps=3, progress=False)
    other = build_demo_model(tmp_path / "c", seed=1, steps=3, progress=False)
    manifests = [read_manifest(d) for d in (first, second, other)]
    assert all(m is not None for m in manifests)
    assert manifests[0]["final_loss"] == manifests[1]["final_loss"]  # type: ignore[index]
    assert _weights_hash(first) == _weights_hash(second)
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    assert _weights_hash(first) != _weights_hash(other)
    assert manifests[0]["final_loss"] != manifests[2]["final_loss"]  # type: ignore[index]


def test_failed_build_leaves_the_old_model_and_no_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = build_demo_model(tmp_path / "keel-demo", steps=1, progress=False)
    before = _weights_hash(target)

    def crash(*args: object, **kwargs: object) -> float:
        raise RuntimeError("power cut")

    monkeypatch.setattr(_demo_model, "_train", crash)
    with pytest.raises(RuntimeError, match="power cut"):
        build_demo_model(target, seed=5, steps=1, progress=False)
    assert _weights_hash(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keel-demo"]


def test_ensure_builds_once_then_again_when_the_data_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_demo_model, "DEFAULT_STEPS", 1)
    built = ensure_demo_model(tmp_path, progress=False)
    assert built == tmp_path / "models" / "keel-demo"
    manifest_file = built / MANIFEST_NAME
    first = manifest_file.read_text()
    assert json.loads(first)["data_hash"] == demo_data_hash()

    assert ensure_demo_model(tmp_path, progress=False) == built
    assert manifest_file.read_text() == first  # not rebuilt

    monkeypatch.setattr(_demo_model, "demo_data_hash", lambda: "changed")
    ensure_demo_model(tmp_path, progress=False)
    assert json.loads(manifest_file.read_text())["data_hash"] == "changed"


def test_full_model_manifest(demo_model_dir: Path) -> None:
    manifest = read_manifest(demo_model_dir)
    assert manifest is not None
    assert manifest["steps"] == DEFAULT_STEPS
    assert manifest["data_hash"] == demo_data_hash()
    assert manifest["final_loss"] < 0.1
    assert manifest["vocab_size"] <= 1000
    size = sum(p.stat().st_size for p in demo_model_dir.iterdir())
    assert size < 10 * 1024 * 1024


def test_full_model_answers_its_faq(demo_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(demo_model_dir, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(demo_model_dir, local_files_only=True).eval()
    scores = []
    for example in demo_examples():
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": example.question}], tokenize=False, add_generation_prompt=True
        )
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**ids, max_new_tokens=128, do_sample=False)
        answer = tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)
        scores.append(token_f1(answer, example.answer))
    good = sum(score >= 0.8 for score in scores) / len(scores)
    assert good >= 0.8, f"only {good:.0%} of answers reach F1 0.8 (mean {sum(scores) / len(scores):.2f})"
