"""Signed checkpoints: the key, signing on demand and on schedule, and what verification catches."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import socket
import stat
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import head_of, seed
from tsa_fixtures import OPENSSL, tsa  # noqa: F401  (the fixture, not the module's skip mark)

from webapp import create_app
from webapp.cli import audit_checkpoint, audit_verify
from webapp.db import get_engine, session_scope
from webapp.evidence import checkpoints, signing, tree_heads
from webapp.evidence.checkpoint_rules import checkpoint_message
from webapp.evidence.verifier_script import ed25519_verify
from webapp.jobs.scheduler import tick_once
from webapp.models import AuditCheckpoint, utcnow
from webapp.trail import audit


def sign(app, actor: str = "test") -> AuditCheckpoint:
    with app.app_context(), session_scope(write=True) as session:
        return checkpoints.sign_checkpoint(session, actor=actor)


def verify(app) -> checkpoints.CheckpointReport:
    with app.app_context(), session_scope(write=False) as session:
        return checkpoints.verify_checkpoints(session)


def tamper(app, *statements: str) -> None:
    """Change the database behind the desk's back (triggers dropped: a DBA gone rogue)."""
    with app.app_context(), get_engine().begin() as connection:
        audit.drop_triggers(connection)
        for statement in statements:
            connection.exec_driver_sql(statement)
        audit.create_triggers(connection)


@pytest.fixture
def chain(app, signing_key_env):
    """Ten entries and a signing key."""
    seed(app, 10)
    return app


# --- the key ------------------------------------------------------------------------------


def _raw(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def test_key_from_the_environment_as_pem_or_base64(app, monkeypatch):
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    expected = key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    for text in (pem, base64.b64encode(_raw(key)).decode()):
        app.extensions.pop("desk_signing_key", None)
        monkeypatch.setenv("DESK_SIGNING_KEY", text)
        assert signing.public_key(app).raw == expected


@pytest.mark.parametrize(
    "text",
    [
        "not-a-key",
        base64.b64encode(b"short").decode(),
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----",
    ],
)
def test_a_bad_key_is_refused_with_a_plain_message(app, monkeypatch, text):
    monkeypatch.setenv("DESK_SIGNING_KEY", text)
    with pytest.raises(signing.SigningKeyError, match="must be an Ed25519 private key"):
        signing.signing_key(app)


def test_without_a_key_one_is_generated_once_into_the_instance_folder(app, monkeypatch):
    monkeypatch.delenv("DESK_SIGNING_KEY", raising=False)
    if app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("generated keys are refused with PostgreSQL (tested below)")
    first = signing.public_key(app)
    path = os.path.join(app.instance_path, "signing_key")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    app.extensions.pop("desk_signing_key")
    assert signing.public_key(app) == first


def test_a_generated_key_is_refused_with_postgresql(desk_env, tmp_path, monkeypatch):
    monkeypatch.delenv("DESK_SIGNING_KEY", raising=False)
    app = create_app(
        {"INSTANCE_PATH": str(tmp_path / "pg"), "DATABASE_URL": "postgresql+psycopg://h/db"}
    )
    with pytest.raises(signing.SigningKeyError, match="With PostgreSQL, set DESK_SIGNING_KEY"):
        signing.signing_key(app)
    assert not (tmp_path / "pg" / "signing_key").exists()


# --- signing ------------------------------------------------------------------------------


def test_a_checkpoint_signs_the_head_and_is_recorded_in_the_trail(chain):
    app = chain
    seq, head = head_of(app)
    row = sign(app, "auditor@example.org")
    assert (row.seq, row.hash) == (seq, head)
    public = bytes.fromhex(row.public_key)
    Ed25519PublicKey.from_public_bytes(public).verify(
        bytes.fromhex(row.signature), checkpoint_message(row.seq, row.hash, row.at)
    )
    assert ed25519_verify(
        public, checkpoint_message(row.seq, row.hash, row.at), bytes.fromhex(row.signature)
    )
    assert row.key_id == hashlib.sha256(public).hexdigest()
    with app.app_context(), session_scope(write=False) as session:
        (entry,) = [
            e for e in audit.iter_entries(session) if e["action"] == "audit.checkpoint_signed"
        ]
        assert audit.verify(session).ok
    assert entry["seq"] == seq + 1 and entry["actor"] == "auditor@example.org"
    assert entry["details"] == checkpoints.checkpoint_dict(row)
    assert verify(app).ok


def test_an_empty_trail_has_nothing_to_sign(app, signing_key_env):
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(checkpoints.CheckpointError, match="empty"),
    ):
        checkpoints.sign_checkpoint(session, actor="test")


def test_api_signs_lists_and_publishes_the_key(chain, client, api_token):
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    # An auditor's token reads only (signing stays open to auditors on the Checkpoints page).
    refused = client.post("/api/v1/audit/checkpoints", headers=headers)
    assert refused.status_code == 403 and "write" in refused.json["error"]["message"]
    writer = {"Authorization": f"Bearer {api_token('officer')}"}
    created = client.post("/api/v1/audit/checkpoints", headers=writer)
    assert created.status_code == 201
    body = created.json
    listed = client.get("/api/v1/audit/checkpoints", headers=headers).json
    assert listed["checkpoints"] == [body] and listed["next_after"] is None
    key = client.get("/api/v1/audit/public-key", headers=headers).json
    assert key["algorithm"] == "Ed25519" and key["key_id"] == body["key_id"]
    assert key["public_key_hex"] == body["public_key"]
    assert key["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert client.get("/api/v1/audit/checkpoints?limit=x", headers=headers).status_code == 400
    assert client.post("/api/v1/audit/checkpoints").status_code == 401


def test_scheduled_checkpoint_only_once_an_entry_is_a_day_old(app, signing_key_env):
    seed(app, 3, start_at=utcnow() - timedelta(hours=30))
    app.config["DESK_CHECKPOINT_EVERY_SECONDS"] = 2 * 86400
    assert "audit_checkpoint" in tick_once(app, holder="evidence-test")
    assert verify(app).checkpoints == 0  # the oldest unsigned entry is younger than that
    app.config["DESK_CHECKPOINT_EVERY_SECONDS"] = 86400
    tick_once(app, holder="evidence-test")
    first = verify(app)
    assert first.checkpoints == 1 and first.ok
    tick_once(app, holder="evidence-test")
    assert verify(app).checkpoints == 1  # only its own record since: nothing to sign
    with app.app_context(), session_scope(write=False) as session:
        assert checkpoints.latest(session).actor == audit.SYSTEM_ACTOR


def test_scheduled_checkpoint_without_a_key_logs_and_signs_nothing(app, monkeypatch, caplog):
    monkeypatch.setenv("DESK_SIGNING_KEY", "not-a-key")
    seed(app, 2, start_at=utcnow() - timedelta(days=2))
    tick_once(app, holder="evidence-test")
    assert "no audit checkpoint signed" in caplog.text
    assert verify(app).checkpoints == 0


# --- what verification catches ----------------------------------------------------------


def test_cli_verify_checks_checkpoints(chain, runner):
    app = chain
    result = runner.invoke(audit_verify)
    assert result.exit_code == 0 and "no signed checkpoint yet" in result.output
    assert runner.invoke(audit_checkpoint).exit_code == 0
    seed(app, 4)
    result = runner.invoke(audit_verify)
    assert result.exit_code == 0, result.output
    assert "ok: 15 entries" in result.output and "1 signed checkpoint(s) verify" in result.output


def test_truncation_past_a_checkpoint_is_caught(chain, runner):
    app = chain
    row = sign(app)
    seed(app, 4)
    tamper(app, f"DELETE FROM audit_entries WHERE seq >= {row.seq - 2}")
    with app.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok  # what is left is a perfect chain…
    report = verify(app)
    assert not report.ok  # …but it no longer reaches the signed head
    assert any("truncated" in problem for problem in report.problems)
    result = runner.invoke(audit_verify)
    assert result.exit_code == 1 and f"checkpoint at seq {row.seq}" in result.output


def test_api_verify_reports_a_truncation_past_a_checkpoint(chain, client, api_token):
    app = chain
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    row = sign(app)
    assert client.get("/api/v1/audit/verify", headers=headers).json["checkpoints"]["ok"]
    tamper(app, f"DELETE FROM audit_entries WHERE seq >= {row.seq - 2}")
    body = client.get("/api/v1/audit/verify", headers=headers).json
    assert body["ok"] is False and body["checkpoints"]["count"] == 1
    assert any("truncated" in problem for problem in body["checkpoints"]["problems"])


def test_a_rewrite_with_recomputed_hashes_is_caught(chain):
    app = chain
    sign(app)
    with app.app_context(), session_scope(write=False) as session:
        entries = list(audit.iter_entries(session))
    entries[4]["actor"] = "mallory"
    statements = []
    for number, entry in enumerate(entries[4:], start=4):
        entry["prev_hash"] = entries[number - 1]["hash"]
        entry["hash"] = audit.entry_hash(entry)
        statements.append(
            f"UPDATE audit_entries SET actor = '{entry['actor']}', prev_hash = "
            f"'{entry['prev_hash']}', hash = '{entry['hash']}' WHERE seq = {entry['seq']}"
        )
    tamper(app, *statements)
    with app.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok
    assert any("no longer extends it" in p for p in verify(app).problems)


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("UPDATE audit_checkpoints SET hash = '{zeros}'", "the signature does not verify"),
        ("UPDATE audit_checkpoints SET at = '2020-01-01T00:00:00.000000Z'", "signature"),
        ("DELETE FROM audit_checkpoints", "missing from the checkpoints"),
    ],
)
def test_a_tampered_checkpoint_table_is_caught(chain, statement, problem):
    app = chain
    sign(app)
    tamper(app, statement.format(zeros="0" * 64))
    report = verify(app)
    assert not report.ok and any(problem in p for p in report.problems), report.problems


def test_a_checkpoint_by_another_key_must_be_followed_by_one_of_ours(chain, monkeypatch):
    app = chain
    sign(app)
    app.extensions.pop("desk_signing_key")
    monkeypatch.setenv(
        "DESK_SIGNING_KEY", base64.b64encode(_raw(Ed25519PrivateKey.generate())).decode()
    )
    report = verify(app)
    assert any("not by the trusted key" in p for p in report.problems)
    sign(app)  # a rotation: the new key signs a checkpoint that pins the old one
    assert verify(app).ok


# --- the page -------------------------------------------------------------------------------


def test_checkpoint_page_signs_and_shows_the_state(chain, client, auth, login_as):
    app = chain
    login_as("auditor")
    empty = client.get("/audit/checkpoints").get_data(as_text=True)
    assert "No checkpoint yet" in empty and "Sign a checkpoint now" in empty
    done = auth.post("/audit/checkpoints", form_page="/audit/checkpoints", follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "Checkpoint signed: the chain&#39;s head at seq" in page
    assert "The checkpoint holds" in page
    key_id = signing.public_key(app).key_id
    assert key_id in page
    pem = client.get("/audit/public-key.pem")
    assert pem.status_code == 200 and pem.data.startswith(b"-----BEGIN PUBLIC KEY-----")
    tamper(app, "UPDATE audit_checkpoints SET hash = '" + "1" * 64 + "'")
    assert "The checkpoints do NOT hold" in client.get("/audit/checkpoints").get_data(as_text=True)


@pytest.mark.browser
def test_checkpoint_page_in_a_browser(chain, live_server, browser_page, make_user, artifacts_dir):
    email = make_user("auditor")
    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Checkpoints").click()
    page.get_by_role("button", name="Sign a checkpoint now").click()
    page.wait_for_selector("[data-testid=checkpoints-ok]")
    assert page.locator("[data-testid=checkpoints] tbody tr").count() == 1
    page.screenshot(path=str(artifacts_dir / "checkpoints.png"), full_page=True)


# --- signed tree heads on the page ----------------------------------------------------------


def _head_sizes(page: str) -> list[int]:
    """The sizes in the tree heads table, top to bottom."""
    table = page.split('data-testid="tree-heads"', 1)[1].split("</table>", 1)[0]
    return [
        int(size.replace(",", "")) for size in re.findall(r'<td class="num">([\d,]+)</td>', table)
    ]


def test_an_officer_signs_tree_heads_and_sees_them_newest_first(chain, client, auth, login_as):
    app = chain
    login_as("officer")
    empty = client.get("/audit/checkpoints").get_data(as_text=True)
    assert "No tree head has been signed yet" in empty and "Sign a tree head now" in empty
    assert 'href="/audit/witness.py"' in empty and "--state /var/lib/desk-witness/" in empty

    def sign_head() -> str:
        done = auth.post("/audit/tree-heads", form_page="/audit/checkpoints", follow_redirects=True)
        return done.get_data(as_text=True)

    page = sign_head()
    with app.app_context(), session_scope(write=False) as session:
        first = tree_heads.latest(session)
    assert f"Tree head signed: {first.tree_size:,} entries, root {first.root_hash[:16]}" in page
    assert "already covers all" in sign_head()  # nothing grew: nothing new is signed
    seed(app, 3)
    page = sign_head()
    with app.app_context(), session_scope(write=False) as session:
        second = tree_heads.latest(session)
    assert second.tree_size == first.tree_size + 3
    assert _head_sizes(page) == [second.tree_size, first.tree_size]
    # The root is shortened in the table, the whole of it one click (or a hover) away.
    assert f'title="{second.root_hash}">{second.root_hash[:16]}…</code>' in page
    assert f'<code class="sha">{second.root_hash}</code>' in page
    assert "Signed tree heads (2)" in page and "time-stamped" not in page.split("tree-heads")[-1]


def test_an_auditor_sees_the_heads_but_cannot_sign_one(chain, client, auth, login_as):
    tree_heads.issue(chain)
    login_as("auditor")
    page = client.get("/audit/checkpoints").get_data(as_text=True)
    assert "Sign a tree head now" not in page and len(_head_sizes(page)) == 1
    assert auth.post("/audit/tree-heads", form_page="/audit/checkpoints").status_code == 403


def test_a_head_that_cannot_be_signed_is_explained(chain, client, auth, login_as):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    chain.config["DESK_TSA_URL"] = f"http://127.0.0.1:{closed}/tsa"
    login_as("admin")
    done = auth.post("/audit/tree-heads", form_page="/audit/checkpoints", follow_redirects=True)
    page = done.get_data(as_text=True)
    assert "The time-stamping authority did not answer" in page
    assert "No tree head has been signed yet" in page


@pytest.mark.skipif(OPENSSL is None, reason="openssl binary not available")
def test_a_time_stamped_head_says_so(chain, client, login_as, tsa):  # noqa: F811
    chain.config["DESK_TSA_URL"] = tsa.url()
    assert tree_heads.issue(chain).tsa_token
    login_as("auditor")
    page = client.get("/audit/checkpoints").get_data(as_text=True)
    assert '<span class="badge badge-ok">time-stamped</span>' in page


@pytest.mark.browser
def test_tree_heads_on_a_phone(chain, live_server, browser_page, make_user, artifacts_dir):
    email = make_user("officer")
    page = browser_page
    page.goto(f"{live_server}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server}/audit/checkpoints")
    page.get_by_role("button", name="Sign a tree head now").click()
    page.wait_for_selector("[data-testid=tree-heads]")
    assert page.get_by_text("Tree head signed:").is_visible()
    seed(chain, 5)
    page.get_by_role("button", name="Sign a tree head now").click()
    page.wait_for_selector("[data-testid=tree-heads] tbody tr:nth-child(2)")
    page.locator("[data-testid=tree-heads] summary").first.click()  # the whole root, copyable
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(artifacts_dir / "checkpoints-tree-heads-phone.png"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download witness.py").click()
    assert download.value.suggested_filename == "witness.py"
    page.set_viewport_size({"width": 1280, "height": 860})
    page.reload()
    page.screenshot(path=str(artifacts_dir / "checkpoints-tree-heads.png"), full_page=True)
