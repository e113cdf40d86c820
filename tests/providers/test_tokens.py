"""Token counting falls back from a configured tokenizer to a cached tiktoken to None,
and never downloads."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from keel.providers import Deployment, _tokens
from keel.providers._tokens import count_tokens, tiktoken_file_cached

CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"


@pytest.fixture(autouse=True)
def fresh_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # An empty tiktoken cache, and no loader that could reach the network.
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "tiktoken"))
    tiktoken_load = pytest.importorskip("tiktoken.load")

    def no_download(blobpath: str) -> bytes:
        raise AssertionError(f"tried to download {blobpath}")

    monkeypatch.setattr(tiktoken_load, "read_file", no_download)
    for cached in (_tokens.token_counter, _tokens._file_counter, _tokens._tiktoken_counter):
        cached.cache_clear()
    yield
    for cached in (_tokens.token_counter, _tokens._file_counter, _tokens._tiktoken_counter):
        cached.cache_clear()


def word_tokenizer(directory: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(["hello world"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def test_configured_tokenizer_file_counts(tmp_path: Path) -> None:
    path = word_tokenizer(tmp_path / "tok")
    deployment = Deployment(name="d", provider="p", model="anything", tokenizer=str(path))
    assert count_tokens(deployment, "hello world , unknown words") == 5


def test_configured_tokenizer_directory_counts(tmp_path: Path) -> None:
    word_tokenizer(tmp_path / "tok")
    deployment = Deployment(name="d", provider="p", model="anything", tokenizer=str(tmp_path / "tok"))
    assert count_tokens(deployment, "hello hello") == 2


def test_tiktoken_encoding_not_cached_gives_none() -> None:
    assert count_tokens(Deployment(name="d", provider="p", model="gpt-4o"), "hello") is None
    named = Deployment(name="d", provider="p", model="x", tokenizer="cl100k_base")
    assert count_tokens(named, "hello") is None


def test_unknown_model_without_tokenizer_gives_none() -> None:
    assert count_tokens(Deployment(name="d", provider="p", model="llama-3-8b"), "hello") is None


def test_cached_tiktoken_file_is_recognised(tmp_path: Path) -> None:
    cache = tmp_path / "tiktoken"
    cache.mkdir()
    assert not tiktoken_file_cached("cl100k_base")
    (cache / hashlib.sha1(CL100K_URL.encode()).hexdigest()).write_bytes(b"")
    assert tiktoken_file_cached("cl100k_base")
    assert not tiktoken_file_cached("no_such_encoding")


def test_empty_cache_dir_means_no_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    assert not tiktoken_file_cached("cl100k_base")
