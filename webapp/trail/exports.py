"""Streaming exports (CSV and JSONL) that keep memory flat whatever their size."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator

from flask import Response

from webapp.db import session_scope
from webapp.trail import audit

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
AUDIT_CSV_COLUMNS = list(audit.ROW_FIELDS)


def csv_safe(value) -> str:
    """Neutralise a cell a spreadsheet would run as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_lines(header: list[str], rows: Iterable[Iterable]) -> Iterator[str]:
    """Yield CSV text a row at a time, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe(cell) for cell in row])
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def audit_jsonl(app, **filters) -> Iterator[str]:
    """The audit trail as JSON Lines in DESIGN.md's format, one entry per line."""
    with session_scope(write=False, app=app) as session:
        for row in audit.iter_rows(session, batch_size=2000, **filters):
            yield audit.row_json(row) + "\n"


def audit_csv(app, **filters) -> Iterator[str]:
    """The audit trail as CSV for spreadsheets (JSONL is the format to verify)."""

    def rows():
        with session_scope(write=False, app=app) as session:
            # Stored rows are in AUDIT_CSV_COLUMNS order, details already canonical JSON.
            yield from audit.iter_rows(session, batch_size=2000, **filters)

    return csv_lines(AUDIT_CSV_COLUMNS, rows())


def download(chunks: Iterator[str], *, filename: str, mimetype: str) -> Response:
    """A streamed attachment that no cache keeps.

    The generators open their own database session from the app they are given, so they need
    no request context (which would otherwise stay pushed until the stream is closed).
    """
    response = Response(chunks, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def dumps(value) -> str:
    """Compact JSON for downloads."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
