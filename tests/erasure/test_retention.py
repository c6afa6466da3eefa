"""Retention: identifiers purged after the retention period, every proof still working."""

from __future__ import annotations

import csv
import io
import subprocess
from datetime import timedelta

import sqlalchemy as sa
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import run_verifier, subjects_of, unzip
from sqlmodel import select
from workflow_factories import make_batch, make_environment

from webapp.cli import retention_purge
from webapp.db import session_scope
from webapp.erasure import batches, lookup, retention
from webapp.evidence import certificates, checkpoints
from webapp.evidence.pack import evidence_pack
from webapp.jobs.scheduler import tick_once
from webapp.models import Batch, BatchState, Subject, utcnow
from webapp.trail import audit


def purge(app, *, now, days: int = 30) -> retention.PurgeResult:
    with app.app_context(), session_scope(write=True) as session:
        return retention.purge(session, actor="test", retention_days=days, now=now)


def completed_at(app, batch_id: int):
    with app.app_context(), session_scope(write=False) as session:
        return session.get(Batch, batch_id).completed_at


def purge_entries(app) -> list[dict]:
    with app.app_context(), session_scope(write=False) as session:
        return list(audit.iter_entries(session, action="retention.purged"))


def test_nothing_is_purged_before_the_period_ends(app, finished_batch):
    done = completed_at(app, finished_batch.id)
    result = purge(app, now=done + timedelta(days=29))
    assert result.purged == 0 and purge_entries(app) == []
    assert all(s.identifier_encrypted for s in subjects_of(app, finished_batch.id))


def test_purge_keeps_every_proof_working(app, finished_batch, client, api_token, tmp_path):
    done = completed_at(app, finished_batch.id)
    result = purge(app, now=done + timedelta(days=31))
    # Every row of the closed batch: the 9 deleted subjects and the duplicate never sent.
    assert (result.purged, result.batch_ids) == (10, [finished_batch.id])
    rows = subjects_of(app, finished_batch.id)
    assert all(s.identifier_encrypted is None and s.purged_at for s in rows)
    (entry,) = purge_entries(app)
    assert entry["details"]["purged"] == 10 and entry["details"]["batch_ids"] == [finished_batch.id]
    assert entry["details"]["retention_days"] == 30

    with app.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok
        assert checkpoints.verify_checkpoints(session).ok
        hits = lookup.lookup(session, kind="identity", value="Дмитрий.Иванов@пример.рф")
        assert [hit.batch.id for hit in hits] == [finished_batch.id]
        assert hits[0].subject.state == "complete" and hits[0].deletion_ids
        pdf = certificates.issue_batch_certificate(session, finished_batch.id)
        subject_pdf = certificates.issue_subject_certificate(session, hits[0].subject.id)

    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    report = client.get(f"/api/v1/batches/{finished_batch.id}/report.csv", headers=headers)
    lines = list(csv.DictReader(io.StringIO(report.get_data(as_text=True))))
    assert {line["identifier"] for line in lines} == {"purged"}
    assert all(line["identifier_purged_at"] for line in lines)
    assert {line["status"] for line in lines if line["classification"] == "valid"} == {"complete"}

    text = subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "Identifiers purged" in text and "Certificate of erasure" in text
    subject_text = subprocess.run(
        ["pdftotext", "-", "-"], input=subject_pdf, capture_output=True, check=True
    ).stdout.decode()
    assert "purged on" in subject_text and hits[0].subject.fingerprint in subject_text

    folder = unzip(b"".join(evidence_pack(app, finished_batch.id)), tmp_path / "pack")
    verified = run_verifier(folder)
    assert verified.returncode == 0, verified.stdout
    manifest_seqs = (folder / "manifest.json").read_text()
    assert str(entry["seq"]) in manifest_seqs  # the purge is part of the batch's evidence


def test_a_second_run_finds_nothing_and_writes_nothing(app, finished_batch):
    done = completed_at(app, finished_batch.id)
    purge(app, now=done + timedelta(days=31))
    assert purge(app, now=done + timedelta(days=40)).purged == 0
    assert len(purge_entries(app)) == 1


def test_rejected_batches_are_purged_and_open_ones_never(app, sandbox, make_user):
    env_id = make_environment(app, sandbox)
    waiting = make_batch(
        app, env_id, [("identity", "w@example.org")], state=BatchState.AWAITING_APPROVAL
    )
    rejected = make_batch(
        app, env_id, [("identity", "r@example.org")], state=BatchState.AWAITING_APPROVAL
    )
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=make_user("officer"), batch_id=rejected, reason="wrong list")
    result = purge(app, now=utcnow() + timedelta(days=31))
    assert result.batch_ids == [rejected]
    assert subjects_of(app, waiting)[0].identifier_encrypted is not None
    assert subjects_of(app, rejected)[0].identifier_encrypted is None


def test_cli_purge(app, runner, finished_batch):
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Subject).values(completed_at=utcnow() - timedelta(days=3)))
        session.exec(sa.update(Batch).values(completed_at=utcnow() - timedelta(days=3)))
        session.commit()
    assert "nothing to purge" in runner.invoke(retention_purge).output
    result = runner.invoke(retention_purge, ["--days", "2"])
    assert result.exit_code == 0
    assert f"purged 10 identifier(s) in batch(es) {finished_batch.id}" in result.output


def test_scheduled_purge_uses_the_configured_period(app, finished_batch):
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Subject).values(completed_at=utcnow() - timedelta(days=3)))
        session.exec(sa.update(Batch).values(completed_at=utcnow() - timedelta(days=3)))
        session.commit()
    tick_once(app, holder="retention-test")
    assert purge_entries(app) == []  # 30 days by default
    app.config["DESK_RETENTION_DAYS"] = 2
    assert "retention_purge" in tick_once(app, holder="retention-test")
    (entry,) = purge_entries(app)
    assert entry["actor"] == audit.SYSTEM_ACTOR
    with app.app_context(), session_scope(write=False) as session:
        left = session.exec(
            select(sa.func.count()).where(Subject.identifier_encrypted.is_not(None))
        ).one()
    assert left == 0
