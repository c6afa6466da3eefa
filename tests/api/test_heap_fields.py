"""Heap's field rules as the document states them agree with the rules the desk applies."""

from __future__ import annotations

import unicodedata

import jsonschema_rs
import pytest

from webapp.api import heap_fields as fields
from webapp.corrections.checks import Checker, properties_of
from webapp.heap import HeapValidationError
from webapp.heap.validation import (
    MAX_USER_ID,
    is_non_unique_identity,
    normalise_user_id,
)


def _ranges(codes: list[int]) -> tuple[tuple[int, int], ...]:
    ranges: list[list[int]] = []
    for code in codes:
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    return tuple((low, high) for low, high in ranges)


def _valid(schema: dict, value) -> bool:
    return jsonschema_rs.validator_for(schema).is_valid(value)


def test_the_hidden_characters_are_the_running_pythons_cc_and_cf():
    codes = [c for c in range(0x110000) if unicodedata.category(chr(c)) in ("Cc", "Cf")]
    assert _ranges(codes) == fields.HIDDEN_RANGES


def test_the_blank_characters_are_what_strip_removes():
    blank = {c for c in range(0x110000) if chr(c).isspace()}
    stated = {c for low, high in fields.SPACE_RANGES for c in range(low, high + 1)}
    stated |= {ord(ch) for ch in "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85"}
    assert stated == blank


@pytest.mark.parametrize(
    ("value", "valid"),
    [("ann@example.org", True), ("ann\u200b@example.org", False), ("a\tb", False), ("", False)],
)
def test_an_identity_has_no_hidden_character(value, valid):
    assert _valid(fields.IDENTITY, value) is valid


@pytest.mark.parametrize("value", ["null", " NULL ", "Undefined", "[object Object]", "0", " "])
def test_a_placeholder_cannot_identify(value):
    assert is_non_unique_identity(value)
    assert not _valid(fields.UNIQUE_IDENTITY, value)


@pytest.mark.parametrize(
    "value", [0, MAX_USER_ID, "0042", str(MAX_USER_ID), " 12 ", MAX_USER_ID + 1, "9" * 17, "1e3"]
)
def test_a_user_id_is_valid_in_the_document_as_in_the_rules(value):
    try:
        normalise_user_id(value)
        taken = True
    except HeapValidationError:
        taken = False
    assert _valid(fields.USER_ID, value) is taken


@pytest.mark.parametrize("name", ["plan", "id", " ID ", "Id", "", " ", "a\u202eb", "a\nb"])
def test_property_names_are_valid_in_the_document_as_in_the_rules(name):
    check = Checker()
    properties_of(check, {name: 1}, row=None)
    schema = {"type": "object", "propertyNames": fields.PROPERTY_NAME}
    assert _valid(schema, {name: 1}) is (not check.problems)
