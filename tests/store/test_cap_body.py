from __future__ import annotations

import pytest

from keel.store import cap_body


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        (None, 10, (None, False)),
        ("", 10, ("", False)),
        ("hello", 10, ("hello", False)),
        ("hello", 5, ("hello", False)),
        ("hello", 4, ("hell", True)),
        ("hello", 0, (None, True)),
        ("", 0, (None, False)),
        # "é" is 2 bytes: a cut in its middle drops it whole.
        ("aé", 2, ("a", True)),
        ("aé", 3, ("aé", False)),
        # "€" is 3 bytes, "😀" is 4.
        ("€€", 5, ("€", True)),
        ("😀x", 3, ("", True)),
        ("😀x", 4, ("😀", True)),
        ("😀x", 5, ("😀x", False)),
        # Few characters, many bytes: the limit is in bytes, not characters.
        ("€" * 4, 11, ("€" * 3, True)),
    ],
)
def test_cap_body_cuts_at_a_byte_limit_without_splitting_characters(
    text: str | None, limit: int, expected: tuple[str | None, bool]
) -> None:
    assert cap_body(text, limit) == expected


def test_capped_body_always_fits_and_is_valid_utf8() -> None:
    text = "aé€😀" * 1000
    for limit in range(0, 40):
        capped, truncated = cap_body(text, limit)
        encoded = (capped or "").encode("utf-8")
        assert len(encoded) <= limit
        assert truncated
        assert text.encode("utf-8").startswith(encoded)
        # Nothing that would still have fit was dropped.
        assert len(encoded) > limit - 4


def test_large_body_is_cut_to_the_limit() -> None:
    capped, truncated = cap_body("x" * 10_000_000, 32 * 1024)
    assert truncated
    assert capped == "x" * 32 * 1024


def test_lone_surrogates_become_storable_text() -> None:
    capped, truncated = cap_body('{"a": "\ud800"}', 100)
    assert not truncated
    assert capped == '{"a": "?"}'
    assert capped is not None
    capped.encode("utf-8")
