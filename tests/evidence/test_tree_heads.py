"""Signed tree heads: issued as the trail grows, served with proofs, and what they catch.

Every attack here is a test on SQLite and on PostgreSQL (CI runs the suite on both): a rewrite
of the tail with recomputed hashes, a truncation, a forged head. The RFC 3161 timestamps come
from a real `openssl ts` authority over HTTP on loopback.
"""

from __future__ import annotations

import base64

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import seed
from tsa_fixtures import *  # noqa: F401,F403
from tsa_fixtures import Tsa

from webapp.cli import audit_verify
from webapp.db import get_engine, session_scope
from webapp.evidence import signing, tree_heads
from webapp.jobs.scheduler import tick_once
from webapp.models import AuditEntry, AuditTreeHead
from webapp.trail import audit, merkle, tree


@pytest.fixture
def trail(app, signing_key_env):
    """Twelve entries and a signing key."""
    seed(app, 12)
    return app


def _issue(app, **options):
    with app.app_context():
        return tree_heads.issue(app, **options)


def _heads(app) -> list[AuditTreeHead]:
    with app.app_context(), session_scope(write=False) as session:
        return list(
            session.exec(sa.select(AuditTreeHead).order_by(AuditTreeHead.tree_size)).scalars()
        )


def _size(app) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return tree.size(session)


def _public(app) -> Ed25519PublicKey:
    with app.app_context():
        return Ed25519PublicKey.from_public_bytes(signing.public_key(app).raw)


def test_nothing_is_signed_before_the_first_entry(app, signing_key_env):
    assert _issue(app) is None
    assert _heads(app) == []


def test_a_head_signs_the_size_and_root_of_the_trail(trail):
    head = _issue(trail)
    assert head.tree_size == 12
    with trail.app_context(), session_scope(write=False) as session:
        assert head.root_hash == tree.root(session, 12).hex()
        assert head.key_id == signing.public_key(trail).key_id
    message = tree_heads.sth_message(head.tree_size, head.root_hash, head.timestamp)
    assert (
        message
        == (
            f'{{"root_hash":"{head.root_hash}","timestamp":"{head.timestamp}","tree_size":12}}'
        ).encode()
    )
    _public(trail).verify(base64.b64decode(head.signature), message)  # raises if invalid
    assert set(tree_heads.sth_dict(head)) == {
        "tree_size",
        "root_hash",
        "timestamp",
        "key_id",
        "signature",
    }


def test_a_head_is_issued_only_when_the_trail_grew_and_is_no_audit_entry(trail):
    first = _issue(trail)
    again = _issue(trail)
    assert again.id == first.id
    assert _size(trail) == 12  # signing did not grow the log it signs (PITFALLS.md #19)
    seed(trail, 3)
    later = _issue(trail)
    assert later.tree_size == 15
    assert [h.tree_size for h in _heads(trail)] == [12, 15]


def test_the_scheduler_signs_heads_as_the_trail_grows(trail):
    assert "tree_head" in tick_once(trail, holder="sth-test")
    assert [h.tree_size for h in _heads(trail)] == [12]
    tick_once(trail, holder="sth-test")
    assert len(_heads(trail)) == 1  # idle: no new head


def test_a_missing_signing_key_is_a_plain_error(app, monkeypatch):
    seed(app, 2)
    monkeypatch.setattr(
        signing,
        "signing_key",
        lambda app=None: (_ for _ in ()).throw(signing.SigningKeyError("no key configured")),
    )
    monkeypatch.setattr(tree_heads, "signing_key", signing.signing_key)
    with pytest.raises(tree_heads.TreeHeadError, match="no key configured"):
        _issue(app)


# --- the API ----------------------------------------------------------------------------


def test_sth_and_proofs_over_the_api_verify_with_the_rfc_algorithms(trail, client, api_token):
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    assert client.get("/api/v1/audit/sth", headers=headers).status_code == 404
    old = tree_heads.sth_dict(_issue(trail))
    seed(trail, 9)
    new = tree_heads.sth_dict(_issue(trail))
    first, second = old["tree_size"], new["tree_size"]
    assert second == first + 9

    latest = client.get("/api/v1/audit/sth", headers=headers)
    assert latest.status_code == 200
    assert latest.json == new
    assert client.get(f"/api/v1/audit/sth?size={first}", headers=headers).json == old
    missing = client.get(f"/api/v1/audit/sth?size={first + 1}", headers=headers)
    assert missing.status_code == 404
    assert f"No tree head was signed at size {first + 1}" in missing.json["error"]["message"]

    with trail.app_context(), session_scope(write=False) as session:
        entries = list(audit.iter_entries(session))
    for seq in (1, 7, first, second):
        answer = client.get(f"/api/v1/audit/inclusion?seq={seq}&size={second}", headers=headers)
        proof = answer.json
        assert set(proof) == {"seq", "leaf_index", "tree_size", "leaf_hash", "path"}
        leaf = merkle.leaf_hash(entries[seq - 1]["hash"])
        assert proof["leaf_hash"] == leaf.hex()
        path = [bytes.fromhex(p) for p in proof["path"]]
        root = bytes.fromhex(new["root_hash"])
        assert merkle.verify_inclusion(leaf, seq - 1, second, path, root)
    query = f"/api/v1/audit/consistency?first={first}&second={second}"
    proof = client.get(query, headers=headers).json
    assert set(proof) == {"first", "second", "path"}
    assert merkle.verify_consistency(
        first,
        second,
        bytes.fromhex(old["root_hash"]),
        bytes.fromhex(new["root_hash"]),
        [bytes.fromhex(p) for p in proof["path"]],
    )


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("inclusion?seq=1", 400, "both needed"),
        ("inclusion?seq=abc&size=3", 400, "whole number"),
        ("inclusion?seq=0&size=3", 400, "whole number"),
        ("inclusion?seq=5&size=3", 404, "not in the tree"),
        ("inclusion?seq=1&size=99", 404, "no tree of size 99"),
        ("consistency?first=3", 400, "both needed"),
        # No tree is a prefix of a smaller one: that proof does not exist (404).
        ("consistency?first=9&second=3", 404, "must not be larger"),
        ("consistency?first=1&second=99", 404, "no tree of size 99"),
        ("sth?size=-1", 400, "whole number"),
        ("sth?size=99999999999999999999999", 400, "whole number"),
    ],
)
def test_bad_proof_queries_get_a_plain_4xx(trail, client, api_token, query, status, message):
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    answer = client.get(f"/api/v1/audit/{query}", headers=headers)
    assert answer.status_code == status
    assert message in answer.json["error"]["message"]


def test_heads_and_proofs_need_a_token(trail, client, make_user):
    make_user("admin")  # past the first-run setup page
    for path in ("sth", "inclusion?seq=1&size=1", "consistency?first=1&second=1"):
        assert client.get(f"/api/v1/audit/{path}").status_code == 401


# --- what the heads catch -----------------------------------------------------------------


def _rewrite_from(app, seq: int, *, actor: str) -> None:
    """An insider with the database's owner rights rewrites entry `seq` and every later one:
    hashes and links recomputed, the tree rebuilt, triggers put back. Only the signing key is
    out of reach."""
    with app.app_context(), get_engine().begin() as connection:
        audit.drop_triggers(connection)
        audit.drop_tree_triggers(connection)
        rows = connection.execute(
            sa.select(*[getattr(AuditEntry, f) for f in audit.ROW_FIELDS])
            .where(AuditEntry.seq >= seq)
            .order_by(AuditEntry.seq)
        ).all()
        prev = (
            connection.execute(sa.select(AuditEntry.hash).where(AuditEntry.seq == seq - 1)).scalar()
            or audit.GENESIS_HASH
        )
        for row in rows:
            entry = audit.row_dict(row)
            if entry["seq"] == seq:
                entry["actor"] = actor
            entry["prev_hash"] = prev
            entry["hash"] = audit.entry_hash(entry)
            prev = entry["hash"]
            connection.execute(
                sa.update(AuditEntry)
                .where(AuditEntry.seq == entry["seq"])
                .values(actor=entry["actor"], prev_hash=entry["prev_hash"], hash=entry["hash"])
            )
        # Every stored node that covers a rewritten leaf goes, then the tree is rebuilt.
        connection.execute(
            sa.text("DELETE FROM audit_tree_nodes WHERE ((idx + 1) << level) > :first"),
            {"first": seq - 1},
        )
        audit.create_triggers(connection)
        audit.create_tree_triggers(connection)
    with app.app_context(), session_scope(write=True) as session:
        tree.build(session)
        session.commit()


def test_a_rewritten_tail_passes_the_chain_but_not_the_signed_heads(trail, runner):
    _issue(trail)
    seed(trail, 4)
    _rewrite_from(trail, 10, actor="another-approver@example.org")
    with trail.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok  # the chain alone cannot tell
        report = tree_heads.verify_heads(session)
    assert not report.ok
    assert report.problems == [
        "the entries no longer give the root signed at size 12: the trail was rewritten"
    ]
    result = runner.invoke(audit_verify)
    assert result.exit_code == 1
    assert "FAILED tree head: the entries no longer give the root signed at size 12" in (
        result.output
    )


def test_a_truncated_trail_is_caught_by_the_heads(trail):
    _issue(trail)
    with trail.app_context(), get_engine().begin() as connection:
        audit.drop_triggers(connection)
        connection.exec_driver_sql("DELETE FROM audit_entries WHERE seq > 10")
        audit.create_triggers(connection)
    with trail.app_context(), session_scope(write=False) as session:
        assert audit.verify(session).ok
        report = tree_heads.verify_heads(session)
    assert "fewer entries than the tree head at size 12" in report.problems[0]


def test_a_forged_head_is_caught(trail):
    head = _issue(trail)
    with trail.app_context(), get_engine().begin() as connection:
        audit.drop_tree_triggers(connection)
        connection.execute(
            sa.update(AuditTreeHead).where(AuditTreeHead.id == head.id).values(root_hash="00" * 32)
        )
        audit.create_tree_triggers(connection)
    with trail.app_context(), session_scope(write=False) as session:
        problems = tree_heads.verify_heads(session).problems
    assert "the signature of the tree head at size 12 is not valid" in problems
    assert "the entries no longer give the root signed at size 12" in problems[1]


def test_untouched_heads_verify_on_the_page_and_the_api(trail, client, api_token, auth, make_user):
    _issue(trail)
    headers = {"Authorization": f"Bearer {api_token('auditor')}"}
    body = client.get("/api/v1/audit/verify", headers=headers).json
    assert body["ok"] is True
    assert body["tree_heads"] == {
        "count": 1,
        "key_id": body["tree_heads"]["key_id"],
        "ok": True,
        "problems": [],
    }


# --- RFC 3161 timestamps ----------------------------------------------------------------


def test_with_a_tsa_every_head_carries_a_token_openssl_verifies(trail, tsa: Tsa, tmp_path):
    trail.config["DESK_TSA_URL"] = tsa.url()
    head = _issue(trail)
    assert head.tsa_token
    message = tree_heads.sth_message(head.tree_size, head.root_hash, head.timestamp)
    (tmp_path / "sth.msg").write_bytes(message)
    (tmp_path / "sth.tst").write_bytes(base64.b64decode(head.tsa_token))
    checked = tsa.openssl_verify(tmp_path / "sth.msg", tmp_path / "sth.tst")
    assert b"Verification: OK" in checked.stdout, checked.stderr
    assert tree_heads.sth_dict(head)["tsa_token"] == head.tsa_token


def test_when_the_tsa_fails_no_untimestamped_head_is_issued(trail, tsa: Tsa):
    trail.config["DESK_TSA_URL"] = tsa.url("/status500")
    with pytest.raises(tree_heads.TreeHeadError, match="time-stamping authority"):
        _issue(trail)
    assert _heads(trail) == []
