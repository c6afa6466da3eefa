"""Storing an upload's subjects fast, and finding earlier requests for the same people.

Both run on up to 10,000 rows inside the officer's upload request (and within the benchmark's
budget), so they talk to the driver more directly than the rest of the desk does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date

import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import current_app
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, select

from webapp.erasure import deadlines, intake
from webapp.models import Batch, RowClass, Subject, SubjectState

VALID = RowClass.VALID.value


def fingerprint_among(session: Session, fingerprints: Iterable[str]):
    """`Subject.fingerprint` is one of `fingerprints`, given as a single bound parameter.

    An IN list of 10,000 bind parameters costs more to build than the query takes: SQLite
    reads the list from one JSON text (json_each), PostgreSQL from one array (ANY). Either way
    each fingerprint is one probe of ix_subjects_env_fingerprint, however long the history.
    """
    values = list(fingerprints)
    if session.get_bind().dialect.name == "sqlite":
        listed = sa.select(sa.literal_column("value")).select_from(
            sa.func.json_each(json.dumps(values))
        )
        return Subject.fingerprint.in_(listed)
    return Subject.fingerprint == sa.any_(
        sa.bindparam("fingerprints", values, type_=ARRAY(sa.String))
    )


def already_requested(session: Session, environment_id: int, fingerprints: set[str]) -> dict:
    """fingerprint → earliest batch id of this environment (not withdrawn) that holds it."""
    if not fingerprints:
        return {}
    query = (
        select(Subject.fingerprint, sa.func.min(Subject.batch_id))
        .join(Batch, Batch.id == Subject.batch_id)
        .where(
            Subject.environment_id == environment_id,
            fingerprint_among(session, fingerprints),
            Subject.classification == RowClass.VALID.value,
            Batch.state.not_in([s.value for s in deadlines.WITHDRAWN_BATCH_STATES]),
        )
        .group_by(Subject.fingerprint)
    )
    return dict(session.exec(query).all())


SUBJECT_COLUMNS = (
    "batch_id",
    "environment_id",
    "row_number",
    "kind",
    "fingerprint",
    "identifier_encrypted",
    "classification",
    "problem",
    "warning",
    "received_on",
    "reference",
    "due_on",
    "extension_months",
    "state",
)


def insert_subjects(session: Session, batch: Batch, upload: intake.Upload) -> None:
    """Store one subject per row: identifiers encrypted, deadlines computed, one executemany.

    10,000 rows must be stored well within the officer's request: the ORM (or even Core's
    per-row parameter processing) costs more than the database itself, so the rows go to the
    driver's executemany as plain tuples.
    """
    connection = session.connection()
    sqlite = connection.dialect.name == "sqlite"
    placeholder = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    # One Fernet of the current (first) key for the whole file: crypto.encrypt rebuilds a
    # MultiFernet per value. The tokens are the same Fernet tokens crypto.decrypt reads.
    fernet = Fernet(current_app.config["DESK_ENCRYPTION_KEYS"][0])
    # received_on → (received_on, due_on) as bound: a file holds only a few distinct dates.
    dates: dict[date, tuple] = {}
    pending, skipped = SubjectState.PENDING.value, SubjectState.SKIPPED.value
    params = []
    for row in upload.rows:
        raw = row.value if row.value is not None else row.raw
        bound = dates.get(row.received_on)
        if bound is None:
            due = deadlines.due_on(row.received_on)
            # SQLite keeps dates as ISO text (as SQLAlchemy writes them); psycopg adapts dates.
            bound = (
                (row.received_on.isoformat(), due.isoformat()) if sqlite else (row.received_on, due)
            )
            dates[row.received_on] = bound
        params.append(
            (
                batch.id,
                batch.environment_id,
                row.number,
                row.kind,
                row.fingerprint,
                fernet.encrypt(raw.encode()).decode() if raw else None,
                row.classification,
                row.problem,
                row.warning,
                bound[0],
                row.reference,
                bound[1],
                0,
                pending if row.classification == VALID else skipped,
            )
        )
    columns = ", ".join(SUBJECT_COLUMNS)
    values = ", ".join([placeholder] * len(SUBJECT_COLUMNS))
    connection.exec_driver_sql(f"INSERT INTO subjects ({columns}) VALUES ({values})", params)  # noqa: S608 (constant column names)
