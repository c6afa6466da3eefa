"""The evidence pack: its files, and its verify.py catching each kind of tampering.

verify.py runs as an outside auditor would run it: `python verify.py` in the unzipped folder,
in a subprocess, with nothing of the desk importable.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import IDENTITIES, run_verifier, seed, unzip

from webapp.db import session_scope
from webapp.evidence import checkpoints
from webapp.evidence.pack import evidence_pack
from webapp.trail import audit

FILES = {
    "certificate.pdf",
    "report.csv",
    "audit.jsonl",
    "checkpoints.jsonl",
    "public_key.pem",
    "manifest.json",
    "manifest.sig",
    "verify.py",
    "README.txt",
}


def sign(app) -> int:
    """Sign a checkpoint now; return the seq it signs."""
    with app.app_context(), session_scope(write=True) as session:
        return checkpoints.sign_checkpoint(session, actor="test").seq


def pack(app, batch_id: int, folder: Path, **options) -> Path:
    data = b"".join(evidence_pack(app, batch_id, **options))
    return unzip(data, folder)


@pytest.fixture
def signed_pack(app, finished_batch, tmp_path) -> Path:
    """A pack whose chain holds two checkpoints and entries after the last one."""
    sign(app)
    seed(app, 5)
    sign(app)
    seed(app, 3)
    return pack(app, finished_batch.id, tmp_path / "pack")


def lines(folder: Path) -> list[str]:
    return (folder / "audit.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def write_lines(folder: Path, kept: list[str]) -> None:
    (folder / "audit.jsonl").write_text("".join(kept), encoding="utf-8")


def failure(folder: Path) -> str:
    result = run_verifier(folder)
    assert result.returncode == 1, result.stdout
    assert result.stdout.startswith("FAILED")
    return result.stdout


def test_an_untouched_pack_verifies_anywhere(signed_pack, finished_batch):
    assert {p.name for p in signed_pack.iterdir()} == FILES
    result = run_verifier(signed_pack)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[0] == "ok"
    assert "2 signed checkpoint(s) verify" in result.stdout
    assert f"batch {finished_batch.id}:" in result.stdout


def test_verify_py_needs_only_the_standard_library(signed_pack):
    source = (signed_pack / "verify.py").read_text()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from "))
    }
    assert imports <= {"__future__", "base64", "hashlib", "json", "sys", "pathlib"}


def test_the_manifest_names_the_head_and_the_batch_entries(app, signed_pack, finished_batch):
    manifest = json.loads((signed_pack / "manifest.json").read_text())
    entries = [json.loads(line) for line in lines(signed_pack)]
    assert (manifest["head"]["seq"], manifest["head"]["hash"]) == (
        entries[-1]["seq"],
        entries[-1]["hash"],
    )
    listed = [e for e in entries if e["seq"] in set(manifest["batch"]["entries"])]
    actions = [e["action"] for e in listed]
    assert actions[:2] == ["batch.uploaded", "batch.approved"] and "batch.completed" in actions
    assert manifest["batch"]["id"] == finished_batch.id
    assert set(manifest["files"]) == FILES - {"manifest.json", "manifest.sig"}
    readme = (signed_pack / "README.txt").read_text()
    assert "python3 verify.py" in readme and manifest["head"]["hash"] in readme


def test_the_report_in_a_pack_is_masked_unless_asked(app, finished_batch, tmp_path):
    masked = (pack(app, finished_batch.id, tmp_path / "a") / "report.csv").read_text()
    assert "a***@e***.org" in masked
    assert not any(value in masked for value in IDENTITIES)
    full = (pack(app, finished_batch.id, tmp_path / "b", masked=False) / "report.csv").read_text()
    cells = {row["identifier"] for row in csv.DictReader(io.StringIO(full))}
    assert "Дмитрий.Иванов@пример.рф" in cells


@pytest.mark.parametrize("where", ["first", "middle", "batch", "checkpoint", "last"])
def test_one_byte_changed_in_any_entry_is_caught(signed_pack, where):
    kept = lines(signed_pack)
    entries = [json.loads(line) for line in kept]
    manifest = json.loads((signed_pack / "manifest.json").read_text())
    index = {
        "first": 0,
        "middle": len(kept) // 2,
        "batch": manifest["batch"]["entries"][1] - 1,
        "checkpoint": next(
            i for i, e in enumerate(entries) if e["action"] == "audit.checkpoint_signed"
        ),
        "last": len(kept) - 1,
    }[where]
    line = kept[index]
    position = line.index('"actor":"') + len('"actor":"')
    kept[index] = line[:position] + chr(ord(line[position]) ^ 1) + line[position + 1 :]
    write_lines(signed_pack, kept)
    output = failure(signed_pack)
    assert f"entry {index + 1} was altered after it was written" in output
    assert "audit.jsonl was changed" in output


def test_a_byte_that_breaks_the_json_is_caught(signed_pack):
    kept = lines(signed_pack)
    kept[3] = kept[3].replace("{", "[", 1)
    write_lines(signed_pack, kept)
    output = failure(signed_pack)
    assert "audit.jsonl: line 4 is not valid JSON" in output


def test_a_removed_entry_is_caught(signed_pack):
    kept = lines(signed_pack)
    del kept[6]
    write_lines(signed_pack, kept)
    assert "entry 7 is missing (next is 8)" in failure(signed_pack)


def test_a_tail_truncated_past_a_checkpoint_is_caught(signed_pack):
    last_checkpoint = json.loads((signed_pack / "checkpoints.jsonl").read_text().splitlines()[-1])
    write_lines(signed_pack, lines(signed_pack)[: last_checkpoint["seq"] - 2])
    output = failure(signed_pack)
    assert f"checkpoint at seq {last_checkpoint['seq']}: the chain ends at seq" in output
    assert "truncated" in output


def test_a_rewritten_chain_with_recomputed_hashes_is_caught(signed_pack):
    """Hashes recomputed from an altered entry on: only the checkpoints can tell."""
    entries = [json.loads(line) for line in lines(signed_pack)]
    entries[2]["actor"] = "mallory"
    for number, entry in enumerate(entries):
        entry["prev_hash"] = entries[number - 1]["hash"] if number else audit.GENESIS_HASH
        entry["hash"] = audit.entry_hash(entry)
    write_lines(signed_pack, [audit.canonical_json(e) + "\n" for e in entries])
    output = failure(signed_pack)
    assert "the chain no longer extends it" in output
    assert "audit.jsonl was changed" in output


@pytest.mark.parametrize("file", ["checkpoints.jsonl", "manifest.sig"])
def test_a_bad_signature_is_caught(signed_pack, file):
    path = signed_pack / file
    text = path.read_text()
    position = text.index('"signature":"') + len('"signature":"') if file != "manifest.sig" else 0
    path.write_text(
        text[:position] + ("1" if text[position] == "0" else "0") + text[position + 1 :]
    )
    output = failure(signed_pack)
    expected = {
        "checkpoints.jsonl": "the signature does not verify (the checkpoint was altered)",
        "manifest.sig": "the signature of manifest.json does not verify",
    }[file]
    assert expected in output


@pytest.mark.parametrize("file", ["report.csv", "certificate.pdf"])
def test_a_changed_document_is_caught(signed_pack, file):
    path = signed_pack / file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    assert f"{file} was changed" in failure(signed_pack)


def test_a_missing_file_is_named(signed_pack):
    (signed_pack / "checkpoints.jsonl").unlink()
    assert "checkpoints.jsonl is missing from the pack" in failure(signed_pack)


def test_pack_over_the_api_streams_a_zip(app, client, api_token, finished_batch, tmp_path):
    token = api_token("auditor")
    response = client.get(
        f"/api/v1/batches/{finished_batch.id}/evidence.zip",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
        assert set(archive.namelist()) == FILES
        archive.extractall(tmp_path / "api")
    assert run_verifier(tmp_path / "api").returncode == 0
    missing = client.get(
        "/api/v1/batches/999/evidence.zip", headers={"Authorization": f"Bearer {token}"}
    )
    assert missing.status_code == 404 and "no batch 999" in missing.json["error"]["message"]
    bad = client.get(
        f"/api/v1/batches/{finished_batch.id}/evidence.zip?masked=maybe",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert bad.status_code == 400 and "'masked' must be 1 or 0" in bad.json["error"]["message"]


def test_no_pack_without_a_usable_signing_key(app, client, api_token, finished_batch, monkeypatch):
    app.extensions.pop("desk_signing_key", None)
    monkeypatch.setenv("DESK_SIGNING_KEY", "not-a-key")
    response = client.get(
        f"/api/v1/batches/{finished_batch.id}/evidence.zip",
        headers={"Authorization": f"Bearer {api_token('auditor')}"},
    )
    assert response.status_code == 503
    assert response.json["error"]["code"] == "no_signing_key"
    assert "DESK_SIGNING_KEY must be an Ed25519 private key" in response.json["error"]["message"]


def test_pack_page_link_downloads_for_auditors(app, client, login_as, finished_batch):
    login_as("auditor")
    response = client.get(f"/batches/{finished_batch.id}/evidence.zip")
    assert response.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(response.data)).testzip() is None


@pytest.mark.browser
def test_batch_page_downloads_a_pack_that_verifies(
    app, finished_batch, live_server, browser_page, make_user, artifacts_dir, tmp_path
):
    email = make_user("auditor")
    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server}/batches/{finished_batch.id}")
    section = page.get_by_test_id("evidence")
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts_dir / "batch-evidence.png"), full_page=True)
    with page.expect_download() as download:
        section.get_by_role("link", name="Evidence pack (zip)").click()
    path = tmp_path / "pack.zip"
    download.value.save_as(path)
    folder = unzip(path.read_bytes(), tmp_path / "pack")
    assert run_verifier(folder).returncode == 0
    with page.expect_download() as download:
        section.get_by_role("link", name="Certificate (PDF)").click()
    assert download.value.suggested_filename == f"batch-{finished_batch.id}-certificate.pdf"


def test_the_api_describes_the_evidence_endpoints(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/batches/{batch_id}/report.csv",
        "/batches/{batch_id}/certificate.pdf",
        "/batches/{batch_id}/evidence.zip",
        "/subjects/{subject_id}/certificate.pdf",
        "/audit/checkpoints",
        "/audit/public-key",
        "/deadlines/report.csv",
    ):
        assert path in paths
    assert set(paths["/audit/checkpoints"]) == {"get", "post"}


def test_the_pack_page_explains_a_missing_key(app, client, login_as, finished_batch, monkeypatch):
    app.extensions.pop("desk_signing_key", None)
    monkeypatch.setenv("DESK_SIGNING_KEY", "not-a-key")
    login_as("auditor")
    response = client.get(f"/batches/{finished_batch.id}/evidence.zip", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == f"/batches/{finished_batch.id}"
    assert "No evidence pack: DESK_SIGNING_KEY must be an Ed25519 private key" in page


def test_every_evidence_download_is_audited(app, client, login_as, api_token, finished_batch):
    from webapp.db import session_scope
    from webapp.trail import audit as audit_module

    email = login_as("auditor")
    batch = finished_batch.id
    for path in (f"/batches/{batch}/certificate.pdf", f"/batches/{batch}/report.csv?masked=1"):
        assert client.get(path).status_code == 200
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    assert client.get(f"/api/v1/batches/{batch}/evidence.zip", headers=headers).status_code == 200
    assert client.get("/batches/999999/certificate.pdf").status_code == 404  # not a download
    with app.app_context(), session_scope(write=False) as session:
        downloads = [
            (e["actor"], e["details"]["kind"], e["details"]["masked"])
            for e in audit_module.iter_entries(session, action="evidence.downloaded")
        ]
    assert downloads[0] == (email, "certificate.pdf", None)
    assert downloads[1] == (email, "report.csv", "1")
    assert downloads[2][1] == "evidence.zip" and len(downloads) == 3
