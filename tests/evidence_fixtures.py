"""Fixtures for the evidence tests: a batch carried through the real workflow, a signing key.

`finished_batch` uploads a CSV through the batch service, has a second officer approve it, sends
it to the Heap sandbox with the submission job and polls it to completion: the audit trail it
leaves is the one the evidence must prove.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlmodel import Session, select
from workflow_factories import make_environment

from webapp.db import get_engine, session_scope
from webapp.erasure import batches, polling, submission
from webapp.models import AuditEntry, Batch, HeapDeletionId, HeapRequest, Subject, utcnow
from webapp.trail import audit, tree

__all__ = [
    "FinishedBatch",
    "finished_batch",
    "other_batch",
    "head_of",
    "run_verifier",
    "seed",
    "seed_chain",
    "signing_key_env",
    "subjects_of",
    "unzip",
]

# Identities a certificate and a report must carry intact: non-Latin scripts, and values a
# spreadsheet would run as formulas.
IDENTITIES = [
    "anna.schmidt@example.org",
    "Дмитрий.Иванов@пример.рф",
    "山田太郎@例え.jp",
    '=HYPERLINK("http://evil.example","x")',
    "+31 6 1234 5678",
    "-2+3",
    "@SUM(A1:A9)",
]
USER_IDS = ["7000123", "7000456"]
# Another batch's people: none of them may appear in the first batch's evidence.
OTHER_IDENTITIES = ["zoe.other@example.net", "quentin.q@example.net"]
OTHER_USER_IDS = ["8800991"]


@pytest.fixture
def signing_key_env(monkeypatch) -> str:
    """A DESK_SIGNING_KEY (base64 of the raw key), as PostgreSQL installs must set it."""
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    value = base64.b64encode(raw).decode()
    monkeypatch.setenv("DESK_SIGNING_KEY", value)
    return value


@dataclass
class FinishedBatch:
    """A batch Heap completed, with who uploaded and approved it."""

    id: int
    environment_id: int
    uploader: str
    approver: str
    deletion_request_ids: list[str]


def _csv(identities: list[str] = IDENTITIES, user_ids: list[str] = USER_IDS) -> bytes:
    lines = ["identity,user_id"]
    lines += [f'"{value.replace(chr(34), chr(34) * 2)}",' for value in identities]
    lines += [f",{value}" for value in user_ids]
    lines += [f"{identities[0]},"]  # a duplicate row, never sent
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def finish_batch(app, env_id: int, make_user, data: bytes, *, reference: str) -> FinishedBatch:
    """Upload `data` → four-eyes approval → submission to the sandbox → polled to completion."""
    uploader, approver = make_user("officer"), make_user("officer")
    with app.app_context(), session_scope(write=True) as session:
        batch, _ = batches.create_batch(
            session,
            actor=uploader,
            environment_id=env_id,
            data=data,
            filename="erasure-requests.csv",
            reference=reference,
        )
        batch_id = batch.id
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=approver, batch_id=batch_id)
    submission.submit_due(app)
    later = utcnow() + timedelta(hours=1)
    for step in range(1, 4):
        polling.poll_due(app, now=later + timedelta(hours=step))
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        assert batch.state == "complete", (batch.state, batch.last_error)
        ids = session.exec(
            select(HeapDeletionId.deletion_request_id)
            .join(HeapRequest, HeapRequest.id == HeapDeletionId.heap_request_id)
            .where(HeapRequest.batch_id == batch_id)
        ).all()
    return FinishedBatch(batch_id, env_id, uploader, approver, list(ids))


@pytest.fixture
def finished_batch(app, sandbox, make_user, signing_key_env) -> FinishedBatch:
    """A batch of IDENTITIES and USER_IDS carried through the whole workflow."""
    env_id = make_environment(app, sandbox)
    return finish_batch(app, env_id, make_user, _csv(), reference="DSR-2026-114")


@pytest.fixture
def other_batch(app, finished_batch, make_user) -> FinishedBatch:
    """A second finished batch in the same environment: other people, other staff."""
    data = _csv(OTHER_IDENTITIES, OTHER_USER_IDS)
    return finish_batch(app, finished_batch.environment_id, make_user, data, reference="DSR-9")


def seed_chain(
    connection,
    count: int,
    *,
    start_seq: int = 1,
    prev_hash: str | None = None,
    start_at: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
) -> tuple[int, str]:
    """Append `count` chained entries in one multi-row INSERT: seeding 100,000 takes seconds.

    The rows are what audit.record would write (canonical details, hashes chained, one `step`
    apart from `start_at`), so the chain verifies; returns the last (seq, hash).
    """
    prev = prev_hash or audit.GENESIS_HASH
    moment = start_at or utcnow()
    rows = []
    for seq in range(start_seq, start_seq + count):
        entry = {
            "seq": seq,
            "at": audit.format_at(moment),
            "actor": "seeder",
            "action": "test.seeded",
            "target_type": "test",
            "target_id": str(seq % 1000),
            "details": {"n": seq, "fingerprint": "ab" * 32},
            "prev_hash": prev,
        }
        prev = audit.entry_hash(entry)
        rows.append({**entry, "details": audit.canonical_json(entry["details"]), "hash": prev})
        moment += step
    connection.execute(sa.insert(AuditEntry.__table__), rows)
    # The Merkle tree grows with the trail, as audit.record grows it.
    with Session(bind=connection) as session:
        tree.build(session)
        session.flush()
    return start_seq + count - 1, prev


def seed(app, count: int, **options) -> tuple[int, str]:
    """seed_chain after the current head, in a transaction of its own."""
    seq, head = head_of(app)
    with app.app_context(), get_engine().begin() as connection:
        return seed_chain(connection, count, start_seq=seq + 1, prev_hash=head, **options)


def head_of(app) -> tuple[int, str]:
    """(seq, hash) of the chain's head."""
    with app.app_context(), get_engine().connect() as connection:
        row = connection.execute(
            sa.select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
        ).first()
    return (row[0], row[1]) if row else (0, audit.GENESIS_HASH)


def unzip(data: bytes, folder: Path) -> Path:
    """Extract a zip into `folder` and return it."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(folder)
    return folder


# The auditor's own Python, isolated (-I): no desk module, no site packages, no PYTHON* setting.
PYTHON3 = shutil.which("python3") or sys.executable


def run_verifier(folder: Path) -> subprocess.CompletedProcess:
    """Run the pack's own verify.py as an outside auditor would: `python3 -I verify.py`."""
    return subprocess.run(
        [PYTHON3, "-I", "verify.py"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def subjects_of(app, batch_id: int) -> list[Subject]:
    """The batch's rows in file order."""
    with app.app_context(), session_scope(write=False) as session:
        query = select(Subject).where(Subject.batch_id == batch_id).order_by(Subject.row_number)
        return list(session.exec(query).all())


def pdf_text(pdf: bytes) -> str:
    """A PDF's text as pdftotext extracts it (layout kept: one fact per line)."""
    assert pdf.startswith(b"%PDF-")
    done = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode("utf-8")


def verified(folder: Path) -> list[str]:
    """The lines verify.py prints for evidence that must verify (the first is "ok")."""
    result = run_verifier(folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "ok"
    return lines


def browser_sign_in(page, live_server: str, email: str) -> None:
    """Sign in through the real form in a browser page."""
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()


def first_failure(folder: Path) -> str:
    """The line verify.py names the first problem on (it must fail)."""
    result = run_verifier(folder)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("FAILED: "), result.stdout
    return result.stdout.splitlines()[0]


# --- tampering with unzipped evidence: each returns what verify.py must name first ---------


def _lines(folder: Path, name: str) -> list[str]:
    return (folder / name).read_text(encoding="utf-8").splitlines(keepends=True)


def _write(folder: Path, name: str, lines: list[str]) -> None:
    (folder / name).write_text("".join(lines), encoding="utf-8")


def _seq(line: str) -> int:
    return json.loads(line)["seq"]


def alter_entry(folder: Path) -> str:
    """One character of an entry's actor changed."""
    lines = _lines(folder, "entries.jsonl")
    line = lines[1]
    at = line.index('"actor":"') + len('"actor":"')
    lines[1] = line[:at] + chr(ord(line[at]) ^ 1) + line[at + 1 :]
    _write(folder, "entries.jsonl", lines)
    return f"entries.jsonl: entry {_seq(line)} was altered"


def rehash_entry(folder: Path) -> str:
    """An entry altered and its hash recomputed: only its proof can tell."""
    lines = _lines(folder, "entries.jsonl")
    entry = json.loads(lines[1])
    entry["actor"] = "mallory@example.org"
    entry["hash"] = audit.entry_hash(entry)
    lines[1] = audit.canonical_json(entry) + "\n"
    _write(folder, "entries.jsonl", lines)
    return f"the proof of entry {entry['seq']} is for another leaf"


def drop_entry(folder: Path) -> str:
    """An entry removed (its proof left)."""
    lines = _lines(folder, "entries.jsonl")
    dropped = lines.pop(2)
    _write(folder, "entries.jsonl", lines)
    return f"entries.jsonl: entry {_seq(dropped)} is missing (manifest.json lists it)"


def drop_entry_and_proof(folder: Path) -> str:
    """An entry removed with its proof, so the two files still pair up."""
    proofs = _lines(folder, "proofs.jsonl")
    proofs.pop(2)
    _write(folder, "proofs.jsonl", proofs)
    return drop_entry(folder)


def swap_proofs(folder: Path) -> str:
    """Two entries' proofs exchanged (whole lines)."""
    proofs = _lines(folder, "proofs.jsonl")
    proofs[1], proofs[-1] = proofs[-1], proofs[1]
    _write(folder, "proofs.jsonl", proofs)
    return f"the proof of entry {_seq(proofs[1])} stands where entry {_seq(proofs[-1])}'s belongs"


def swap_proof_bodies(folder: Path) -> str:
    """Two proofs' leaf hashes and paths exchanged, each keeping its seq."""
    proofs = [json.loads(line) for line in _lines(folder, "proofs.jsonl")]
    first, last = proofs[1], proofs[-1]
    for key in ("leaf_hash", "path"):
        first[key], last[key] = last[key], first[key]
    _write(folder, "proofs.jsonl", [audit.canonical_json(p) + "\n" for p in proofs])
    return f"the proof of entry {first['seq']} is for another leaf"


def duplicate_proof(folder: Path) -> str:
    """One entry given a second proof."""
    proofs = _lines(folder, "proofs.jsonl")
    proofs.insert(2, proofs[1])
    _write(folder, "proofs.jsonl", proofs)
    return f"proofs.jsonl: entry {_seq(proofs[1])} has 2 proofs, not one"


def resize_proof(folder: Path) -> str:
    """One proof claimed for a tree of another size than the signed head's."""
    proofs = [json.loads(line) for line in _lines(folder, "proofs.jsonl")]
    first = proofs[0]
    first["tree_size"] -= 1
    _write(folder, "proofs.jsonl", [audit.canonical_json(p) + "\n" for p in proofs])
    return f"the proof of entry {first['seq']} is for a tree of {first['tree_size']} entries"


def bend_proof_path(folder: Path) -> str:
    """One hash of one proof's path changed."""
    proofs = [json.loads(line) for line in _lines(folder, "proofs.jsonl")]
    proof = next(p for p in proofs if p["path"])
    proof["path"][0] = ("0" if proof["path"][0][0] != "0" else "1") + proof["path"][0][1:]
    _write(folder, "proofs.jsonl", [audit.canonical_json(p) + "\n" for p in proofs])
    return f"the proof of entry {proof['seq']} does not lead to the signed root"


def forge_sth(folder: Path) -> str:
    """The tree head's root replaced, its signature kept."""
    sth = json.loads((folder / "sth.json").read_text())
    sth["root_hash"] = hashlib.sha256(b"another tree").hexdigest()
    (folder / "sth.json").write_text(json.dumps(sth, indent=2) + "\n")
    return "sth.json: the signature of the tree head does not verify"


def break_manifest_signature(folder: Path) -> str:
    """One hex digit of manifest.sig changed."""
    text = (folder / "manifest.sig").read_text()
    (folder / "manifest.sig").write_text(("1" if text[0] == "0" else "0") + text[1:])
    return "manifest.sig: the signature of manifest.json does not verify"


def change_file(name: str):
    """One byte in the middle of `name` flipped."""

    def tamper(folder: Path) -> str:
        data = bytearray((folder / name).read_bytes())
        data[len(data) // 2] ^= 1
        (folder / name).write_bytes(bytes(data))
        return f"{name} was changed: its SHA-256 is not the one in manifest.json"

    return tamper


def remove_file(name: str):
    """`name` deleted from the folder."""

    def tamper(folder: Path) -> str:
        (folder / name).unlink()
        return f"{name} is missing"

    return tamper


TAMPERINGS = {
    "altered entry": alter_entry,
    "altered entry, hash recomputed": rehash_entry,
    "dropped entry": drop_entry,
    "dropped entry and its proof": drop_entry_and_proof,
    "swapped proofs": swap_proofs,
    "swapped proof bodies": swap_proof_bodies,
    "duplicated proof": duplicate_proof,
    "proof for another tree size": resize_proof,
    "bent proof path": bend_proof_path,
    "forged tree head": forge_sth,
    "bad manifest signature": break_manifest_signature,
    "changed README.txt": change_file("README.txt"),
    "missing tree head": remove_file("sth.json"),
}
