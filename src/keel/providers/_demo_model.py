"""Keel's built-in demo chat model: built and trained here, offline, from the repository.

What it is: a Llama-architecture model (4 layers, 128 wide, about 1M parameters) with
a 1,000-token byte-level BPE vocabulary, both trained from scratch on
``keel/data/demo_faq.jsonl`` (about sixty questions about Keel, with paraphrases). It
memorises those answers: greedy decoding of a trained question gives its answer word
for word, a close paraphrase usually does too. It copes with a system message and
several turns only in the sense that it was shown them in training and ignores them.

What it is not: a language model that knows anything else. Ask it something off the
FAQ and it answers with the nearest FAQ answer, or with noise. It exists so that
``keel serve`` answers a chat call with no network and no download, and so that
tests, evaluations and fine-tuning have a real transformers model to run against.

The build is deterministic for a given seed on a given torch build (fixed seed, one
thread count, deterministic algorithms) and atomic: it is written into a temporary
directory and renamed into place, with a ``keel-demo.json`` manifest (seed, steps,
final loss, data hash) written last. ``ensure_demo_model`` rebuilds only when the
model is missing or the training data (or this recipe) changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from keel.core import MissingPrerequisite

DEMO_MODEL_DIRNAME = "keel-demo"
MANIFEST_NAME = "keel-demo.json"
# Bumped whenever the recipe below changes what gets built: part of the data hash, so
# an existing model built by an older recipe is rebuilt.
RECIPE_VERSION = 1

DEFAULT_STEPS = 400
_BATCH_SIZE = 16
_LEARNING_RATE = 3e-3
_WARMUP_STEPS = 30
_VOCAB_SIZE = 1000
_TRAIN_THREADS = 2

BOS, EOS, PAD = "<|bos|>", "<|end|>", "<|pad|>"
SYSTEM, USER, ASSISTANT = "<|system|>", "<|user|>", "<|assistant|>"
SPECIAL_TOKENS = [PAD, BOS, EOS, SYSTEM, USER, ASSISTANT]

# Any role other than system and assistant (user, tool, ...) is shown as a user turn:
# the model knows no tools, so a tool result is just more text to it.
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>"
    "{% elif message['role'] == 'assistant' %}<|assistant|>"
    "{% else %}<|user|>{% endif %}"
    "{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

# Shown in training so that a system message at inference does not derail the model.
_SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are the Keel assistant. Answer briefly.",
    "Answer questions about Keel.",
)


@dataclass(frozen=True, slots=True)
class DemoExample:
    """One FAQ entry the demo model is trained on."""

    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()


def demo_data_bytes() -> bytes:
    """The training data file shipped in the package."""
    return resources.files("keel").joinpath("data", "demo_faq.jsonl").read_bytes()


def demo_examples() -> list[DemoExample]:
    """The FAQ the demo model answers (the questions tests and demos ask)."""
    examples = []
    for line in demo_data_bytes().decode("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            examples.append(DemoExample(row["question"], row["answer"], tuple(row.get("paraphrases", ()))))
    return examples


def demo_data_hash() -> str:
    """Identifies what a build learns from: the data and the recipe version."""
    digest = hashlib.sha256(demo_data_bytes())
    digest.update(f"recipe={RECIPE_VERSION}".encode())
    return digest.hexdigest()


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    """The manifest of a built model, or None when there is no complete build."""
    try:
        manifest: dict[str, Any] = json.loads((model_dir / MANIFEST_NAME).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest


def ensure_demo_model(home: Path, progress: bool = True) -> Path:
    """The demo model's directory under ``home``, built first if missing or stale.

    Safe to call from several threads or processes: builds are serialised by a lock
    file, and a caller that waited finds the model its predecessor built.
    """
    target = home / "models" / DEMO_MODEL_DIRNAME
    if _is_current(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target.parent / f".{DEMO_MODEL_DIRNAME}.lock"):
        if not _is_current(target):
            build_demo_model(target, progress=progress)
    return target


def build_demo_model(
    target_dir: Path, *, seed: int = 0, steps: int | None = None, progress: bool = True
) -> Path:
    """Train the demo model from the packaged FAQ and save it to ``target_dir``.

    ``steps`` defaults to ``DEFAULT_STEPS`` (one to two minutes on two idle CPU cores,
    several when they are busy); a few
    steps give a quick, useless but well-formed model for tests. Replaces an existing
    model at ``target_dir`` only once the new one is complete.
    """
    torch, transformers = _import_training_deps()
    steps = DEFAULT_STEPS if steps is None else steps
    if steps < 1:
        raise ValueError("steps must be at least 1")
    target_dir = Path(target_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = target_dir.parent / f".{target_dir.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        examples = demo_examples()
        tokenizer = _train_tokenizer(examples, transformers)
        started = time.monotonic()
        with _deterministic_torch(torch, seed):
            model = _new_model(tokenizer, torch, transformers)
            final_loss = _train(model, tokenizer, examples, torch, seed=seed, steps=steps, progress=progress)
        train_seconds = time.monotonic() - started
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        manifest = {
            "name": DEMO_MODEL_DIRNAME,
            "seed": seed,
            "steps": steps,
            "final_loss": final_loss,
            "data_hash": demo_data_hash(),
            "recipe": RECIPE_VERSION,
            "examples": len(examples),
            "parameters": sum(p.numel() for p in model.parameters()),
            "vocab_size": len(tokenizer),
            "train_seconds": round(train_seconds, 2),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        }
        # Written last: a directory with a manifest is a complete model.
        (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n", "utf-8")
        _swap_into_place(staging, target_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target_dir


def _is_current(model_dir: Path) -> bool:
    manifest = read_manifest(model_dir)
    return manifest is not None and manifest.get("data_hash") == demo_data_hash()


def _swap_into_place(staging: Path, target: Path) -> None:
    # POSIX rename cannot replace a non-empty directory, so move the old one aside
    # first; the window without a model is two renames long.
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # not POSIX: builds are not serialised across processes
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _import_training_deps() -> tuple[Any, Any]:
    try:
        import tokenizers  # noqa: F401
        import torch
        import transformers
    except ImportError as exc:
        raise MissingPrerequisite(
            f"building the demo model needs {exc.name}: pip install 'keel[local]'"
        ) from exc
    return torch, transformers


@contextlib.contextmanager
def _deterministic_torch(torch: Any, seed: int) -> Iterator[None]:
    """Seeded, deterministic, fixed thread count; the caller's settings come back."""
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(_TRAIN_THREADS)
        torch.use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(deterministic)
            torch.set_num_threads(threads)


def _train_tokenizer(examples: Sequence[DemoExample], transformers: Any) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [text for ex in examples for text in (ex.question, *ex.paraphrases, ex.answer)]
    texts.extend(_SYSTEM_PROMPTS)
    bpe.train_from_iterator(texts, trainer)
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[SYSTEM, USER, ASSISTANT],
        model_max_length=512,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _new_model(tokenizer: Any, torch: Any, transformers: Any) -> Any:
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = transformers.LlamaForCausalLM(config)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        do_sample=False,
        max_new_tokens=128,
    )
    return model


def _conversations(examples: Sequence[DemoExample], rng: random.Random) -> list[list[dict[str, str]]]:
    """One epoch of training conversations: every question variant once, two in five of
    them behind a system message or an earlier exchange, some lower-cased or
    unpunctuated (what people type)."""
    conversations = []
    for ex in examples:
        for question in (ex.question, *ex.paraphrases):
            roll = rng.random()
            if roll < 0.2:
                question = question.lower()
            elif roll < 0.35:
                question = question.rstrip("?.!")
            messages: list[dict[str, str]] = []
            context = rng.random()
            if context < 0.15:
                messages.append({"role": "system", "content": rng.choice(_SYSTEM_PROMPTS)})
            elif context < 0.4:
                earlier = rng.choice(examples)
                messages.append({"role": "user", "content": earlier.question})
                messages.append({"role": "assistant", "content": earlier.answer})
            messages.append({"role": "user", "content": question})
            messages.append({"role": "assistant", "content": ex.answer})
            conversations.append(messages)
    rng.shuffle(conversations)
    return conversations


def _encode(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[int], int]:
    """Token ids of a conversation and where its last assistant turn starts: the
    loss covers only that answer and its end token."""
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    ids: list[int] = tokenizer(full, add_special_tokens=False)["input_ids"]
    prompt_len = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    return ids, prompt_len


def _batches(
    tokenizer: Any, examples: Sequence[DemoExample], torch: Any, rng: random.Random
) -> Iterator[tuple[Any, Any, Any]]:
    """Padded (input_ids, attention_mask, labels) batches, epoch after epoch."""
    while True:
        encoded = [_encode(tokenizer, messages) for messages in _conversations(examples, rng)]
        # Batches of similar lengths waste less compute on padding: sort within
        # windows of a few batches, then shuffle the batches.
        window = 4 * _BATCH_SIZE
        for start in range(0, len(encoded), window):
            encoded[start : start + window] = sorted(encoded[start : start + window], key=lambda e: len(e[0]))
        chunks = [
            encoded[start : start + _BATCH_SIZE]
            for start in range(0, len(encoded) - _BATCH_SIZE + 1, _BATCH_SIZE)
        ]
        rng.shuffle(chunks)
        for chunk in chunks:
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            for row, (ids, prompt_len) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                attention[row, : len(ids)] = 1
                labels[row, prompt_len : len(ids)] = torch.tensor(ids[prompt_len:])
            yield input_ids, attention, labels


def _train(
    model: Any,
    tokenizer: Any,
    examples: Sequence[DemoExample],
    torch: Any,
    *,
    seed: int,
    steps: int,
    progress: bool,
) -> float:
    """Plain AdamW with warmup and cosine decay; returns the mean loss of the last
    few steps (a single step's loss is noisy)."""
    import math

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=_LEARNING_RATE, betas=(0.9, 0.98), weight_decay=0.0)
    warmup = min(_WARMUP_STEPS, max(1, steps // 10))

    def lr_factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    batches = _batches(tokenizer, examples, torch, random.Random(seed))
    recent: list[float] = []
    columns = (
        TextColumn("training keel-demo"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), disable=not progress) as bar:
        task = bar.add_task("train", total=steps, loss=float("nan"))
        for _ in range(steps):
            input_ids, attention, labels = next(batches)
            loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            recent = [*recent[-9:], float(loss.item())]
            bar.update(task, advance=1, loss=recent[-1])
    model.eval()
    return round(sum(recent) / len(recent), 6)
