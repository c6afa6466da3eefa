"""“Which of these people were deleted?” — up to 10,000 identifiers answered at once.

Like lookup.py, answered from fingerprints alone (so it keeps working after the retention
purge), with one query per 1,000 people rather than one per person. The search is audited with
its counts and the SHA-256 of the sorted fingerprints — never an identifier, and not 10,000
fingerprints in an entry that can never be purged.
"""

from __future__ import annotations

import csv
import enum
import hashlib
import io
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import current_app
from sqlmodel import Session, select

from webapp.erasure import intake
from webapp.erasure.deadlines import WITHDRAWN_BATCH_STATES
from webapp.erasure.lookup import record_search
from webapp.erasure.rows import fingerprinter
from webapp.erasure.subjects import fingerprint_among
from webapp.forms import hidden_character
from webapp.heap.errors import HeapValidationError
from webapp.heap.validation import normalise_user_id, validate_identity
from webapp.models import Batch, BatchState, Environment, RowClass, Subject, SubjectState
from webapp.trail import exports

MAX_PEOPLE = 10_000  # the same as an upload: one file of requests can be checked in one go
CHUNK = 1_000
KINDS = ("identity", "user_id")
# Only line breaks end a line (str.splitlines() would also cut at U+2028 inside an identity).
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_HEADER_SPLIT = re.compile(r"[,;\t]")
WITHDRAWN = {s.value for s in WITHDRAWN_BATCH_STATES}


class Status(enum.StrEnum):
    """The answer for one person."""

    DELETED = "deleted"  # Heap completed a deletion of this person
    IN_PROGRESS = "in_progress"  # approved and on its way through Heap
    AWAITING_APPROVAL = "awaiting_approval"  # uploaded; nothing sent until a second officer says so
    NEVER_REQUESTED = "never_requested"  # in no batch, or only in rejected / cancelled ones
    MALFORMED = "malformed"  # the line is no identifier Heap could hold


LABELS = {
    Status.DELETED: "deleted",
    Status.IN_PROGRESS: "in progress",
    Status.AWAITING_APPROVAL: "awaiting approval",
    Status.NEVER_REQUESTED: "never requested",
    Status.MALFORMED: "malformed",
}


class BulkLookupRefused(ValueError):
    """The list as a whole cannot be looked up; the message says why. Nothing is audited."""


@dataclass(slots=True)
class Entry:
    """One line of the list: its cells, and the fingerprint or the reason there is none."""

    line: int
    user_id: str = ""
    identity: str = ""
    kind: str | None = None
    fingerprint: str | None = None
    problem: str | None = None

    @property
    def value(self) -> str:
        """The identifier as given (both cells when both were filled)."""
        if self.user_id and self.identity:
            return f"{self.user_id} / {self.identity}"
        return self.identity or self.user_id


def _checked(line: int, user_id: str, identity: str, fingerprint: Callable) -> Entry:
    """Validate a line as an upload would, and fingerprint it."""
    entry = Entry(line, user_id, identity)
    if user_id and identity:
        entry.problem = "both user_id and identity are filled; give one per line"
        return entry
    entry.kind, text = ("user_id", user_id) if user_id else ("identity", identity)
    hidden = hidden_character(text)
    if hidden:
        entry.problem = f"the {entry.kind} contains {hidden}"
        return entry
    try:
        value = str(normalise_user_id(text)) if user_id else validate_identity(text)
    except HeapValidationError as error:
        entry.problem = error.reason
        return entry
    entry.fingerprint = fingerprint(entry.kind, value)
    return entry


def _fingerprinter() -> Callable[[str, str], str]:
    # crypto.subject_fingerprint, keyed once for the list (as uploads do: rows.fingerprinter).
    return fingerprinter(current_app.config["DESK_FINGERPRINT_KEY"])


def _check_count(count: int) -> None:
    if count > MAX_PEOPLE:
        raise BulkLookupRefused(
            f"The list has {count:,} people; the desk looks up at most {MAX_PEOPLE:,} at once. "
            f"Split it into parts of {MAX_PEOPLE:,} or fewer."
        )


def read_file(data: bytes, *, max_bytes: int) -> list[Entry]:
    """A CSV file with a header naming user_id and/or identity (email), as for an upload."""
    try:
        cells = intake.read_identifier_cells(data, max_bytes=max_bytes)
    except intake.UploadRefused as error:
        raise BulkLookupRefused(str(error)) from None
    if not cells:
        raise BulkLookupRefused("The file has a header line but no people to look up.")
    _check_count(len(cells))
    fp = _fingerprinter()
    return [_checked(n, user_id, identity, fp) for n, (user_id, identity) in enumerate(cells, 1)]


def read_pasted(text: str, kind: str) -> list[Entry]:
    """One identifier of `kind` per line; a paste starting with a header line is read as CSV."""
    lines = [line.strip() for line in _LINE_BREAK.split(text or "") if line.strip()]
    if not lines:
        raise BulkLookupRefused("Paste at least one identity or user_id, one per line.")
    header = {intake.HEADER_ALIASES.get(p.strip()) for p in _HEADER_SPLIT.split(lines[0].lower())}
    if header & set(KINDS):
        data = text.encode()
        return read_file(data, max_bytes=len(data))
    if kind not in KINDS:
        raise BulkLookupRefused("Say whether the list holds identities or user_ids.")
    _check_count(len(lines))
    fp = _fingerprinter()
    if kind == "user_id":
        return [_checked(n, line, "", fp) for n, line in enumerate(lines, 1)]
    return [_checked(n, "", line, fp) for n, line in enumerate(lines, 1)]


def as_text(entries: list[Entry]) -> str:
    """The list as a CSV that read_pasted reads back line for line (the answer page carries it
    in a form's body, so the download needs neither a stored copy nor a URL)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user_id", "identity"])
    writer.writerows((entry.user_id, entry.identity) for entry in entries)
    return buffer.getvalue()


@dataclass(slots=True)
class Found:
    """One batch row that held the person."""

    batch_id: int
    batch_state: str
    environment: str
    subject_id: int
    classification: str
    state: str
    completed_at: datetime | None
    due_on: date

    @property
    def sent_or_to_send(self) -> bool:
        """A valid row of a batch nobody withdrew: this row is (or will be) a deletion."""
        return self.classification == RowClass.VALID and self.batch_state not in WITHDRAWN


@dataclass
class Answer:
    """One line of the list answered."""

    entry: Entry
    status: Status
    found: list[Found] = field(default_factory=list)

    @property
    def label(self) -> str:
        return LABELS[self.status]

    @property
    def completed_at(self) -> datetime | None:
        done = [f.completed_at for f in self.found if f.state == SubjectState.COMPLETE]
        return min((d for d in done if d is not None), default=None)

    @property
    def due_on(self) -> date | None:
        """The earliest deadline still owed (None once deleted)."""
        if self.status not in (Status.IN_PROGRESS, Status.AWAITING_APPROVAL):
            return None
        return min(f.due_on for f in self.found if f.sent_or_to_send)

    @property
    def batches(self) -> list[Found]:
        """One row per batch, newest first."""
        seen: dict[int, Found] = {}
        for found in self.found:
            seen.setdefault(found.batch_id, found)
        return list(seen.values())


def _status(found: list[Found]) -> Status:
    sent = [f for f in found if f.sent_or_to_send]
    if any(f.state == SubjectState.COMPLETE for f in sent):
        return Status.DELETED
    if any(f.batch_state != BatchState.AWAITING_APPROVAL for f in sent):
        return Status.IN_PROGRESS
    return Status.AWAITING_APPROVAL if sent else Status.NEVER_REQUESTED


@dataclass
class BulkAnswer:
    """Every line answered, and the counts the page opens with."""

    answers: list[Answer]
    counts: dict[str, int]

    @property
    def summary(self) -> str:
        """'7 deleted, 2 in progress, 1 never requested'."""
        return ", ".join(
            f"{self.counts[status]:,} {LABELS[status]}" for status in Status if self.counts[status]
        )


def _found(session: Session, fingerprints: list[str], environment_id: int | None) -> dict:
    """fingerprint → every row holding it: one query per CHUNK fingerprints."""
    found: dict[str, list[Found]] = defaultdict(list)
    for start in range(0, len(fingerprints), CHUNK):
        query = (
            select(
                Subject.fingerprint,
                Subject.batch_id,
                Batch.state,
                Environment.name,
                Subject.id,
                Subject.classification,
                Subject.state,
                Subject.completed_at,
                Subject.due_on,
            )
            .join(Batch, Batch.id == Subject.batch_id)
            .join(Environment, Environment.id == Subject.environment_id)
            .where(fingerprint_among(session, fingerprints[start : start + CHUNK]))
            .order_by(Subject.batch_id.desc(), Subject.row_number)
        )
        if environment_id:
            query = query.where(Subject.environment_id == environment_id)
        for fingerprint, *row in session.exec(query):
            found[fingerprint].append(Found(*row))
    return found


def answer(
    session: Session,
    entries: list[Entry],
    *,
    environment_id: int | None = None,
    actor: str | None = None,
    download: bool = False,
) -> BulkAnswer:
    """Answer every line; with an `actor`, audit the search (counts and a digest only)."""
    fingerprints = sorted({e.fingerprint for e in entries if e.fingerprint})
    found = _found(session, fingerprints, environment_id)
    answers = []
    for entry in entries:
        if entry.fingerprint is None:
            answers.append(Answer(entry, Status.MALFORMED))
        else:
            rows = found.get(entry.fingerprint, [])
            answers.append(Answer(entry, _status(rows), rows))
    tally = Counter(a.status for a in answers)
    counts = {status.value: tally[status] for status in Status}
    if actor:
        digest = hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()
        record_search(
            session,
            actor=actor,
            action="subjects.bulk_looked_up",
            target_type="subject_lookup",
            target_id=digest[:16],
            details={
                "lines": len(entries),
                "people": len(fingerprints),
                "kinds": dict(Counter(e.kind for e in entries if e.fingerprint)),
                "environment_id": environment_id,
                "counts": counts,
                "fingerprints_sha256": digest,
                "download": download,
            },
        )
    return BulkAnswer(answers=answers, counts=counts)


CSV_HEADER = ["line", "kind", "identifier", "status", "batches", "completed_at", "due_on"]


def answer_csv(result: BulkAnswer) -> Iterator[str]:
    """The answer as CSV, one line per line of the list (cells neutralised against formulas)."""

    def rows():
        for item in result.answers:
            entry, completed, due = item.entry, item.completed_at, item.due_on
            yield [
                entry.line,
                entry.kind or "",
                entry.value,
                item.status.value,
                "; ".join(f"{f.batch_id} {f.batch_state}" for f in item.batches),
                completed.isoformat() if completed else "",
                due.isoformat() if due else "",
                entry.problem or "",
            ]

    return exports.csv_lines([*CSV_HEADER, "problem"], rows())
