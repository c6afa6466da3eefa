"""A data subject's receipt: one person's proof of deletion, checked by the same verify.py.

verify.py runs as the person (or their controller) would run it: `python3 -I verify.py` in the
unzipped folder, with nothing of the desk importable.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import (
    IDENTITIES,
    OTHER_IDENTITIES,
    OTHER_USER_IDS,
    TAMPERINGS,
    USER_IDS,
    browser_sign_in,
    change_file,
    first_failure,
    pdf_text,
    run_verifier,
    seed,
    subjects_of,
    unzip,
    verified,
)
from tsa_fixtures import OPENSSL, tsa  # noqa: F401

from webapp.db import session_scope
from webapp.erasure import retention
from webapp.evidence import bundle
from webapp.evidence.pack import evidence_pack
from webapp.evidence.receipt import subject_receipt
from webapp.models import Subject
from webapp.trail import audit, merkle, tree

FILES = {
    "README.txt",
    "receipt.pdf",
    "entries.jsonl",
    "proofs.jsonl",
    "sth.json",
    "public_key.pem",
    "manifest.json",
    "manifest.sig",
    "verify.py",
}
SHOWN = [
    "batch.uploaded",
    "batch.approved",
    "heap_request.planned",
    "heap_request.sending",
    "heap_request.accepted",
    "heap_request.status_changed",
]
RAW, MASKED = "Дмитрий.Иванов@пример.рф", "Д***@п***.рф"


def receipt(app, subject_id: int, folder: Path) -> Path:
    return unzip(b"".join(subject_receipt(app, subject_id)), folder)


def jsonl(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text("utf-8").splitlines()]


@pytest.fixture
def subject(app, finished_batch) -> Subject:
    """Dmitry, row 2 of the finished batch: deleted by Heap."""
    return next(s for s in subjects_of(app, finished_batch.id) if s.row_number == 2)


@pytest.fixture
def subject_receipt_folder(app, subject, tmp_path) -> Path:
    seed(app, 30)  # more history than the subject's own
    return receipt(app, subject.id, tmp_path / "receipt")


def test_an_untouched_receipt_verifies_anywhere(subject_receipt_folder, subject):
    assert {p.name for p in subject_receipt_folder.iterdir()} == FILES
    lines = verified(subject_receipt_folder)
    assert lines[1] == f"  receipt of one data subject, fingerprint {subject.fingerprint}"
    assert "6 audit entries about subject" in lines[3]


def test_the_receipt_carries_the_entries_that_show_the_deletion(
    app, subject_receipt_folder, subject, finished_batch
):
    folder = subject_receipt_folder
    entries, proofs = jsonl(folder, "entries.jsonl"), jsonl(folder, "proofs.jsonl")
    sth = json.loads((folder / "sth.json").read_text())
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [e["action"] for e in entries] == SHOWN
    assert entries[-1]["details"]["to"] == "complete"
    assert entries[1]["actor"] == finished_batch.approver  # the four-eyes approval
    assert [e["seq"] for e in entries] == [p["seq"] for p in proofs] == manifest["entries"]
    with app.app_context(), session_scope(write=False) as session:
        assert sth["root_hash"] == tree.root(session, sth["tree_size"]).hex()
    root = bytes.fromhex(sth["root_hash"])
    for entry, proof in zip(entries, proofs, strict=True):
        path = [bytes.fromhex(node) for node in proof["path"]]
        leaf = merkle.leaf_hash(entry["hash"])
        assert merkle.verify_inclusion(leaf, entry["seq"] - 1, sth["tree_size"], path, root)
    assert manifest["kind"] == "subject"
    assert manifest["subject"]["fingerprint"] == subject.fingerprint
    assert manifest["subject"]["identifier"] == MASKED
    assert manifest["subject"]["heap_deletion_request_ids"] == finished_batch.deletion_request_ids
    assert manifest["batch"]["id"] == finished_batch.id
    readme = (folder / "README.txt").read_text()
    assert subject.fingerprint in readme and "python3 verify.py" in readme


def test_the_letter_says_what_was_deleted_when(app, subject_receipt_folder, subject):
    pdf = (subject_receipt_folder / "receipt.pdf").read_bytes()
    info = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True, check=True).stdout
    assert re.search(rb"Pages:\s+1\n", info)  # one page
    text = " ".join(pdf_text(pdf).split())
    completed = f"{subject.completed_at:%Y-%m-%d %H:%M:%S} UTC"
    assert "Receipt of erasure — one data subject" in text
    assert "The personal data of the person below was deleted from Heap" in text
    assert f"Heap reported the deletion complete on {completed}" in text
    assert "the deadline was met" in text
    assert MASKED in text and RAW not in text and subject.fingerprint in text
    assert "Heap reported the deletion complete." in text  # the step, with its audit entry
    entries = jsonl(subject_receipt_folder, "entries.jsonl")
    assert re.search(rf"Heap reported the deletion complete\. {entries[-1]['seq']}\b", text)
    assert "python3 verify.py" in text


def test_the_receipt_holds_no_other_person_nor_other_batch(
    app, client, auth, login_as, make_user, finished_batch, other_batch, subject, tmp_path
):
    neighbour = next(s for s in subjects_of(app, finished_batch.id) if s.row_number == 1)
    # Downloads are audited about the subject they concern: the neighbour's, and this one's.
    login_as("auditor")
    assert client.get(f"/subjects/{neighbour.id}/certificate.pdf").status_code == 200
    assert client.get(f"/subjects/{subject.id}/certificate.pdf").status_code == 200
    auth.logout()
    client.environ_base["REMOTE_ADDR"] = "198.51.100.23"
    assert auth.login(make_user("officer")).status_code == 302
    folder = receipt(app, subject.id, tmp_path / "receipt")
    assert run_verifier(folder).returncode == 0
    texts = {
        path.name: pdf_text(path.read_bytes()) if path.suffix == ".pdf" else path.read_text()
        for path in folder.iterdir()
    }
    others = [
        s.fingerprint
        for batch in (finished_batch, other_batch)
        for s in subjects_of(app, batch.id)
        if s.fingerprint and s.fingerprint != subject.fingerprint
    ]
    forbidden = [
        *others,
        *(value for value in IDENTITIES + USER_IDS + OTHER_IDENTITIES + OTHER_USER_IDS),
        *other_batch.deletion_request_ids,
        other_batch.uploader,
        other_batch.approver,
        "198.51.100.23",
        "127.0.0.1",
    ]
    assert len(others) >= 9
    for name, text in texts.items():
        assert [value for value in forbidden if value in text] == [], name
    assert MASKED in texts["receipt.pdf"] and MASKED in texts["manifest.json"]
    actions = [e["action"] for e in jsonl(folder, "entries.jsonl")]
    assert actions == SHOWN  # no download, no sign-in, nothing of the other batch


def test_one_verify_py_checks_packs_and_receipts(app, finished_batch, subject, tmp_path):
    batch = unzip(b"".join(evidence_pack(app, finished_batch.id)), tmp_path / "pack")
    person = receipt(app, subject.id, tmp_path / "receipt")
    assert (batch / "verify.py").read_bytes() == (person / "verify.py").read_bytes()
    assert (person / "verify.py").read_bytes() == bundle.verify_py()
    kinds = [json.loads((f / "manifest.json").read_text())["kind"] for f in (batch, person)]
    assert kinds == ["batch", "subject"]
    # A receipt's files in a batch's folder: the manifest says which kind, and each must fit.
    (batch / "manifest.json").write_bytes((person / "manifest.json").read_bytes())
    (batch / "manifest.sig").write_bytes((person / "manifest.sig").read_bytes())
    assert "entries.jsonl: entry" in first_failure(batch)


RECEIPT_TAMPERINGS = {**TAMPERINGS, "changed letter": change_file("receipt.pdf")}


@pytest.mark.parametrize("tampering", RECEIPT_TAMPERINGS)
def test_each_tampering_is_caught_and_named(subject_receipt_folder, tampering):
    expected = RECEIPT_TAMPERINGS[tampering](subject_receipt_folder)
    assert expected in first_failure(subject_receipt_folder)


def test_a_purged_subject_keeps_its_receipt(app, finished_batch, subject, tmp_path):
    with app.app_context(), session_scope(write=True) as session:
        later = subject.completed_at + timedelta(days=31)
        assert retention.purge(session, actor="test", retention_days=30, now=later).purged
    folder = receipt(app, subject.id, tmp_path / "receipt")
    assert run_verifier(folder).returncode == 0
    entries = jsonl(folder, "entries.jsonl")
    assert entries[-1]["action"] == "retention.purged"
    assert json.loads((folder / "manifest.json").read_text())["subject"]["identifier"] is None
    text = " ".join(pdf_text((folder / "receipt.pdf").read_bytes()).split())
    assert "erased from the desk on" in text and "The desk erased its own copy" in text


@pytest.mark.parametrize("role", ["auditor", "officer", "admin"])
def test_receipt_over_the_api(app, client, api_token, subject, role, tmp_path):
    headers = {"Authorization": f"Bearer {api_token(role)}"}
    response = client.get(f"/api/v1/subjects/{subject.id}/receipt.zip", headers=headers)
    assert response.status_code == 200 and response.mimetype == "application/zip"
    disposition = response.headers["Content-Disposition"]
    assert f'filename="subject-{subject.id}-receipt.zip"' in disposition
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert set(archive.namelist()) == FILES
        archive.extractall(tmp_path / "api")
    assert run_verifier(tmp_path / "api").returncode == 0
    missing = client.get("/api/v1/subjects/999/receipt.zip", headers=headers)
    assert missing.status_code == 404 and "no subject 999" in missing.json["error"]["message"]
    assert client.get(f"/api/v1/subjects/{subject.id}/receipt.zip").status_code == 401


def test_the_api_describes_the_receipt(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    operation = paths["/subjects/{subject_id}/receipt.zip"]
    assert "application/zip" in operation["get"]["responses"]["200"]["content"]
    assert {"404", "503"} <= set(operation["get"]["responses"])


def test_the_subject_page_offers_the_receipt(app, client, login_as, subject, tmp_path):
    page = f"/subjects/{subject.id}"
    assert client.get(f"{page}/receipt.zip").location.startswith("/login")
    login_as("auditor")
    html = client.get(page).get_data(as_text=True)
    link = re.search(r'<a class="button small" href="([^"]+)"[^>]*>Receipt \(zip\)</a>', html)
    assert link and link.group(1) == f"{page}/receipt.zip"
    response = client.get(link.group(1))
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert run_verifier(unzip(response.data, tmp_path / "page")).returncode == 0
    assert client.get("/subjects/999/receipt.zip").status_code == 404


def test_every_receipt_download_is_audited(app, client, login_as, api_token, subject):
    email = login_as("officer")
    assert client.get(f"/subjects/{subject.id}/receipt.zip").status_code == 200
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    path = f"/api/v1/subjects/{subject.id}/receipt.zip"
    assert client.get(path, headers=headers).status_code == 200
    assert client.get("/subjects/999/receipt.zip").status_code == 404  # not a download
    with app.app_context(), session_scope(write=False) as session:
        downloads = list(audit.iter_entries(session, action="evidence.downloaded"))
    assert [(e["details"]["kind"], e["target_type"], e["target_id"]) for e in downloads] == [
        ("receipt.zip", "subject", str(subject.id))
    ] * 2
    assert downloads[0]["actor"] == email


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not available")
def test_no_receipt_when_no_tree_head_can_be_signed(
    app,
    client,
    api_token,
    login_as,
    subject,
    tsa,  # noqa: F811
):
    app.config["DESK_TSA_URL"] = tsa.url("/status500")
    path = f"/subjects/{subject.id}/receipt.zip"
    response = client.get(f"/api/v1{path}", headers={"Authorization": f"Bearer {api_token()}"})
    assert response.status_code == 503 and response.json["error"]["code"] == "no_tree_head"
    assert "The time-stamping authority did not answer" in response.json["error"]["message"]
    login_as("auditor")
    page = client.get(path)
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "No receipt: The time-stamping authority did not answer" in page.get_data(as_text=True)


@pytest.mark.browser
def test_the_subject_page_button_downloads_a_receipt_that_verifies(
    app, subject, live_server, browser_page, make_user, artifacts_dir, tmp_path
):
    page = browser_page
    browser_sign_in(page, live_server, make_user("auditor"))
    page.goto(f"{live_server}/subjects/{subject.id}")
    page.screenshot(path=str(artifacts_dir / "subject-receipt.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_test_id("subject-evidence").get_by_role("link", name="Receipt (zip)").click()
    assert download.value.suggested_filename == f"subject-{subject.id}-receipt.zip"
    path = tmp_path / "receipt.zip"
    download.value.save_as(path)
    assert run_verifier(unzip(path.read_bytes(), tmp_path / "receipt")).returncode == 0
