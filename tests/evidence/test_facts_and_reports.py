"""Evidence facts, the batch report, the deadline report and the full audit export."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import IDENTITIES, USER_IDS, seed, subjects_of
from workflow_factories import identifiers, make_batch, make_environment

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.evidence import facts as evidence
from webapp.evidence import tree_heads
from webapp.evidence.reports import REPORT_COLUMNS
from webapp.models import BatchState, Subject
from webapp.trail import audit, exports


def report(client, batch_id: int, query: str = "", token: str | None = None) -> list[dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    prefix = "/api/v1" if token else ""
    response = client.get(f"{prefix}/batches/{batch_id}/report.csv{query}", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.splitlines()[0] == ",".join(REPORT_COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


# --- facts ----------------------------------------------------------------------------------


def test_batch_evidence_gathers_the_batch_its_requests_and_its_history(app, finished_batch):
    with app.app_context(), session_scope(write=False) as session:
        ev = evidence.batch_evidence(session, finished_batch.id)
        entries = {e["seq"]: e for e in audit.iter_entries(session)}
    assert ev.complete and ev.people["approved_by"] == finished_batch.approver
    assert ev.counts["valid"] == 9 and ev.counts["complete"] == 9 and ev.counts["duplicate"] == 1
    assert [d.deletion_request_id for r in ev.requests for d in r.deletion_ids] == (
        finished_batch.deletion_request_ids
    )
    assert ev.deadlines.met == 9 and ev.deadlines.missed == 0
    assert ev.chain.sth is None  # no tree head signed yet
    about = [entries[seq] for seq in ev.chain.seqs]
    assert all(
        e["target_type"] in ("batch", "heap_request") or e["details"].get("batch_id") for e in about
    )
    assert about[0]["action"] == "batch.uploaded" and about[-1]["action"] == "batch.completed"
    assert [e["seq"] for e in ev.history] == ev.chain.seqs
    assert ev.chain.targets == {"batch": [str(finished_batch.id)], "heap_request": ["1"]}


def test_evidence_under_a_tree_head_holds_only_what_it_covers(app, finished_batch):
    head = tree_heads.sth_dict(tree_heads.issue(app))
    with app.app_context(), session_scope(write=True) as session:
        audit.record(
            session,
            actor="x@example.org",
            action="batch.noted",
            target_type="batch",
            target_id=finished_batch.id,
        )
        session.commit()
    with app.app_context(), session_scope(write=False) as session:
        under = evidence.batch_evidence(session, finished_batch.id, sth=head)
        now = evidence.batch_evidence(session, finished_batch.id)
    assert under.chain.sth == head == now.chain.sth and under.chain.covered
    assert under.chain.last_seq <= head["tree_size"] < now.chain.last_seq
    assert now.history[-1]["action"] == "batch.noted" and not now.chain.covered


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        ("identity", "alice@bob.com", "a***@b***.com"),
        ("identity", "Дмитрий@пример.рф", "Д***@п***.рф"),
        ("identity", "someone", "so***ne"),
        ("identity", "abc", "a***"),
        ("identity", "ab", "***"),
        ("user_id", "1234589", "12***89"),
        ("identity", "x@localhost", "x***@l***"),
    ],
)
def test_mask_shows_enough_to_recognise_not_to_read(kind, value, masked):
    assert evidence.mask(kind, value) == masked


# --- the batch report ----------------------------------------------------------------------


def test_report_lists_every_row_with_its_heap_id_and_deadline(
    app, client, api_token, finished_batch
):
    rows = report(client, finished_batch.id, token=api_token("auditor"))
    assert len(rows) == 10
    valid = [r for r in rows if r["classification"] == "valid"]
    assert len(valid) == 9
    for row in valid:
        assert row["heap_deletion_request_ids"] == finished_batch.deletion_request_ids[0]
        assert row["status"] == "complete" and row["deadline"] == "met"
        assert row["completed_at"] and row["submitted_at"] and len(row["fingerprint"]) == 64
    (duplicate,) = [r for r in rows if r["classification"] == "duplicate"]
    assert duplicate["status"] == "skipped" and duplicate["deadline"] == "not applicable"
    assert {r["identifier"] for r in valid if r["kind"] == "user_id"} == set(USER_IDS)
    assert "Дмитрий.Иванов@пример.рф" in {r["identifier"] for r in valid}
    assert valid[0]["reference"] == "" or valid[0]["received_on"]


@pytest.mark.parametrize("value", [v for v in IDENTITIES if v[0] in "=+-@"])
def test_report_cells_cannot_run_as_formulas(app, client, api_token, finished_batch, value):
    rows = report(client, finished_batch.id, token=api_token("auditor"))
    cells = {r["identifier"] for r in rows}
    assert value not in cells
    assert "'" + value in cells


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx", "plain"])
def test_csv_safe_neutralises_formula_prefixes(value):
    expected = value if value == "plain" else "'" + value
    assert exports.csv_safe(value) == expected


def test_masked_report_hides_identifiers(app, client, login_as, finished_batch):
    login_as("auditor")
    rows = report(client, finished_batch.id, "?masked=1")
    cells = {r["identifier"] for r in rows}
    assert not cells & set(IDENTITIES + USER_IDS)
    assert {"a***@e***.org", "70***23", "Д***@п***.рф"} <= cells


def test_masked_report_shortens_fingerprints_to_a_findable_prefix(
    app, client, login_as, finished_batch
):
    login_as("auditor")
    full = {r["row"]: r["fingerprint"] for r in report(client, finished_batch.id)}
    masked = report(client, finished_batch.id, "?masked=1")
    for row in masked:
        assert len(row["fingerprint"]) == 16
        assert full[row["row"]].startswith(row["fingerprint"])


def test_report_errors(app, client, api_token, login_as, finished_batch):
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    missing = client.get("/api/v1/batches/999/report.csv", headers=headers)
    assert (
        missing.status_code == 404 and missing.json["error"]["message"] == "There is no batch 999."
    )
    bad = client.get(f"/api/v1/batches/{finished_batch.id}/report.csv?masked=2", headers=headers)
    assert bad.status_code == 400
    login_as("auditor")
    assert client.get("/batches/999/report.csv").status_code == 404


def test_report_of_a_long_batch_streams_every_row(app, client, api_token, sandbox):
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(4500), state=BatchState.AWAITING_APPROVAL)
    rows = report(client, batch_id, "?masked=1", token=api_token("auditor"))
    assert [int(r["row"]) for r in rows] == list(range(1, 4501))
    assert {r["deadline"] for r in rows} == {"open"}


# --- the deadline report ------------------------------------------------------------------


def test_deadline_report_lists_overdue_and_at_risk_without_identifiers(
    app, client, api_token, sandbox, make_user
):
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(4), state=BatchState.POLLING)
    withdrawn = make_batch(app, env_id, identifiers(1, start=9), state=BatchState.AWAITING_APPROVAL)
    today = date.today()
    dues = [today - timedelta(days=3), today + timedelta(days=2), today + timedelta(days=30)]
    with app.app_context(), session_scope(write=True) as session:
        rows = subjects_of(app, batch_id)
        for subject, due in zip(rows, dues, strict=False):
            session.exec(sa.update(Subject).where(Subject.id == subject.id).values(due_on=due))
        session.exec(
            sa.update(Subject)
            .where(Subject.id == rows[3].id)
            .values(due_on=today - timedelta(days=9), state="complete")
        )
        session.exec(sa.update(Subject).where(Subject.batch_id == withdrawn).values(due_on=today))
        session.commit()
    with app.app_context(), session_scope(write=True) as session:
        batches.reject(session, actor=make_user("officer"), batch_id=withdrawn, reason="duplicate")
    response = client.get(
        "/api/v1/deadlines/report.csv", headers={"Authorization": f"Bearer {api_token('auditor')}"}
    )
    text = response.get_data(as_text=True)
    lines = list(csv.DictReader(io.StringIO(text)))
    assert [(r["urgency"], r["days_left"], r["days_overdue"], r["due_on"]) for r in lines] == [
        ("overdue", "", "3", dues[0].isoformat()),
        ("due_soon", "2", "", dues[1].isoformat()),
    ]
    assert all(r["batch_id"] == str(batch_id) and len(r["fingerprint"]) == 64 for r in lines)
    assert "@example.org" not in text  # fingerprints and batch references only


def test_deadline_report_page_link(app, client, login_as):
    login_as("auditor")
    response = client.get("/deadlines/report.csv")
    assert response.status_code == 200
    assert response.get_data(as_text=True).startswith("urgency,days_left,days_overdue,due_on")


# --- the full audit export ----------------------------------------------------------------


def _drain(chunks) -> tuple[int, int, int]:
    """Consume a streamed export: (lines, bytes, peak traced memory)."""
    tracemalloc.start()
    try:
        lines = size = 0
        for chunk in chunks:
            lines += chunk.count("\n")
            size += len(chunk)
        return lines, size, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_export_of_100000_entries_runs_in_flat_memory_and_filters_by_date(app):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seed(app, 100_000, start_at=start, step=timedelta(minutes=1))
    lines, size, peak = _drain(exports.audit_jsonl(app))
    assert lines == 100_000
    assert peak < 4 * 1024 * 1024 < size / 8  # one page of rows, not the export
    rows, size, peak = _drain(exports.audit_csv(app))
    assert rows == 100_001 and peak < 4 * 1024 * 1024 < size / 6
    day = {"since": start + timedelta(days=10), "until": start + timedelta(days=11)}
    one_day = "".join(exports.audit_jsonl(app, **day)).splitlines()
    assert len(one_day) == 24 * 60
    first = json.loads(one_day[0])
    assert first["at"] == "2026-01-11T00:00:00.000000Z"
    with app.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).entries == 100_000


def test_the_export_api_filters_by_date(app, client, api_token):
    start = datetime(2026, 3, 1, tzinfo=UTC)
    seed(app, 300, start_at=start, step=timedelta(hours=1))
    token = api_token("auditor")
    response = client.get(
        "/api/v1/audit/export.csv?since=2026-03-02T00:00:00Z&until=2026-03-03T00:00:00Z",
        headers={"Authorization": f"Bearer {token}"},
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert len(rows) == 24 and {r["at"][:10] for r in rows} == {"2026-03-02"}


def test_masked_and_unmasked_reports_download_under_different_names(
    app, client, login_as, api_token, finished_batch
):
    login_as("auditor")
    names = {
        query: client.get(f"/batches/{finished_batch.id}/report.csv{query}").headers[
            "Content-Disposition"
        ]
        for query in ("", "?masked=1")
    }
    assert f"batch-{finished_batch.id}-report-unmasked.csv" in names[""]
    assert f"batch-{finished_batch.id}-report-masked.csv" in names["?masked=1"]
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    api = client.get(f"/api/v1/batches/{finished_batch.id}/report.csv?masked=1", headers=headers)
    assert f"batch-{finished_batch.id}-report-masked.csv" in api.headers["Content-Disposition"]


def test_a_complete_batch_page_shows_its_evidence_first(app, client, login_as, finished_batch):
    login_as("auditor")
    page = client.get(f"/batches/{finished_batch.id}").get_data(as_text=True)
    assert page.count('data-testid="evidence"') == 1
    assert page.index('data-testid="evidence"') < page.index("About this batch")
    assert "Report with identifiers (CSV)" in page and "Report, identifiers masked (CSV)" in page
