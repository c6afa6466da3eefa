"""What the desk offers its witnesses: the standalone witness.py, and its signed tree heads.

A witness keeps the desk's latest signed tree head and checks at every run that the next one
extends it (witness_script.py). The script an auditor downloads carries the desk's public key,
so the key they pin is the one they received from the desk they trust, not whatever a later
answer claims.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlmodel import Session

from webapp.db import session_scope
from webapp.evidence import checkpoints, signing, tree_heads
from webapp.models import AuditTreeHead

log = logging.getLogger(__name__)

SCRIPT = Path(__file__).resolve().parent / "witness_script.py"
# The one line of witness_script.py the desk fills in with its key when it serves the file.
_KEY_LINE = re.compile(r'^PINNED_PUBLIC_KEY_HEX = ""  # ---- DESK KEY$', re.MULTILINE)


def script_text(app: Flask | None = None) -> str:
    """witness_script.py with the desk's public key filled in (SigningKeyError without one)."""
    public = signing.public_key(app)
    line = f'PINNED_PUBLIC_KEY_HEX = "{public.raw.hex()}"  # ---- DESK KEY (id {public.key_id})'
    text, found = _KEY_LINE.subn(line, SCRIPT.read_text("utf-8"))
    if found != 1:
        raise RuntimeError("witness_script.py has lost the line its key is filled in at")
    return text


@dataclass
class CheckpointsPage:
    """The Checkpoints page: signed checkpoints of the chain, and signed heads of the tree."""

    checkpoints: checkpoints.Overview
    heads: list[AuditTreeHead]
    heads_total: int


def checkpoints_page(session: Session, *, limit: int = 50) -> CheckpointsPage:
    """Everything the Checkpoints page shows: checkpoints (checked) and the newest tree heads."""
    return CheckpointsPage(
        checkpoints=checkpoints.overview(session),
        heads=tree_heads.page(session, limit=limit),
        heads_total=tree_heads.count(session),
    )


@dataclass(frozen=True)
class SignedHead:
    """What asking for a tree head gave: the newest head, and whether it was signed just now."""

    head: AuditTreeHead | None
    new: bool


def sign_tree_head(app: Flask) -> SignedHead:
    """Sign the tree as it stands if it grew since the last head (TreeHeadError says why not)."""
    with session_scope(write=False, app=app) as session:
        before = tree_heads.latest(session)
        size_before = before.tree_size if before else 0
    head = tree_heads.issue(app)
    return SignedHead(head, head is not None and head.tree_size > size_before)
