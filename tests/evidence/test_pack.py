"""The evidence pack: its files, only the batch's entries, and verify.py catching each tampering.

verify.py runs as an outside auditor would run it: `python3 -I verify.py` in the unzipped
folder, in a subprocess, with nothing of the desk importable.
"""

from __future__ import annotations

import ast
import csv
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import (
    IDENTITIES,
    OTHER_IDENTITIES,
    OTHER_USER_IDS,
    PYTHON3,
    TAMPERINGS,
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

from webapp.db import get_engine, session_scope
from webapp.evidence.pack import evidence_pack
from webapp.trail import audit, merkle, tree

FILES = {
    "README.txt",
    "certificate.pdf",
    "report.csv",
    "entries.jsonl",
    "proofs.jsonl",
    "sth.json",
    "public_key.pem",
    "manifest.json",
    "manifest.sig",
    "verify.py",
}
SIGN_IN_IP = "203.0.113.77"


def pack_bytes(app, batch_id: int, **options) -> bytes:
    return b"".join(evidence_pack(app, batch_id, **options))


def pack(app, batch_id: int, folder: Path, **options) -> Path:
    return unzip(pack_bytes(app, batch_id, **options), folder)


def jsonl(folder: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (folder / name).read_text("utf-8").splitlines()]


@pytest.fixture
def batch_pack(app, finished_batch, tmp_path) -> Path:
    """A pack issued after more of the desk's history was written than the batch's own."""
    seed(app, 40)
    return pack(app, finished_batch.id, tmp_path / "pack")


def test_an_untouched_pack_verifies_anywhere(batch_pack, finished_batch):
    assert {p.name for p in batch_pack.iterdir()} == FILES
    lines = verified(batch_pack)
    sth = json.loads((batch_pack / "sth.json").read_text())
    assert f"evidence pack of batch {finished_batch.id}" in lines[1]
    assert f"signed tree head: {sth['tree_size']} entries, root {sth['root_hash']}" in lines[2]
    output = "\n".join(lines)
    assert "each one proven in the signed tree (RFC 9162)" in output
    assert sth["key_id"] in output and "RFC 3161" not in output


def test_verify_py_needs_only_the_standard_library_and_carries_the_desks_merkle_code(batch_pack):
    source = (batch_pack / "verify.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported
    section = re.compile(r"# ---- BEGIN VERIFIER.*?# ---- END VERIFIER", re.DOTALL)
    desks = Path(merkle.__file__).read_text()
    assert section.search(source).group(0) == section.search(desks).group(0)


def test_the_tree_head_covers_every_entry_and_each_proof_holds(app, batch_pack, finished_batch):
    sth = json.loads((batch_pack / "sth.json").read_text())
    manifest = json.loads((batch_pack / "manifest.json").read_text())
    entries, proofs = jsonl(batch_pack, "entries.jsonl"), jsonl(batch_pack, "proofs.jsonl")
    with app.app_context(), session_scope(write=False) as session:
        assert sth["tree_size"] == tree.size(session)  # signed at issue, after the seeding
        assert sth["root_hash"] == tree.root(session, sth["tree_size"]).hex()
    assert set(sth) == {"tree_size", "root_hash", "timestamp", "key_id", "signature"}
    assert [e["seq"] for e in entries] == [p["seq"] for p in proofs] == manifest["entries"]
    root = bytes.fromhex(sth["root_hash"])
    for entry, proof in zip(entries, proofs, strict=True):
        assert set(proof) == {"seq", "leaf_index", "tree_size", "leaf_hash", "path"}
        leaf = merkle.leaf_hash(entry["hash"])
        assert proof["leaf_hash"] == leaf.hex() and proof["tree_size"] == sth["tree_size"]
        path = [bytes.fromhex(node) for node in proof["path"]]
        assert merkle.verify_inclusion(leaf, proof["leaf_index"], sth["tree_size"], path, root)
    assert manifest["kind"] == "batch" and manifest["batch"]["id"] == finished_batch.id
    assert {k: manifest["sth"][k] for k in ("tree_size", "root_hash")} == {
        k: sth[k] for k in ("tree_size", "root_hash")
    }
    actions = [e["action"] for e in entries]
    assert actions[:2] == ["batch.uploaded", "batch.approved"] and "batch.completed" in actions
    assert {"heap_request.planned", "heap_request.accepted"} <= set(actions)
    assert set(manifest["files"]) == FILES - {"manifest.json", "manifest.sig"}
    readme = (batch_pack / "README.txt").read_text()
    assert "python3 verify.py" in readme and sth["root_hash"] in readme
    assert "keeps verifying with its own verify.py" in readme  # packs issued before this format


def test_the_certificate_names_the_tree_head_of_the_pack(batch_pack):
    sth = json.loads((batch_pack / "sth.json").read_text())
    text = pdf_text((batch_pack / "certificate.pdf").read_bytes())
    assert re.search(rf"Signed tree head\s+{sth['tree_size']:,} entries, signed", text)
    assert re.search(rf"Tree root hash\s+{sth['root_hash']}\n", text)
    assert "Chain head" not in text


def test_the_report_in_a_pack_is_masked_unless_asked(app, finished_batch, tmp_path):
    masked = (pack(app, finished_batch.id, tmp_path / "a") / "report.csv").read_text()
    assert "a***@e***.org" in masked
    assert not any(value in masked for value in IDENTITIES)
    full = (pack(app, finished_batch.id, tmp_path / "b", masked=False) / "report.csv").read_text()
    cells = {row["identifier"] for row in csv.DictReader(io.StringIO(full))}
    assert "Дмитрий.Иванов@пример.рф" in cells


def test_the_pack_holds_nothing_of_another_batch_nor_sign_ins(
    app, client, auth, make_user, finished_batch, other_batch, tmp_path
):
    # Sign-ins (with an IP address) between and after the batches' entries.
    for role in ("auditor", "officer"):
        client.environ_base["REMOTE_ADDR"] = SIGN_IN_IP
        assert auth.login(make_user(role)).status_code == 302
        auth.logout()
    folder = pack(app, finished_batch.id, tmp_path / "pack")
    assert run_verifier(folder).returncode == 0
    texts = {
        path.name: pdf_text(path.read_bytes()) if path.suffix == ".pdf" else path.read_text()
        for path in folder.iterdir()
    }
    with app.app_context(), session_scope(write=False) as session:
        other_entries = audit.iter_entries(session, target_type="batch", target_id=other_batch.id)
        other_hashes = [e["hash"] for e in other_entries]
        sign_ins = list(audit.iter_entries(session, action="login.succeeded"))
    other = [
        *OTHER_IDENTITIES,
        *OTHER_USER_IDS,
        *other_batch.deletion_request_ids,
        *(s.fingerprint for s in subjects_of(app, other_batch.id) if s.fingerprint),
        *other_hashes,
        other_batch.uploader,
        other_batch.approver,
        SIGN_IN_IP,
        *(e["actor"] for e in sign_ins),
    ]
    assert sign_ins and other_hashes
    for name, text in texts.items():
        assert [value for value in other if value in text] == [], name
    entries = jsonl(folder, "entries.jsonl")
    batch_ids = {e["details"].get("batch_id", finished_batch.id) for e in entries}
    assert batch_ids == {finished_batch.id}
    assert not any(e["action"].startswith("login") for e in entries)
    assert finished_batch.approver in texts["entries.jsonl"]  # its own staff are named


def test_the_pack_stays_small_however_long_the_history(app, finished_batch, tmp_path):
    before = pack_bytes(app, finished_batch.id)
    seed(app, 20_000)
    after = pack_bytes(app, finished_batch.id)
    assert len(before) < 100_000 and len(after) < 100_000
    # Each proof grows by a hash or two; nothing else of the 20,000 entries comes in.
    assert len(after) - len(before) < 4_000
    first, second = unzip(before, tmp_path / "a"), unzip(after, tmp_path / "b")
    assert jsonl(first, "entries.jsonl") == jsonl(second, "entries.jsonl")
    assert run_verifier(second).returncode == 0


def test_issuing_a_pack_reads_the_trail_only_through_its_indexes(app, finished_batch):
    seed(app, 2_000)
    statements: list[tuple[str, object]] = []

    def keep(conn, cursor, statement, parameters, context, executemany):
        if re.search(r"\baudit_(entries|tree_nodes)\b", statement) and statement.startswith(
            "SELECT"
        ):
            statements.append((statement, parameters))

    with app.app_context():
        engine = get_engine()
        if engine.dialect.name != "sqlite":
            pytest.skip("query plans are read with SQLite's EXPLAIN QUERY PLAN")
        sa.event.listen(engine, "before_cursor_execute", keep)
        try:
            pack_bytes(app, finished_batch.id)
        finally:
            sa.event.remove(engine, "before_cursor_execute", keep)
        with engine.connect() as connection:
            plans = [
                (statement, row[-1])
                for statement, parameters in statements
                for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            ]
    assert statements
    scans = [(s, plan) for s, plan in plans if re.match(r"SCAN audit_(entries|tree_nodes)\b", plan)]
    assert scans == []


def test_a_byte_that_breaks_the_json_is_caught(batch_pack):
    lines = (batch_pack / "entries.jsonl").read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace("{", "[", 1)
    (batch_pack / "entries.jsonl").write_text("".join(lines))
    assert "entries.jsonl: line 2 is not valid JSON" in first_failure(batch_pack)


PACK_TAMPERINGS = {
    **TAMPERINGS,
    "changed report": change_file("report.csv"),
    "changed certificate": change_file("certificate.pdf"),
}


@pytest.mark.parametrize("tampering", PACK_TAMPERINGS)
def test_each_tampering_is_caught_and_named(batch_pack, tampering):
    expected = PACK_TAMPERINGS[tampering](batch_pack)
    assert expected in first_failure(batch_pack)


def test_an_older_whole_chain_pack_is_sent_to_its_own_verifier(batch_pack):
    manifest = json.loads((batch_pack / "manifest.json").read_text())
    manifest["type"] = "deletion-desk/evidence-manifest/v1"
    (batch_pack / "manifest.json").write_text(json.dumps(manifest))
    assert "Verify it with the verify.py it came with" in first_failure(batch_pack)


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not available")
def test_a_timestamped_tree_head_is_reported_and_openssl_checks_it(
    app,
    finished_batch,
    tsa,  # noqa: F811
    tmp_path,
):
    app.config["DESK_TSA_URL"] = tsa.url()
    folder = pack(app, finished_batch.id, tmp_path / "pack")
    assert "tsa_token" in json.loads((folder / "sth.json").read_text())
    result = run_verifier(folder)
    assert result.returncode == 0, result.stdout
    assert "RFC 3161 timestamp (tsa_token)" in result.stdout
    assert "openssl ts -verify" in (folder / "README.txt").read_text()
    written = subprocess.run(
        [PYTHON3, "-I", "verify.py", "--tsa"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    assert written.returncode == 0, written.stdout
    checked = tsa.openssl_verify(folder / "sth.msg", folder / "sth.tst")
    assert checked.returncode == 0, checked.stderr
    assert b"Verification: OK" in checked.stdout


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


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not available")
def test_no_pack_when_no_tree_head_can_be_signed(
    app,
    client,
    api_token,
    login_as,
    finished_batch,
    tsa,  # noqa: F811
):
    app.config["DESK_TSA_URL"] = tsa.url("/status500")
    response = client.get(
        f"/api/v1/batches/{finished_batch.id}/evidence.zip",
        headers={"Authorization": f"Bearer {api_token('auditor')}"},
    )
    assert response.status_code == 503 and response.mimetype == "application/json"
    assert response.json["error"]["code"] == "no_tree_head"
    assert "The time-stamping authority did not answer" in response.json["error"]["message"]
    login_as("auditor")
    page = client.get(f"/batches/{finished_batch.id}/evidence.zip")
    assert page.status_code == 503 and page.mimetype == "text/html"
    assert "The time-stamping authority did not answer" in page.get_data(as_text=True)


def test_pack_page_link_downloads_for_auditors(app, client, login_as, finished_batch):
    login_as("auditor")
    response = client.get(f"/batches/{finished_batch.id}/evidence.zip")
    assert response.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(response.data)).testzip() is None


@pytest.mark.browser
def test_batch_page_downloads_a_pack_that_verifies(
    app, finished_batch, live_server, browser_page, make_user, artifacts_dir, tmp_path
):
    page = browser_page
    browser_sign_in(page, live_server, make_user("auditor"))
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
        "/subjects/{subject_id}/receipt.zip",
        "/audit/checkpoints",
        "/audit/public-key",
        "/deadlines/report.csv",
    ):
        assert path in paths
    assert set(paths["/audit/checkpoints"]) == {"get", "post"}
    assert "503" in paths["/batches/{batch_id}/evidence.zip"]["get"]["responses"]


def test_the_pack_page_explains_a_missing_key(app, client, login_as, finished_batch, monkeypatch):
    app.extensions.pop("desk_signing_key", None)
    monkeypatch.setenv("DESK_SIGNING_KEY", "not-a-key")
    login_as("auditor")
    response = client.get(f"/batches/{finished_batch.id}/evidence.zip", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.request.path == f"/batches/{finished_batch.id}"
    assert "No evidence pack: DESK_SIGNING_KEY must be an Ed25519 private key" in page


def test_every_evidence_download_is_audited(app, client, login_as, api_token, finished_batch):
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
            for e in audit.iter_entries(session, action="evidence.downloaded")
        ]
    assert downloads[0] == (email, "certificate.pdf", None)
    assert downloads[1] == (email, "report.csv", "1")
    assert downloads[2][1] == "evidence.zip" and len(downloads) == 3
