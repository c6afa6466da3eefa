"""Cutting a request's identifiers out of what Heap answered, however Heap spells them."""

from __future__ import annotations

import json
import unicodedata
from urllib.parse import quote

import pytest

from webapp.heap.redaction import redact, skeleton_of

IDENTITY = "José  García@example.com"
NFD = unicodedata.normalize("NFD", IDENTITY)
ASTRAL = "anna😀@example.org"


def cut(text: str, identities=(IDENTITY,), user_ids=()) -> str:
    return redact(text, {"[identity]": identities, "[user_id]": user_ids})


@pytest.mark.parametrize(
    "spelling",
    [
        IDENTITY,
        NFD,
        IDENTITY.upper(),
        IDENTITY.casefold(),
        " ".join(IDENTITY.split()),
        IDENTITY.replace(" ", ""),
        IDENTITY.replace(" ", "\u00a0"),  # no-break spaces
        IDENTITY.replace("@", "\u200b@"),  # a zero-width space slipped in
        json.dumps(IDENTITY)[1:-1],
        json.dumps(IDENTITY, ensure_ascii=False)[1:-1],
        json.dumps(IDENTITY)[1:-1].upper(),
        json.dumps(NFD)[1:-1],
        json.dumps(json.dumps(IDENTITY)[1:-1])[1:-1],
        IDENTITY.replace("é", "\\u{e9}").replace("í", "\\u{ED}"),
        IDENTITY.replace("é", "&#233;").replace("í", "&#xed;"),
        quote(IDENTITY),
        "Jos\\xe9  Garc\\xeda@example.com",
        "Jos\\u00e9\\u0020\\u0020Garc\\u00eda\\u0040example.com",
    ],
)
def test_every_spelling_is_cut(spelling):
    text = cut(f"user {spelling} is unknown")
    assert text == "user [identity] is unknown"


def test_astral_characters_escaped_as_surrogate_pairs_are_cut():
    assert (
        cut(json.dumps({"identity": ASTRAL}), identities=[ASTRAL]) == '{"identity": "[identity]"}'
    )


def test_user_ids_are_cut_as_whole_numbers_only():
    text = 'users [7000123, "42", 7000123.0] of 70001234 rows; 420 left'
    assert cut(text, identities=(), user_ids=[7000123, 42]) == (
        'users [[user_id], "[user_id]", [user_id].0] of 70001234 rows; 420 left'
    )


def test_short_identities_are_cut_only_where_they_stand_alone():
    assert cut("al is not valid in alpha", identities=["al"]) == "[identity] is not valid in alpha"


def test_a_message_cut_short_loses_the_start_of_an_identifier_too():
    truncated = 'invalid users: [{"identity": "Jos\\u00e9 Garc…'
    assert cut(truncated) == 'invalid users: [{"identity": "[identity]…'


def test_nothing_else_is_touched():
    text = "Heap delete_users was rejected: users must be a list (HTTP 400)"
    assert cut(text, identities=["ann@example.org"], user_ids=[7]) == text
    assert redact("", {"[identity]": [IDENTITY]}) == ""
    assert redact("abc", {}) == "abc"


def test_skeletons_ignore_spelling():
    assert skeleton_of(IDENTITY) == skeleton_of(NFD) == skeleton_of(IDENTITY.upper().strip())
    assert skeleton_of(IDENTITY) == "jose garcia@example.com"


def test_ten_thousand_identifiers_are_cut_quickly():
    import time

    identities = [f"person{n}@example.org" for n in range(10_000)]
    text = "invalid users: " + json.dumps([{"identity": i} for i in identities[:20]])[:500]
    started = time.perf_counter()
    result = cut(text, identities=identities)
    assert "person" not in result
    assert time.perf_counter() - started < 5
