"""The shape of a Keel key: ``sk-keel-`` and 43 random URL-safe characters (256 bits).

Only ``hash_key(key)`` is stored; the plaintext exists once, in the answer to the call
that created it.
"""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_PREFIX = "sk-keel-"
_RANDOM_BYTES = 32
_KEY_PATTERN = re.compile(r"^sk-keel-[A-Za-z0-9_-]{43}$")
# What lists show: enough to tell keys apart, far too little to guess the rest.
_DISPLAY_CHARS = len(KEY_PREFIX) + 4


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(_RANDOM_BYTES)


def is_well_formed(token: str) -> bool:
    return _KEY_PATTERN.match(token) is not None


def hash_key(key: str) -> str:
    """The sha256 hex digest a key is stored and looked up by. A plain hash (no salt, no
    stretching) is right here: keys are 256 random bits, not guessable passwords, and the
    lookup must be one dictionary access."""
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:_DISPLAY_CHARS]
