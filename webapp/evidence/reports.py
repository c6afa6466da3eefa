"""CSV reports: a batch's subjects (the batch report) and the DPO's deadline report.

Both are streamed a page of rows at a time from their own session, every cell neutralised
against formula injection (exports.csv_lines).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import sqlalchemy as sa
from flask import Flask
from sqlmodel import select

from webapp.db import session_scope
from webapp.erasure import deadlines
from webapp.erasure.batches import get_batch
from webapp.evidence.facts import deadline_status, identifier_of, requests_of, subject_status
from webapp.models import Batch, Environment, RowClass, Subject
from webapp.trail import exports

PAGE = 2000
REPORT_COLUMNS = [
    "row",
    "classification",
    "kind",
    "fingerprint",
    "identifier",
    "received_on",
    "reference",
    "due_on",
    "extension_months",
    "deadline",
    "submitted_at",
    "heap_deletion_request_ids",
    "status",
    "completed_at",
    "identifier_purged_at",
]
DEADLINE_COLUMNS = [
    "urgency",
    "days_left",
    "days_overdue",
    "due_on",
    "received_on",
    "extension_months",
    "batch_id",
    "batch_reference",
    "environment",
    "row",
    "kind",
    "fingerprint",
    "status",
]


def _iso(value) -> str:
    return value.isoformat() if value else ""


# A masked report (the one evidence packs carry) shows the first 64 bits of each fingerprint:
# enough to find a subject whose full fingerprint a receipt names, and 10,000 full ones would
# be 320 KB of incompressible hex in every pack.
MASKED_FINGERPRINT_CHARS = 16


def _shown_identifier(row, masked: bool) -> str:
    value = identifier_of(row.kind, row.identifier_encrypted, masked=masked)
    if value is not None:
        return value
    return "purged" if row.purged_at else ""


# The columns a report line needs: read as plain rows, not ORM objects (10,000 rows a batch).
ROW_COLUMNS = (
    Subject.id,
    Subject.row_number,
    Subject.classification,
    Subject.kind,
    Subject.fingerprint,
    Subject.identifier_encrypted,
    Subject.received_on,
    Subject.reference,
    Subject.due_on,
    Subject.extension_months,
    Subject.extension_recorded_on,
    Subject.state,
    Subject.submitted_at,
    Subject.heap_request_id,
    Subject.completed_at,
    Subject.purged_at,
)


def batch_report_filename(batch_id: int, *, masked: bool) -> str:
    """Masked and unmasked reports under different names, so a download folder never mixes
    up the one that may be shared with the one that names people."""
    return f"batch-{batch_id}-report-{'masked' if masked else 'unmasked'}.csv"


def batch_report(
    app: Flask, batch_id: int, *, masked: bool = False, today: date | None = None
) -> Iterator[str]:
    """Every row of a batch with its deadline, Heap request ids and status, as CSV.

    Raises BatchNotFound at once (before the first byte); the rows are read as they are sent.
    """
    with app.app_context(), session_scope(write=False, app=app) as session:
        batch_state = get_batch(session, batch_id).state
        ids = {
            fact.request.id: " ".join(d.deletion_request_id for d in fact.deletion_ids)
            or (fact.request.deletion_request_id or "")
            for fact in requests_of(session, batch_id)
        }
    day = today or deadlines.today_utc()

    def rows():
        with app.app_context(), session_scope(write=False, app=app) as session:
            after = (0, 0)
            while True:
                page = session.exec(
                    select(*ROW_COLUMNS)
                    .where(Subject.batch_id == batch_id)
                    .where(sa.tuple_(Subject.row_number, Subject.id) > after)
                    .order_by(Subject.row_number, Subject.id)
                    .limit(PAGE)
                ).all()
                if not page:
                    return
                for s in page:
                    valid = s.classification == RowClass.VALID.value
                    yield [
                        s.row_number,
                        s.classification,
                        s.kind,
                        (s.fingerprint or "")[:MASKED_FINGERPRINT_CHARS]
                        if masked
                        else s.fingerprint,
                        _shown_identifier(s, masked),
                        _iso(s.received_on),
                        s.reference,
                        _iso(s.due_on) if valid else "",
                        s.extension_months or "",
                        deadline_status(
                            classification=s.classification,
                            state=s.state,
                            due_on=s.due_on,
                            completed_at=s.completed_at,
                            batch_state=batch_state,
                            today=day,
                            received_on=s.received_on,
                            extension_recorded_on=s.extension_recorded_on,
                        ),
                        _iso(s.submitted_at),
                        ids.get(s.heap_request_id, ""),
                        subject_status(s.state, batch_state),
                        _iso(s.completed_at),
                        _iso(s.purged_at),
                    ]
                after = (page[-1].row_number, page[-1].id)

    return exports.csv_lines(REPORT_COLUMNS, rows())


def deadline_report(app: Flask, *, today: date | None = None) -> Iterator[str]:
    """Overdue and due-within-7-days subjects, earliest first, as CSV (no identifiers).

    The report is made to be passed on (to the DPO), so it carries fingerprints and batch
    references only; the batch page shows the identifier while it is retained.
    """

    def rows():
        day = today or deadlines.today_utc()
        with app.app_context(), session_scope(write=False, app=app) as session:
            query = (
                select(Subject, Batch.reference, Environment.name)
                .join(Batch, Batch.id == Subject.batch_id)
                .join(Environment, Environment.id == Subject.environment_id)
                .where(Subject.classification == RowClass.VALID.value)
                .where(Subject.state.in_([s.value for s in deadlines.OPEN_SUBJECT_STATES]))
                .where(Batch.state.not_in([s.value for s in deadlines.WITHDRAWN_BATCH_STATES]))
                .where(Subject.due_on <= day + timedelta(days=deadlines.DUE_SOON_DAYS))
                .order_by(Subject.due_on, Subject.id)
                .execution_options(yield_per=PAGE)
            )
            for subject, reference, environment in session.exec(query):
                left = deadlines.days_left(subject.due_on, day)
                # Two columns, both never negative: a cell starting with "-" would be
                # neutralised as a possible formula and stop being a number.
                yield [
                    deadlines.urgency(subject.due_on, day),
                    left if left >= 0 else "",
                    -left if left < 0 else "",
                    _iso(subject.due_on),
                    _iso(subject.received_on),
                    subject.extension_months or "",
                    subject.batch_id,
                    reference,
                    environment,
                    subject.row_number,
                    subject.kind,
                    subject.fingerprint,
                    subject.state,
                ]

    return exports.csv_lines(DEADLINE_COLUMNS, rows())
