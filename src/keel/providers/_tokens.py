"""Counting tokens when a stream reported no usage, without ever downloading anything.

In order: the route's tokenizer (a ``tokenizer.json`` file or a directory holding one,
read with the ``tokenizers`` library), a tiktoken encoding (named by the route, or
picked by model name) *if* tiktoken is installed and that encoding's file is already in
its local cache, else None: the gateway then estimates and records it as such.
Tokenizers are loaded once and cached; neither library is a dependency.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from keel.providers._base import Deployment

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], int]

# tiktoken caches each encoding file under sha1(url); these are the files it fetches.
_TIKTOKEN_FILES = {
    "r50k_base": "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken",
    "p50k_base": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "p50k_edit": "https://openaipublic.blob.core.windows.net/encodings/p50k_base.tiktoken",
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
    "o200k_harmony": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def count_tokens(deployment: Deployment, text: str) -> int | None:
    """Tokens in ``text`` for ``deployment``, or None when no tokenizer is at hand."""
    counter = token_counter(deployment.tokenizer, deployment.model)
    return None if counter is None else counter(text)


@lru_cache(maxsize=128)
def token_counter(tokenizer: str | None, model: str) -> TokenCounter | None:
    if tokenizer:
        path = Path(tokenizer).expanduser()
        if path.is_dir():
            path = path / "tokenizer.json"
        if path.is_file():
            return _file_counter(str(path))
        return _tiktoken_counter(tokenizer)
    return _tiktoken_counter(_tiktoken_encoding_for(model))


@lru_cache(maxsize=32)
def _file_counter(path: str) -> TokenCounter | None:
    try:
        from tokenizers import Tokenizer
    except ImportError:
        log.warning("tokenizer %s configured but the tokenizers library is missing", path)
        return None
    hf_tokenizer: Any = Tokenizer.from_file(path)

    def count(text: str) -> int:
        return len(hf_tokenizer.encode(text, add_special_tokens=False).ids)

    return count


def _tiktoken_encoding_for(model: str) -> str | None:
    try:
        from tiktoken.model import encoding_name_for_model
    except ImportError:
        return None
    try:
        return encoding_name_for_model(model)
    except KeyError:
        return None


@lru_cache(maxsize=8)
def _tiktoken_counter(encoding: str | None) -> TokenCounter | None:
    if encoding is None or not tiktoken_file_cached(encoding):
        return None
    try:
        import tiktoken
    except ImportError:
        return None
    tiktoken_encoding: Any = tiktoken.get_encoding(encoding)

    def count(text: str) -> int:
        return len(tiktoken_encoding.encode(text, disallowed_special=()))

    return count


def tiktoken_file_cached(encoding: str) -> bool:
    """Whether tiktoken would load ``encoding`` from its local cache (no download)."""
    url = _TIKTOKEN_FILES.get(encoding)
    if url is None:
        return False
    cache_dir = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if cache_dir is None:
        cache_dir = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not cache_dir:  # tiktoken reads "" as "no cache": every load downloads
        return False
    return os.path.isfile(os.path.join(cache_dir, hashlib.sha1(url.encode()).hexdigest()))
