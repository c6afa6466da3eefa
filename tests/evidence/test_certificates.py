"""Deletion certificates: what a person reads and what pdftotext extracts."""

from __future__ import annotations

import re
import subprocess

import pytest
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import pdf_text, subjects_of
from workflow_factories import identifiers, make_batch, make_environment

from webapp.db import session_scope
from webapp.evidence import certificates, downloads, signing, tree_heads
from webapp.models import Batch, BatchState

text_of = pdf_text


def pages_of(pdf: bytes) -> int:
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    line = next(x for x in info.decode().splitlines() if x.startswith("Pages:"))
    return int(line.split()[1])


def batch_pdf(app, batch_id: int) -> bytes:
    with app.app_context(), session_scope(write=False) as session:
        return certificates.issue_batch_certificate(session, batch_id)


def test_batch_certificate_states_the_facts_and_the_tree_head(app, finished_batch, artifacts_dir):
    head = tree_heads.issue(app)
    with app.app_context(), session_scope(write=False) as session:
        file_sha256 = session.get(Batch, finished_batch.id).file_sha256
    pdf = batch_pdf(app, finished_batch.id)
    (artifacts_dir / "certificate-batch.pdf").write_bytes(pdf)
    text = text_of(pdf)
    assert f"Certificate of erasure — batch {finished_batch.id}" in text
    for deletion_request_id in finished_batch.deletion_request_ids:
        assert deletion_request_id in text
    assert re.search(rf"Signed tree head\s+{head.tree_size} entries, signed", text)
    assert re.search(rf"Tree root hash\s+{head.root_hash}\n", text)
    assert signing.public_key(app).key_id in text and "newer than this tree head" not in text
    assert finished_batch.uploader in text and finished_batch.approver in text
    assert "erasure-requests.csv" in text and "DSR-2026-114" in text and file_sha256 in text
    assert "9 completed on or before their due date" in text
    assert "batch.approved" in text and "batch.completed" in text
    assert "python3 verify.py" in text
    # No identifier is printed on a batch certificate: it outlives the retention period.
    assert "anna.schmidt@example.org" not in text


def test_a_certificate_says_which_entries_no_tree_head_covers_yet(app, finished_batch):
    assert "Signed tree head none signed yet" in " ".join(
        text_of(batch_pdf(app, finished_batch.id)).split()
    )
    head = tree_heads.issue(app)
    with app.app_context():
        downloads.record_download(
            actor="auditor@example.org",
            kind="report.csv",
            target_type="batch",
            target_id=finished_batch.id,
            masked=None,
        )
    text = " ".join(text_of(batch_pdf(app, finished_batch.id)).split())
    assert f"Signed tree head {head.tree_size} entries" in text
    assert f"Entries after seq {head.tree_size} are newer than this tree head" in text


def test_subject_certificate_masks_a_non_latin_identifier(app, finished_batch):
    subject = next(
        s for s in subjects_of(app, finished_batch.id) if s.kind == "identity" and s.row_number == 2
    )
    with app.app_context(), session_scope(write=False) as session:
        pdf = certificates.issue_subject_certificate(session, subject.id)
    text = text_of(pdf)
    assert "Certificate of erasure — one data subject" in text
    assert "Д***@п***.рф" in text  # DejaVu carries Cyrillic; fpdf2's core fonts would not
    assert "Дмитрий" not in text
    assert subject.fingerprint in text
    assert finished_batch.deletion_request_ids[0] in text
    assert "(met)" in text


def test_an_unfinished_batch_gets_a_status_report_not_a_certificate(app, sandbox):
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(3), state=BatchState.AWAITING_APPROVAL)
    text = " ".join(text_of(batch_pdf(app, batch_id)).split())  # lines wrap anywhere
    assert f"Erasure status report — batch {batch_id}" in text
    assert "not a certificate of completed erasure" in text
    assert "Nothing has been sent to Heap." in text


def test_a_large_batch_is_summarised_in_a_few_pages(app, sandbox):
    env_id = make_environment(app, sandbox)
    batch_id = make_batch(app, env_id, identifiers(2000))
    pdf = batch_pdf(app, batch_id)
    assert pages_of(pdf) <= 3
    assert "2,000" in text_of(pdf)


@pytest.mark.parametrize("via", ["page", "api"])
def test_certificates_download(app, client, login_as, api_token, finished_batch, via):
    subject_id = subjects_of(app, finished_batch.id)[0].id
    headers, prefix = {}, ""
    if via == "api":
        headers, prefix = {"Authorization": f"Bearer {api_token('auditor')}"}, "/api/v1"
    else:
        login_as("auditor")
    for path in (
        f"{prefix}/batches/{finished_batch.id}/certificate.pdf",
        f"{prefix}/subjects/{subject_id}/certificate.pdf",
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        assert response.data.startswith(b"%PDF-")
        assert ".pdf" in response.headers["Content-Disposition"]
    assert client.get(f"{prefix}/batches/999/certificate.pdf", headers=headers).status_code == 404
    assert client.get(f"{prefix}/subjects/999/certificate.pdf", headers=headers).status_code == 404


def test_certificates_need_a_signed_in_person(client, finished_batch):
    response = client.get(f"/api/v1/batches/{finished_batch.id}/certificate.pdf")
    assert response.status_code == 401
    assert client.get(f"/batches/{finished_batch.id}/certificate.pdf").status_code == 302


def test_characters_the_font_lacks_show_as_boxes_not_nothing(app, finished_batch):
    subject = next(s for s in subjects_of(app, finished_batch.id) if s.row_number == 3)  # 山田太郎
    with app.app_context(), session_scope(write=False) as session:
        pdf = certificates.issue_subject_certificate(session, subject.id)
    assert "□***@□***.jp" in text_of(pdf)
