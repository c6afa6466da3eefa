"""Bulk correction files (CSV or JSON) read into the items Heap's bulk bodies take, and chunking.

CSV: UTF-8 (a BOM is dropped), comma, semicolon or tab, a header line naming the columns.
Cells are trimmed and empty cells left out, because spreadsheets pad and leave gaps. Rows are
numbered from 1 for the first line under the header, the same way for JSON items, so that every
message and the re-ingestion guard name rows the officer can find.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# A bulk correction is a hand-made fix, not an import pipeline: beyond this, use several files.
MAX_ROWS = 50_000
CHUNK_SIZE = 1000  # Heap's maximum per bulk request (users, accounts and events alike)
DELIMITERS = (",", ";", "\t")


class BulkInputError(ValueError):
    """The file cannot be read as a bulk correction; the message says what to fix."""


@dataclass(frozen=True)
class Kind:
    """One bulk form: the key of Heap's bulk body and the columns that are not properties."""

    body_key: str
    subject_columns: tuple[str, ...]
    reserved: tuple[str, ...]
    properties_key: str = "properties"


KINDS = {
    "users": Kind("users", ("identity",), ("identity",)),
    "accounts": Kind("accounts", ("account_id",), ("account_id",)),
    "events": Kind(
        "events",
        ("identity", "user_id"),
        ("event", "identity", "user_id", "timestamp", "session_id", "idempotency_key"),
    ),
}


@dataclass
class BulkFile:
    """The items read from a file, ready for the bulk planners."""

    kind: str
    format: str
    items: list[dict[str, Any]] = field(default_factory=list)


def decode(raw: bytes) -> str:
    """Return the file's text: UTF-8 with an optional BOM, and no NUL bytes."""
    if b"\x00" in raw:
        raise BulkInputError("The file contains NUL bytes: save it as a UTF-8 text (CSV) file.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BulkInputError(
            "The file is not UTF-8 text. Save it as “CSV UTF-8” (or JSON) and upload it again."
        ) from None


def parse(kind: str, text: str, fmt: str = "auto") -> BulkFile:
    """Read CSV or JSON text (`fmt` auto/csv/json) into the items of Heap's bulk body."""
    if kind not in KINDS:
        raise ValueError(f"unknown bulk kind {kind!r}")
    text = text.lstrip("\ufeff")
    if "\x00" in text:
        raise BulkInputError("The content contains NUL characters.")
    if not text.strip():
        raise BulkInputError("The file is empty.")
    if fmt == "auto":
        fmt = "json" if text.lstrip()[:1] in ("[", "{") else "csv"
    items = _json_items(KINDS[kind], text) if fmt == "json" else _csv_items(KINDS[kind], text)
    if not items:
        raise BulkInputError("The file has a header but no rows.")
    if len(items) > MAX_ROWS:
        raise BulkInputError(
            f"The file has {len(items):,} rows; a bulk correction takes at most {MAX_ROWS:,}. "
            "Split it into several files."
        )
    return BulkFile(kind=kind, format=fmt, items=items)


def chunks(items: Sequence[Any], size: int = CHUNK_SIZE) -> Iterator[tuple[int, Sequence[Any]]]:
    """Yield (offset, slice) pieces of at most `size` items, in order."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield start, items[start : start + size]


def _json_items(kind: Kind, text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise BulkInputError(
            f"The JSON cannot be read: {error.msg} at line {error.lineno}."
        ) from None
    if isinstance(data, dict) and kind.body_key in data:
        data = data[kind.body_key]
    if not isinstance(data, list):
        raise BulkInputError(
            f"The JSON must be a list of objects, or an object with a “{kind.body_key}” list."
        )
    for row, item in enumerate(data, 1):
        if not isinstance(item, dict):
            raise BulkInputError(f"Row {row}: each item of the JSON list must be an object.")
    return data


def _delimiter(header_line: str) -> str:
    """The delimiter of the header line: csv.Sniffer misreads one-column files (PITFALLS #14)."""
    counts = {delimiter: header_line.count(delimiter) for delimiter in DELIMITERS}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _header(kind: Kind, names: list[str]) -> list[str]:
    """Check the header: named, unique columns, the subject column present, no `id`."""
    header = [name.strip() for name in names]
    for position, name in enumerate(header, 1):
        if not name:
            raise BulkInputError(f"Column {position} of the header has no name.")
        if name.casefold() == "id":
            raise BulkInputError(
                f"Column “{name}” cannot be sent: Heap reserves the property name “id” in "
                "any casing. Rename or remove the column."
            )
    seen = set()
    for name in header:
        if name in seen:
            raise BulkInputError(f"The header names column “{name}” twice.")
        seen.add(name)
    if not any(column in header for column in kind.subject_columns):
        wanted = " or ".join(f"“{column}”" for column in kind.subject_columns)
        raise BulkInputError(f"The header needs a column named {wanted}.")
    if kind.body_key == "events" and "event" not in header:
        raise BulkInputError("The header needs a column named “event”.")
    return header


def _csv_items(kind: Kind, text: str) -> list[dict[str, Any]]:
    first_line = text.splitlines()[0] if text.splitlines() else ""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = _header(kind, next(reader, []))
        items = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank lines are not rows
            row = len(items) + 1
            if len(record) > len(header):
                raise BulkInputError(
                    f"Row {row} has {len(record)} cells but the header has {len(header)} columns."
                )
            items.append(_item(kind, header, record))
            if len(items) > MAX_ROWS:
                break
    except csv.Error as error:
        raise BulkInputError(f"The CSV cannot be read: {error}.") from None
    return items


def _item(kind: Kind, header: list[str], record: list[str]) -> dict[str, Any]:
    """One CSV row as a bulk item: reserved columns as fields, the rest as properties."""
    item: dict[str, Any] = {}
    properties: dict[str, str] = {}
    for name, cell in zip(header, record, strict=False):
        value = cell.strip()
        if not value:
            continue
        if name in kind.reserved:
            item[name] = value
        else:
            properties[name] = value
    if properties or kind.body_key != "events":
        item[kind.properties_key] = properties
    return item
