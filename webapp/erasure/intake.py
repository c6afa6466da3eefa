"""Reading an upload (CSV file or pasted list): encoding, delimiter, header, size and row limits.

File-level problems raise UploadRefused and nothing is stored; each row is then checked and
classified by intake_rows. No database here.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import date

from webapp.erasure.rows import ABSENT, Layout, Row, RowReader
from webapp.models import RowClass

MAX_ROWS = 10_000
DELIMITERS = (",", ";", "\t")
NEWLINE = b"\n"
SNIFF_SAMPLE = 8192  # enough lines to tell the delimiter; the Sniffer is slow on more
# One-column files are read with a delimiter that cannot occur (NUL bytes are refused), so an
# identity containing a comma or a semicolon stays whole (PITFALLS.md #14).
NO_DELIMITER = "\x00"
HEADER_ALIASES = {
    "user_id": "user_id",
    "userid": "user_id",
    "user id": "user_id",
    "identity": "identity",
    "email": "identity",
    "e-mail": "identity",
    "received_on": "received_on",
    "reference": "reference",
}
COLUMNS = ("user_id", "identity", "received_on", "reference")
# Other columns are ignored; the officer is told which (a few, briefly: any header will do).
MAX_IGNORED_NAMED = 10
MAX_COLUMN_NAME = 60
PASTE_KINDS = ("identity", "user_id")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class UploadRefused(ValueError):
    """The whole upload is unusable; the message says why in plain words. Nothing is stored."""


class NotYetReceived(UploadRefused):
    """The batch's received date is after today (by the desk's clock)."""


@dataclass
class Upload:
    """A read upload: every row classified, the raw bytes' SHA-256, what was recognised."""

    rows: list[Row]
    sha256: str
    delimiter: str
    columns: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """rows, valid, malformed, duplicate, already_requested."""
        # Exclusion happens later, in the preview: an upload has none.
        result = {"rows": len(self.rows)} | {
            c.value: 0 for c in RowClass if c is not RowClass.EXCLUDED
        }
        for row in self.rows:
            result[row.classification] += 1
        return result


def _size(n: int) -> str:
    """A file size in words: '6.2 MB', '64 KB'."""
    return f"{n / 1_048_576:.1f} MB" if n >= 1_048_576 else f"{n / 1024:.0f} KB"


def _check_size(
    size: int, max_bytes: int, what: str = "file", advice: str = "Split it into smaller files."
) -> None:
    """Refuse more than `max_bytes`, naming the size and the limit (in bytes when they would
    read the same rounded)."""
    if size <= max_bytes:
        return
    said, cap = _size(size), _size(max_bytes)
    if said == cap:
        said, cap = f"{size:,} bytes", f"{max_bytes:,} bytes"
    raise UploadRefused(f"The {what} is {said}; the desk accepts at most {cap}. {advice}")


def _decode(data: bytes, max_bytes: int) -> str:
    """Bytes → text, refusing what is not UTF-8 text within the size cap."""
    _check_size(len(data), max_bytes)
    if data.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise UploadRefused(
            "This is a spreadsheet workbook (Excel or similar), not CSV. "
            "Save it as “CSV UTF-8” and upload that."
        )
    if b"\x00" in data:
        raise UploadRefused(
            "The file contains NUL bytes: it is binary (or UTF-16) rather than UTF-8 text. "
            "Save it as “CSV UTF-8” and upload that."
        )
    try:
        text = data.decode("utf-8-sig")  # drops a BOM from spreadsheet exports
    except UnicodeDecodeError as error:
        raise UploadRefused(
            f"The file is not UTF-8 text (line {data.count(NEWLINE, 0, error.start) + 1}, "
            f"byte {error.start + 1} cannot be read). "
            "Save it as “CSV UTF-8” and upload that."
        ) from None
    if not text.strip():
        raise UploadRefused("The file is empty.")
    return text


def _delimiter(text: str, header_line: str) -> str:
    """The sniffed delimiter if the header agrees, else the header's most frequent one."""
    try:
        sniffed = csv.Sniffer().sniff(text[:SNIFF_SAMPLE], delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        sniffed = None
    if sniffed and sniffed in header_line:
        return sniffed
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else NO_DELIMITER


# The csv module's words for what is wrong, in an officer's words (the row is not quoted).
CSV_PROBLEMS = (
    ("unexpected end of data", 'a value opens with a quote (") that is never closed'),
    ("field larger than field limit", "a value is longer than {limit:,} characters"),
    ("expected after", 'a closing quote (") is followed by more text in the same value'),
)


def _csv_problem(error: csv.Error) -> str:
    """The csv module's error in plain words (its own text when it is not a known one)."""
    text = str(error)
    for needle, words in CSV_PROBLEMS:
        if needle in text:
            return words.format(limit=csv.field_size_limit())
    return text


def _columns(names: list[str]) -> tuple[dict[str, int], list[str]]:
    """Map recognised columns to their positions; refuse ambiguous or missing ones."""
    positions: dict[str, int] = {}
    ignored = []
    for index, name in enumerate(names):
        key = HEADER_ALIASES.get(name.strip().lower())
        if key is None:
            if name.strip() and len(ignored) < MAX_IGNORED_NAMED:
                ignored.append(name.strip()[:MAX_COLUMN_NAME])
            continue
        if key in positions:
            raise UploadRefused(
                f"The header names the {key} column twice (“{names[positions[key]].strip()}” "
                f"and “{name.strip()}”). Keep one."
            )
        positions[key] = index
    if "user_id" not in positions and "identity" not in positions:
        piped = names[0].split("|") if len(names) == 1 else []
        if any(HEADER_ALIASES.get(part.strip().lower()) for part in piped):
            # Some exports separate with pipes: say so rather than "add a header line".
            raise UploadRefused(
                "The values are separated by “|”; the desk reads comma, semicolon or tab. "
                "Save the file as CSV (comma-separated) and upload that."
            )
        # Not quoted: without a header line, the first line is a person's identifier.
        raise UploadRefused(
            "The first line must name the identifier column: user_id and/or identity "
            f"(email is accepted for identity); none of its {len(names)} value(s) does. "
            "Add a header line, or paste the list instead."
        )
    return positions, ignored


def read_csv(
    data: bytes,
    *,
    fingerprint_key: str,
    received_on: date,
    today: date,
    max_bytes: int,
) -> Upload:
    """Read a CSV upload (header required) and classify every row within the file."""
    if received_on > today:
        raise NotYetReceived("The batch's received date cannot be in the future.")
    text = _decode(data, max_bytes)
    header_line = next(line for line in io.StringIO(text) if line.strip())
    delimiter = _delimiter(text, header_line)
    # strict: an unbalanced quote would otherwise swallow every following row into one value.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[Row] = []
    try:
        # The first non-blank line is the header (the text is not blank: _decode checked).
        names = next(cells for cells in reader if "".join(cells).strip())
        positions, ignored = _columns(names)
        layout = Layout(**positions, width=len(names))
        read = RowReader(layout, received_on, today, fingerprint_key).read
        append, number = rows.append, 0
        for cells in reader:
            if not "".join(cells).strip():
                continue  # blank lines (often at the end of exports) are not subjects
            if number == MAX_ROWS:
                raise UploadRefused(
                    f"The file has more than {MAX_ROWS:,} subjects; the desk takes at most "
                    f"{MAX_ROWS:,} per upload. Split it into several files."
                )
            number += 1
            append(read(number, cells))
    except csv.Error as error:
        raise UploadRefused(
            f"The file is not valid CSV near line {reader.line_num}: {_csv_problem(error)}."
        ) from None
    if not rows:
        raise UploadRefused("The file has a header line but no subjects.")
    return Upload(
        rows=rows,
        sha256=hashlib.sha256(data).hexdigest(),
        delimiter=delimiter,
        columns=[key for key in COLUMNS if key in positions],
        ignored_columns=ignored,
    )


def read_identifier_cells(data: bytes, *, max_bytes: int) -> list[tuple[str, str]]:
    """(user_id, identity) cells of each non-blank row of a CSV, as an upload reads them.

    For lookups: the same decoding, delimiter and header rules as an upload (other columns,
    received_on and reference included, are not read); the cells are stripped, not checked.
    """
    text = _decode(data, max_bytes)
    header_line = next(line for line in io.StringIO(text) if line.strip())
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=_delimiter(text, header_line), strict=True
    )
    cells: list[tuple[str, str]] = []
    try:
        positions, _ = _columns(next(row for row in reader if "".join(row).strip()))
        user_id, identity = positions.get("user_id", ABSENT), positions.get("identity", ABSENT)
        for row in reader:
            if "".join(row).strip():
                count = len(row)
                cells.append(
                    (
                        row[user_id].strip() if user_id < count else "",
                        row[identity].strip() if identity < count else "",
                    )
                )
    except csv.Error as error:
        raise UploadRefused(
            f"The file is not valid CSV near line {reader.line_num}: {_csv_problem(error)}."
        ) from None
    return cells


def read_paste(
    text: str,
    *,
    kind: str,
    fingerprint_key: str,
    received_on: date,
    today: date,
    max_bytes: int,
) -> Upload:
    """Read a pasted list: one identifier per line of the chosen kind, or a CSV with a header.

    A line of digits could be a user_id or an identity, so the officer says which the list
    holds; a paste whose first line is a recognised header is read as CSV instead.
    """
    data = text.encode("utf-8")
    # The file's limit, measured as the same list saved as a file: browsers send a textarea
    # with CRLF line ends, which would otherwise count twice per line.
    advice = "Paste the list in parts, one batch each."
    _check_size(len(data) - text.count("\r\n"), max_bytes, "pasted list", advice)
    _decode(data, len(data))  # NUL bytes and emptiness, as for a file
    # Only line breaks end a line: str.splitlines() would also cut at U+2028, U+0085 and
    # other separators inside an identity, making two "valid" people of one malformed value.
    lines = [line.strip() for line in _LINE_BREAK.split(text) if line.strip()]
    first = lines[0].lower()
    if any(HEADER_ALIASES.get(part.strip()) for part in re.split(r"[,;\t]", first)):
        upload = read_csv(
            data,
            fingerprint_key=fingerprint_key,
            received_on=received_on,
            today=today,
            max_bytes=len(data),  # the size is checked above, line ends counted once
        )
        return upload
    if kind not in PASTE_KINDS:
        raise UploadRefused("Say whether the pasted list holds identities or user_ids.")
    # Each pasted line is one value: quote it so commas and quotes inside stay part of it.
    body = "\n".join('"' + line.replace('"', '""') + '"' for line in lines)
    quoted = f"{kind}\n{body}".encode()
    upload = read_csv(
        quoted,
        fingerprint_key=fingerprint_key,
        received_on=received_on,
        today=today,
        max_bytes=len(quoted),
    )
    upload.sha256 = hashlib.sha256(data).hexdigest()
    return upload
