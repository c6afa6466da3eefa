"""E-mail alerts over a real loopback SMTP server: the daily digest and the failure mail."""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from smtp_fixtures import *  # noqa: F401,F403
from smtp_fixtures import start_mail_server
from sqlmodel import select
from workflow_factories import (
    audit_entries,
    chain_ok,
    identifiers,
    make_batch,
    make_environment,
)

from webapp.crypto import subject_fingerprint
from webapp.db import session_scope
from webapp.erasure import submission
from webapp.jobs import alerts
from webapp.jobs.schedule import JOBS
from webapp.jobs.scheduler import DeskScheduler
from webapp.lease import acquire_lease
from webapp.models import Batch, BatchState, ChunkState, HeapRequest, Subject, SubjectState, utcnow

# 09:30 UTC: after the default digest hour (7).
NOW = utcnow().replace(hour=9, minute=30)
TODAY = NOW.date()


@pytest.fixture
def lease(app) -> int:
    """This test holds the scheduler lease; alerts.run needs its fencing token."""
    with app.app_context(), session_scope(write=True) as session:
        return acquire_lease(session, holder="test", ttl_seconds=600)


@pytest.fixture
def env_id(app, sandbox) -> int:
    return make_environment(app, sandbox)


def set_due(app, batch_id: int, dues: list[date], state: SubjectState | None = None) -> None:
    """Give the batch's subjects these deadlines, in row order (and optionally a state)."""
    with app.app_context(), session_scope(write=True) as session:
        ids = session.exec(
            select(Subject.id).where(Subject.batch_id == batch_id).order_by(Subject.row_number)
        ).all()
        for subject_id, due in zip(ids, dues, strict=True):
            values = {"due_on": due} | ({"state": state.value} if state else {})
            session.exec(sa.update(Subject).where(Subject.id == subject_id).values(**values))
        session.commit()


def update_batch(app, batch_id: int, **values) -> None:
    with app.app_context(), session_scope(write=True) as session:
        session.exec(sa.update(Batch).where(Batch.id == batch_id).values(**values))
        session.commit()


def add_chunk(app, batch_id: int, state: ChunkState, **values) -> int:
    with app.app_context(), session_scope(write=True) as session:
        index = session.exec(
            select(sa.func.count()).select_from(HeapRequest).where(HeapRequest.batch_id == batch_id)
        ).one()
        chunk = HeapRequest(
            batch_id=batch_id,
            chunk_index=index + 1,
            subject_count=1,
            payload_sha256="0" * 64,
            state=state.value,
            **values,
        )
        session.add(chunk)
        session.commit()
        return chunk.id


@pytest.fixture
def seeded(app, env_id) -> dict:
    """A desk with something in every section of the digest, and some things that must not be."""
    people = identifiers(12)
    late = make_batch(app, env_id, people[:5], state=BatchState.POLLING)
    set_due(
        app,
        late,
        [TODAY - timedelta(days=3), TODAY - timedelta(days=1), TODAY, TODAY + timedelta(days=7)]
        + [TODAY + timedelta(days=20)],  # on track: not in the digest
    )
    done = make_batch(app, env_id, people[5:6], state=BatchState.COMPLETE)
    set_due(app, done, [TODAY - timedelta(days=9)], SubjectState.COMPLETE)
    withdrawn = make_batch(app, env_id, people[6:7], state=BatchState.REJECTED)
    set_due(app, withdrawn, [TODAY - timedelta(days=9)])
    waiting = make_batch(app, env_id, people[7:8], state=BatchState.AWAITING_APPROVAL)
    update_batch(app, waiting, created_at=NOW - timedelta(days=2))
    fresh = make_batch(app, env_id, people[8:9], state=BatchState.AWAITING_APPROVAL)
    update_batch(app, fresh, created_at=NOW - timedelta(hours=3))
    failed = make_batch(app, env_id, people[9:10], state=BatchState.FAILED)
    add_chunk(app, failed, ChunkState.FAILED, last_error="Heap refused it")
    retrying = make_batch(app, env_id, people[10:11], state=BatchState.WAITING_RETRY)
    update_batch(app, retrying, next_attempt_at=NOW + timedelta(minutes=15))
    stale = add_chunk(
        app,
        late,
        ChunkState.ACCEPTED,
        stale=True,
        heap_status="pending",
        deletion_request_id="del-req-77",
        accepted_at=NOW - timedelta(days=40),
    )
    for batch_id in (waiting, fresh, failed, retrying):
        set_due(app, batch_id, [TODAY + timedelta(days=25)])
    return {
        "people": people,
        "late": late,
        "done": done,
        "withdrawn": withdrawn,
        "waiting": waiting,
        "fresh": fresh,
        "failed": failed,
        "retrying": retrying,
        "stale_chunk": stale,
    }


def assert_no_identifiers(received, people) -> None:
    for mail in received:
        for part in ("plain", "html"):
            body = mail.body(part)
            for _kind, value in people:
                assert value not in body, f"{value} in the {part} body"


def test_nothing_is_sent_while_alerts_are_off(app, mail_server, seeded, lease):
    assert alerts.run(app, lease, now=NOW) == []
    assert not mail_server.received
    assert audit_entries(app, "alert.digest_sent") == []


def test_the_digest_lists_what_needs_attention_without_identifiers(
    app, mail_server, alert_settings, seeded, lease
):
    alert_settings(mail_server.port)
    assert alerts.run(app, lease, now=NOW) == ["digest"]
    (mail,) = mail_server.received
    assert mail.rcpt_tos == ["dpo@example.org", "ops@example.org"]
    assert mail.message["Subject"] == (
        f"[Deletion Desk] Digest {TODAY.isoformat()}: 2 overdue, 2 due within 7 days, "
        "1 awaiting approval, 2 batches failing, 2 Heap requests failed or stale"
    )
    text, html = mail.body("plain"), mail.body("html")
    url = "https://desk.example.org/batches/{}".format
    assert "DEADLINES: 2 overdue, 2 due within 7 days" in text
    assert f"Batch #{seeded['late']} (" in text and url(seeded["late"]) in text
    assert f"2 overdue, 2 due soon, earliest due {(TODAY - timedelta(days=3)).isoformat()}" in text
    # The four owed subjects by the first 12 characters of their fingerprints, earliest first.
    with app.app_context():
        shown = [subject_fingerprint(kind, value) for kind, value in seeded["people"][:5]]
    on_track = shown.pop()
    assert "fingerprints: " + ", ".join(fp[:12] for fp in shown) in text
    assert all(fp not in text and fp not in html for fp in shown)  # never the whole key
    assert on_track[:12] not in text
    for quiet in ("done", "withdrawn", "fresh"):
        assert url(seeded[quiet]) not in text, quiet
    assert "AWAITING APPROVAL FOR MORE THAN A DAY: 1" in text and url(seeded["waiting"]) in text
    assert f"Batch #{seeded['failed']} (" in text and "failed, waiting for an officer" in text
    assert f"Batch #{seeded['retrying']} (" in text and "waiting to retry, next attempt" in text
    assert "HEAP REQUESTS FAILED OR STALE: 2" in text
    assert "stale, accepted" in text and "Heap status pending" in text
    assert f'href="{url(seeded["late"])}"' in html and "<h1" in html
    assert_no_identifiers(mail_server.received, seeded["people"])
    (entry,) = audit_entries(app, "alert.digest_sent")
    assert entry["details"]["day"] == TODAY.isoformat()
    assert entry["details"]["overdue"] == 2
    assert entry["details"]["recipients"] == ["dpo@example.org", "ops@example.org"]
    assert chain_ok(app)


def test_the_digest_goes_once_a_day_after_the_configured_hour(
    app, mail_server, alert_settings, seeded, lease
):
    alert_settings(mail_server.port, DESK_DIGEST_HOUR_UTC="10")
    assert alerts.run(app, lease, now=NOW) == []  # 09:30: before the hour
    assert alerts.run(app, lease, now=NOW.replace(hour=10, minute=0)) == ["digest"]
    assert alerts.run(app, lease, now=NOW.replace(hour=16)) == []  # sent today already
    assert alerts.run(app, lease, now=NOW.replace(hour=10) + timedelta(days=1)) == ["digest"]
    assert len(mail_server.received) == 2
    days = [e["details"]["day"] for e in audit_entries(app, "alert.digest_sent")]
    assert days == [TODAY.isoformat(), (TODAY + timedelta(days=1)).isoformat()]


def test_no_digest_when_nothing_needs_attention(app, mail_server, alert_settings, env_id, lease):
    alert_settings(mail_server.port)
    batch_id = make_batch(app, env_id, identifiers(2), state=BatchState.POLLING)
    set_due(app, batch_id, [TODAY + timedelta(days=20)] * 2)
    assert alerts.run(app, lease, now=NOW) == []
    assert not mail_server.received


def test_a_request_heap_refuses_is_mailed_at_once_and_only_once(
    app, sandbox, mail_server, alert_settings, env_id, lease
):
    alert_settings(mail_server.port)
    app.config["DESK_CHUNK_SIZE"] = 3
    people = identifiers(6)
    batch_id = make_batch(app, env_id, people)
    sandbox.add_faults(
        {
            "kind": "400",
            "path": "/user_deletion",
            "shape": "error",
            "message": f"identity {people[1][1]} is not valid",
        }
    )
    submission.submit_due(app)
    now = utcnow().replace(hour=6)  # before the digest hour: only the failure mail goes
    assert alerts.run(app, lease, now=now) == ["failure"]
    (mail,) = mail_server.received
    assert mail.message["Subject"] == "[Deletion Desk] Heap refused a deletion request for good"
    text = mail.body("plain")
    assert f"Batch #{batch_id} (Sandbox " in text and "request 1 of 2, HTTP 400" in text
    assert f"https://desk.example.org/batches/{batch_id}" in text
    assert f'href="https://desk.example.org/batches/{batch_id}"' in mail.body("html")
    assert_no_identifiers(mail_server.received, people)
    assert alerts.run(app, lease, now=now) == []  # already reported
    (sent,) = audit_entries(app, "alert.failure_sent")
    (failure,) = audit_entries(app, "heap_request.failed")
    assert sent["details"]["through_seq"] == failure["seq"]
    assert sent["details"]["batches"] == [batch_id]

    # Retried, refused again: a new refusal, a new mail.
    with app.app_context(), session_scope(write=True) as session:
        submission.retry_failed(session, actor="officer@example.org", batch_id=batch_id)
    sandbox.add_faults({"kind": "400", "path": "/user_deletion", "shape": "error"})
    submission.submit_due(app)
    assert alerts.run(app, lease, now=now) == ["failure"]
    assert len(mail_server.received) == 2


def test_refusals_from_before_alerts_were_turned_on_are_left_to_the_digest(
    app, mail_server, alert_settings, seeded, lease
):
    """The seeded failed chunk has no `heap_request.failed` entry: only the digest tells."""
    alert_settings(mail_server.port)
    assert alerts.run(app, lease, now=NOW.replace(hour=6)) == []


def test_a_failed_send_is_retried_next_tick_and_audited_once_a_day(
    app, alert_settings, seeded, lease, caplog
):
    server, controller = start_mail_server()
    controller.stop()  # nothing listens on the port now
    alert_settings(server.port, DESK_SMTP_USERNAME="desk", DESK_SMTP_PASSWORD="Pw-0f-the-relay")
    caplog.set_level(logging.INFO)
    assert alerts.run(app, lease, now=NOW) == []
    assert alerts.run(app, lease, now=NOW + timedelta(minutes=1)) == []
    (failed,) = audit_entries(app, "alert.failed")
    assert failed["details"]["day"] == TODAY.isoformat()
    assert failed["details"]["error"].startswith(f"SMTP 127.0.0.1:{server.port}: ")
    assert "retrying next tick" in caplog.text and "Pw-0f-the-relay" not in caplog.text
    assert "Pw-0f-the-relay" not in json.dumps(audit_entries(app))
    assert alerts.run(app, lease, now=NOW + timedelta(days=1)) == []
    assert len(audit_entries(app, "alert.failed")) == 2  # a new day, a new entry

    server, controller = start_mail_server()
    try:
        alert_settings(server.port)
        assert alerts.run(app, lease, now=NOW + timedelta(days=1, minutes=1)) == ["digest"]
    finally:
        controller.stop()


def test_a_scheduler_that_lost_the_lease_sends_nothing(
    app, mail_server, alert_settings, seeded, lease
):
    alert_settings(mail_server.port)
    assert alerts.run(app, lease + 1, now=NOW) == []
    assert not mail_server.received


def test_the_alerts_job_runs_under_the_scheduler(app, mail_server, alert_settings, seeded):
    alert_settings(mail_server.port, DESK_DIGEST_HOUR_UTC="0")  # the real clock is past it
    (job,) = [job for job in JOBS if job.id == "alerts"]
    assert job.seconds(app) == 60
    assert DeskScheduler(app, holder="desk-scheduler").tick(job) is True
    (mail,) = mail_server.received
    assert mail.message["Subject"].startswith("[Deletion Desk] Digest ")
