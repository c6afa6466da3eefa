"""Refuse common and breached passwords, offline, from a list shipped with the desk."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

LIST_PATH = Path(__file__).resolve().parent / "data" / "common-passwords.txt"

# Decoration people add to a listed word to pass length rules: "Sunshine2024!!", "1982monkey".
_TRAILING = re.compile(r"[\d\W_]+$")
_LEADING = re.compile(r"^\d+")
MIN_BASE_LENGTH = 4
MIN_DISTINCT_CHARACTERS = 4


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The shipped list, lower-cased (read once per process)."""
    lines = LIST_PATH.read_text(encoding="utf-8").splitlines()
    return frozenset(
        line.strip().lower() for line in lines if line.strip() and not line.startswith("# ")
    )


def _is_repetition(text: str) -> bool:
    """True for a short unit repeated to length: "abcabcabcabc", "horsehorsehorse"."""
    size = len(text)
    return any(
        size % unit == 0 and text[:unit] * (size // unit) == text
        for unit in range(1, size // 2 + 1)
    )


def is_common_password(password: str) -> bool:
    """True for a listed password, a listed word dressed with digits/symbols, or a repetition."""
    text = (password or "").strip().lower()
    if not text:
        return False
    listed = common_passwords()
    if text in listed:
        return True
    if len(set(text)) < MIN_DISTINCT_CHARACTERS or _is_repetition(text):
        return True
    base = _LEADING.sub("", _TRAILING.sub("", text))
    return base != text and len(base) >= MIN_BASE_LENGTH and base in listed
