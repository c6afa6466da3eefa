"""Signed tree heads (STH): the desk's Ed25519 signature over the audit tree's size and root.

A head is issued whenever the trail grew, at most DESK_STH_EVERY_SECONDS apart (a scheduler
job) and on demand (evidence needs one that covers its entries). With DESK_TSA_URL set, an
RFC 3161 authority also timestamps each head, so not even the desk's own key can backdate one.
Heads live in their own append-only table, never as audit entries: an entry about a head would
grow the log it signs (PITFALLS.md #19). Shapes in DESIGN.md, "Transparency log".
"""

from __future__ import annotations

import base64
import binascii
import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from webapp.db import session_scope
from webapp.evidence.signing import (
    SigningKeyError,
    public_key,
    raw_public_key,
    signing_key,
    verify_signature,
)
from webapp.evidence.timestamps import TimestampError, request_timestamp
from webapp.evidence.verifier_script import key_id
from webapp.lease import lease_is_current
from webapp.models import AuditEntry, AuditTreeHead, utcnow
from webapp.trail import audit, tree

log = logging.getLogger(__name__)


class TreeHeadError(RuntimeError):
    """No tree head can be issued now; the message says why, for a person."""


def sth_message(tree_size: int, root_hash: str, timestamp: str) -> bytes:
    """The bytes an STH's signature (and its RFC 3161 timestamp) cover."""
    body = {"root_hash": root_hash, "timestamp": timestamp, "tree_size": tree_size}
    return audit.canonical_json(body).encode("utf-8")


def sth_dict(row: AuditTreeHead) -> dict:
    """A head as the API, evidence packs and witnesses see it."""
    sth = {
        "tree_size": row.tree_size,
        "root_hash": row.root_hash,
        "timestamp": row.timestamp,
        "key_id": row.key_id,
        "signature": row.signature,
    }
    if row.tsa_token:
        sth["tsa_token"] = row.tsa_token
    return sth


def latest(session: Session) -> AuditTreeHead | None:
    """The newest head (the largest tree), or None before the first."""
    return session.exec(
        select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(1)
    ).first()


def at_size(session: Session, tree_size: int) -> AuditTreeHead | None:
    """The head issued for exactly `tree_size` entries, if one was."""
    return session.exec(select(AuditTreeHead).where(AuditTreeHead.tree_size == tree_size)).first()


def covering(session: Session, seq: int) -> AuditTreeHead | None:
    """The oldest head whose tree holds entry `seq`."""
    return session.exec(
        select(AuditTreeHead)
        .where(AuditTreeHead.tree_size >= seq)
        .order_by(AuditTreeHead.tree_size)
        .limit(1)
    ).first()


def page(session: Session, *, limit: int = 100) -> list[AuditTreeHead]:
    """The newest heads first, for the Checkpoints page."""
    return list(
        session.exec(
            select(AuditTreeHead).order_by(AuditTreeHead.tree_size.desc()).limit(limit)
        ).all()
    )


def count(session: Session) -> int:
    """How many heads were issued."""
    return session.exec(select(sa.func.count()).select_from(AuditTreeHead)).one()


def issue(
    app: Flask, *, fencing_token: int | None = None, now: datetime | None = None
) -> AuditTreeHead | None:
    """Sign the tree as it stands if it grew since the last head; return the newest head.

    Three short steps, no transaction held across the time-stamping authority's HTTP call:
    read size and root, sign (and timestamp), store. None only before the first entry.
    """
    try:
        key = signing_key(app)
    except SigningKeyError as error:
        raise TreeHeadError(f"No tree head can be signed: {error}") from None
    with session_scope(write=False, app=app) as session:
        newest = latest(session)
        size = tree.size(session)
        if size == 0 or (newest is not None and newest.tree_size >= size):
            if newest is not None:
                session.expunge(newest)
            return newest
        root_hash = tree.root(session, size).hex()
    timestamp = audit.format_at(now or utcnow())
    message = sth_message(size, root_hash, timestamp)
    head = AuditTreeHead(
        tree_size=size,
        root_hash=root_hash,
        timestamp=timestamp,
        key_id=key_id(raw_public_key(key)),
        signature=base64.b64encode(key.sign(message)).decode("ascii"),
    )
    url = app.config.get("DESK_TSA_URL")
    if url:
        try:
            token = request_timestamp(url, message, timeout=10)
        except TimestampError as error:
            # No head rather than an untimestamped one: the operator asked for timestamps.
            raise TreeHeadError(f"The time-stamping authority did not answer: {error}") from None
        head.tsa_token = base64.b64encode(token).decode("ascii")
    with session_scope(write=True, app=app) as session:
        if fencing_token is not None and not lease_is_current(session, fencing_token):
            return None
        session.add(head)
        try:
            session.commit()
        except IntegrityError:
            # Another process signed this same size meanwhile: its head stands.
            session.rollback()
            head = at_size(session, size)
        session.refresh(head)
        session.expunge(head)
    log.info("signed tree head issued at size %s", size)
    return head


def scheduled_tree_head(app: Flask, fencing_token: int) -> None:
    """Sign a head when the trail grew (a tick every DESK_STH_EVERY_SECONDS)."""
    try:
        issue(app, fencing_token=fencing_token)
    except TreeHeadError as error:
        log.error("no signed tree head issued: %s", error)


@dataclass
class HeadsReport:
    """What checking every stored head against the trail found."""

    heads: int
    trusted_key_id: str | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_heads(session: Session, *, app: Flask | None = None) -> HeadsReport:
    """Check every head's signature, and its root against the tree recomputed from the entries.

    A rewrite of anything a head covers — with hashes recomputed and the stored tree rebuilt —
    changes the root the entries give, and the desk's signature does not follow it.
    """
    heads = list(session.exec(select(AuditTreeHead).order_by(AuditTreeHead.tree_size)).all())
    if not heads:
        return HeadsReport(0, None)
    try:
        trusted = public_key(app)
    except SigningKeyError as error:
        return HeadsReport(len(heads), None, [f"the signatures cannot be checked: {error}"])
    problems: list[str] = []
    for head in heads:
        message = sth_message(head.tree_size, head.root_hash, head.timestamp)
        try:
            signature = base64.b64decode(head.signature, validate=True)
        except (binascii.Error, ValueError):
            signature = b""
        if head.key_id != trusted.key_id or not verify_signature(trusted.raw, message, signature):
            problems.append(f"the signature of the tree head at size {head.tree_size} is not valid")
    hashes = (
        row[0]
        for row in session.connection().execute(
            sa.select(AuditEntry.hash).order_by(AuditEntry.seq).execution_options(yield_per=5000)
        )
    )
    roots = tree.roots_while_reading(hashes, {head.tree_size for head in heads})
    for head in heads:
        root = roots.get(head.tree_size)
        if root is None:
            problems.append(
                f"the trail has fewer entries than the tree head at size {head.tree_size}: "
                "entries were removed (a rollback or truncation)"
            )
        elif root.hex() != head.root_hash:
            problems.append(
                f"the entries no longer give the root signed at size {head.tree_size}: "
                "the trail was rewritten"
            )
    return HeadsReport(len(heads), trusted.key_id, problems)
