"""Issue 12, findings 1 and 4: four-eyes that cannot be walked around.

Finding 1 — "the approver approves less than is sent": officer A uploads X = {v} and leaves it
awaiting approval; A uploads Y = {v, m}, whose page says "1 valid"; B approves Y; at submission
the desk revived v and Heap deleted v while X still awaited its own approval. Now an approval is
bound to a manifest (count and SHA-256 of the sorted fingerprints to send), submission sends
exactly that set, and a set that changed goes back for approval.

Finding 4 — "one admin satisfies four-eyes alone": an admin creates a second account, signs in
with it and approves. Now an account never approves the work of its creator or of an account it
created, and DESK_APPROVER_MIN_AGE_HOURS can require approvers' accounts to be that old.

The replays run the real submission job against the Heap sandbox over HTTP.
"""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import PASSWORD
from sqlmodel import select
from workflow_factories import audit_entries, batch_of, deletion_posts, make_environment

from webapp.accounts import four_eyes
from webapp.accounts import users as accounts
from webapp.cli import users_create
from webapp.config import ConfigError, load_settings
from webapp.crypto import subject_fingerprint
from webapp.db import session_scope
from webapp.erasure import batches, submission
from webapp.erasure.manifest import manifest_sha256
from webapp.models import Batch, Subject, User, utcnow

V, M, N = "v.person@example.org", "m.person@example.org", "n.person@example.org"


@pytest.fixture
def env_id(app, sandbox):
    """Main Production on the Heap sandbox (the `upload` fixture stores batches for it)."""
    return make_environment(app, sandbox)


def sent(sandbox) -> list[str]:
    """Every identity Heap was asked to delete, in order."""
    return [
        user["identity"]
        for post in deletion_posts(sandbox)
        if post["status"] == 201
        for user in (post["users"] if "users" in post else post["body"]["users"])
    ]


def approve(app, actor: str, batch_id: int, **confirmed) -> Batch:
    with app.app_context(), session_scope(write=True) as session:
        return batches.approve(session, actor=actor, batch_id=batch_id, **confirmed)


def cancel(app, actor: str, batch_id: int, reason: str = "uploaded twice") -> None:
    with app.app_context(), session_scope(write=True) as session:
        batches.cancel(session, actor=actor, batch_id=batch_id, reason=reason)


@pytest.fixture
def manifest_of(app):
    """manifest_of(*identities): their manifest SHA-256, computed as DESIGN.md defines it."""
    key = app.config["DESK_FINGERPRINT_KEY"]

    def digest(*identities: str) -> str:
        return manifest_sha256(subject_fingerprint("identity", i, key=key) for i in identities)

    return digest


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


# --- finding 1: approval binds to exactly what is sent ----------------------------------------


def test_replay_an_earlier_batch_awaiting_approval_never_revives_into_a_later_one(
    app, sandbox, make_user, upload
):
    a, b = make_user("officer"), make_user("officer")
    x = upload(a, f"identity\n{V}\n")
    y = upload(a, f"identity\n{V}\n{M}\n")
    assert batch_of(app, y).valid_count == 1  # the page says "1 valid — will be sent"
    approve(app, b, y)

    submission.submit_due(app)

    assert sent(sandbox) == [M]  # exactly what B approved; v is X's to decide
    assert (batch_of(app, y).state, batch_of(app, y).manifest_count) == ("polling", 1)
    assert batch_of(app, x).state == "awaiting_approval"
    approve(app, b, x)
    submission.submit_due(app)
    assert sent(sandbox) == [M, V]


def test_a_revival_sends_nothing_and_asks_for_a_new_approval(
    app, client, auth, sandbox, make_user, upload, manifest_of
):
    a, b = make_user("officer"), make_user("officer")
    x = upload(a, f"identity\n{V}\n")
    y = upload(a, f"identity\n{V}\n{M}\n")
    approve(app, b, y, manifest_sha256=manifest_of(M))
    cancel(app, a, x)  # v is held by no other batch now: Y must take it back

    assert submission.submit_due(app) == 0
    assert deletion_posts(sandbox) == []
    returned = batch_of(app, y)
    assert returned.state == "awaiting_approval"
    assert (returned.approved_by, returned.approved_at, returned.approved_manifest_sha256) == (
        None,
        None,
        None,
    )
    assert (returned.manifest_count, returned.manifest_sha256) == (2, manifest_of(V, M))
    assert (
        "1 subject" in returned.reapproval_reason and "new approval" in returned.reapproval_reason
    )
    (entry,) = audit_entries(app, "batch.returned_for_approval")
    assert entry["target_id"] == str(y)
    assert entry["details"]["approved_manifest"] == {"count": 1, "sha256": manifest_of(M)}
    assert entry["details"]["manifest"] == {"count": 2, "sha256": manifest_of(V, M)}
    trail = str(audit_entries(app))
    assert V not in trail and M not in trail

    auth.login(b)
    shown = page(client, f"/batches/{y}")
    assert returned.reapproval_reason in shown
    assert manifest_of(V, M) in shown and 'data-testid="manifest-count">2<' in shown
    with pytest.raises(batches.WrongState, match="manifest SHA-256"):
        approve(app, b, y, manifest_sha256=manifest_of(M))  # the set B saw before
    assert batch_of(app, y).state == "awaiting_approval"

    approve(app, b, y, manifest_sha256=manifest_of(V, M))
    submission.submit_due(app)
    assert sorted(sent(sandbox)) == sorted([M, V])


def test_two_later_batches_holding_a_withdrawn_subject_take_it_back_once(
    app, sandbox, make_user, upload
):
    a, b = make_user("officer"), make_user("officer")
    x = upload(a, f"identity\n{V}\n")
    y = upload(a, f"identity\n{V}\n{M}\n")
    w = upload(a, f"identity\n{V}\n{N}\n")
    approve(app, b, y)
    approve(app, b, w)
    cancel(app, a, x)

    submission.submit_due(app)

    # Y took v back and waits for a new approval; W leaves v to Y and sends what was approved.
    assert (batch_of(app, y).state, batch_of(app, y).manifest_count) == ("awaiting_approval", 2)
    assert (batch_of(app, w).state, batch_of(app, w).manifest_count) == ("polling", 1)
    assert sent(sandbox) == [N]
    approve(app, b, y)
    submission.submit_due(app)
    assert sorted(sent(sandbox)) == sorted([N, M, V])  # v once


def test_a_set_changed_behind_an_approval_is_not_sent(app, sandbox, make_user, upload):
    """An exclusion (or any edit of the rows) after approval also needs a new approval."""
    a, b = make_user("officer"), make_user("officer")
    y = upload(a, f"identity\n{V}\n{M}\n")
    approve(app, b, y)
    with app.app_context(), session_scope(write=True) as session:
        row = session.exec(select(Subject).where(Subject.batch_id == y)).first()
        row.classification, row.state = "malformed", "skipped"
        session.commit()

    submission.submit_due(app)

    assert deletion_posts(sandbox) == []
    returned = batch_of(app, y)
    assert (returned.state, returned.manifest_count) == ("awaiting_approval", 1)
    assert "changed after approval" in returned.reapproval_reason


def test_the_approver_sees_and_confirms_the_manifest(
    app, client, auth, make_user, upload, api_token, manifest_of
):
    a, b = make_user("officer"), make_user("officer")
    y = upload(a, f"identity\n{M}\n{M}\nnot an identity\x01\n")
    stored = batch_of(app, y)
    assert (stored.manifest_count, stored.manifest_sha256) == (1, manifest_of(M))
    (uploaded,) = audit_entries(app, "batch.uploaded")
    assert uploaded["details"]["manifest"] == {"count": 1, "sha256": manifest_of(M)}

    auth.login(b)
    shown = page(client, f"/batches/{y}")
    assert f'data-testid="manifest-sha256">{manifest_of(M)}<' in shown
    # The confirmation repeats it and posts the hash it showed (issue 15).
    confirming = page(client, f"/batches/{y}/approve")
    assert f'data-testid="confirm-manifest-sha256">{manifest_of(M)}<' in confirming
    assert re.search(rf'name="manifest_sha256" type="hidden" value="{manifest_of(M)}"', confirming)

    token = api_token("officer")
    headers = {"Authorization": f"Bearer {token}"}
    body = client.get(f"/api/v1/batches/{y}", headers=headers).json
    assert body["manifest"] == {"count": 1, "sha256": manifest_of(M)}
    response = client.post(
        f"/api/v1/batches/{y}/approve", headers=headers, json={"manifest_sha256": "ab" * 32}
    )
    assert response.status_code == 409 and "manifest" in response.json["error"]["message"]
    assert batch_of(app, y).state == "awaiting_approval"
    assert audit_entries(app, "batch.approved") == []
    response = client.post(
        f"/api/v1/batches/{y}/approve", headers=headers, json={"manifest_sha256": manifest_of(M)}
    )
    assert response.status_code == 200 and response.json["state"] == "approved"
    assert response.json["approved_manifest_sha256"] == manifest_of(M)
    (approved,) = audit_entries(app, "batch.approved")
    assert approved["details"]["manifest"] == {"count": 1, "sha256": manifest_of(M)}


# --- finding 4: four-eyes across accounts ----------------------------------------------------


def _create_account_on_the_page(auth, role: str, email: str):
    response = auth.post(
        "/admin/users",
        {"email": email, "role": role, "password": PASSWORD},
        form_page="/admin/users",
    )
    assert response.status_code == 302, response.get_data(as_text=True)


def _user(app, email: str) -> User:
    with app.app_context(), session_scope(write=False) as session:
        return accounts.find_user(session, email)


@pytest.fixture
def second_account(auth, make_user, upload):
    """An admin's batch, and a second account that admin made, signed in: (admin, batch id)."""
    admin = make_user("admin")
    batch_id = upload(admin, f"identity\n{V}\n")
    auth.login(admin)
    _create_account_on_the_page(auth, "officer", "second.me@example.org")
    auth.logout()
    auth.login("second.me@example.org")
    return admin, batch_id


def test_replay_one_admin_cannot_approve_alone_with_a_second_account(
    app, client, auth, second_account
):
    admin, batch_id = second_account

    response = auth.post(
        f"/batches/{batch_id}/approve",
        {"manifest_sha256": batch_of(app, batch_id).manifest_sha256},
        form_page=f"/batches/{batch_id}",
    )

    shown = page(client, response.location)
    assert "Your account was created by the author of batch" in shown
    assert batch_of(app, batch_id).state == "awaiting_approval"
    assert _user(app, "second.me@example.org").created_by == _user(app, admin).id
    (refused,) = audit_entries(app, "four_eyes.refused")  # committed on its own
    assert (refused["target_type"], refused["target_id"]) == ("batch", str(batch_id))
    assert refused["details"] == {
        "rule": "creator",
        "approver_id": _user(app, "second.me@example.org").id,
        "author_id": _user(app, admin).id,
    }
    assert audit_entries(app, "batch.approved") == []


def test_the_page_offers_no_approve_button_to_a_dependent_account(app, client, second_account):
    _, batch_id = second_account

    shown = page(client, f"/batches/{batch_id}")

    assert 'data-testid="four-eyes-note"' in shown
    assert "Your account was created by the author of batch" in shown
    assert "Approve and queue for submission" not in shown
    assert audit_entries(app, "four_eyes.refused") == []  # looking is not an attempt


def test_an_admin_cannot_approve_the_work_of_an_account_it_created(
    app, client, auth, make_user, upload
):
    admin = make_user("admin")
    auth.login(admin)
    _create_account_on_the_page(auth, "officer", "made.by.admin@example.org")
    batch_id = upload("made.by.admin@example.org", f"identity\n{V}\n")
    token = _token(app, admin)

    response = client.post(
        f"/api/v1/batches/{batch_id}/approve", headers={"Authorization": f"Bearer {token}"}
    )

    assert response.status_code == 403
    assert response.json["error"]["code"] == "four_eyes"
    assert "You created the account" in response.json["error"]["message"]
    assert batch_of(app, batch_id).state == "awaiting_approval"
    (refused,) = audit_entries(app, "four_eyes.refused")
    assert refused["details"]["rule"] == "created"


def test_a_chain_of_created_accounts_is_one_person_for_four_eyes(
    app, client, auth, make_user, upload
):
    """A creates B, B creates C: C never approves A's work, nor A C's."""
    first = make_user("admin")
    auth.login(first)
    _create_account_on_the_page(auth, "admin", "b.made.by.a@example.org")
    auth.logout()
    auth.login("b.made.by.a@example.org")
    _create_account_on_the_page(auth, "officer", "c.made.by.b@example.org")
    auth.logout()
    by_first = upload(first, f"identity\n{V}\n")
    by_c = upload("c.made.by.b@example.org", f"identity\n{M}\n")
    headers = {"Authorization": f"Bearer {_token(app, 'c.made.by.b@example.org')}"}

    refused = client.post(f"/api/v1/batches/{by_first}/approve", headers=headers)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "four_eyes"
    headers = {"Authorization": f"Bearer {_token(app, first)}"}
    refused = client.post(f"/api/v1/batches/{by_c}/approve", headers=headers)
    assert refused.status_code == 403 and refused.json["error"]["code"] == "four_eyes"

    assert [entry["details"]["rule"] for entry in audit_entries(app, "four_eyes.refused")] == [
        "creator",
        "created",
    ]
    assert batch_of(app, by_first).state == batch_of(app, by_c).state == "awaiting_approval"


def _token(app, email: str) -> str:
    from webapp.accounts import tokens as api_tokens

    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        return api_tokens.create_api_token(session, actor="test", user=user, name="test")


def test_self_approval_is_refused_and_audited(app, make_user, upload):
    uploader = make_user("admin")
    batch_id = upload(uploader, f"identity\n{V}\n")
    with pytest.raises(batches.SelfApproval, match="four-eyes"):
        approve(app, uploader, batch_id)
    (refused,) = audit_entries(app, "four_eyes.refused")
    assert refused["details"]["rule"] == "uploader"


def test_a_young_account_may_not_approve_when_the_desk_requires_an_age(app, make_user, upload):
    app.config["DESK_APPROVER_MIN_AGE_HOURS"] = 48
    uploader, approver = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, f"identity\n{V}\n")
    with pytest.raises(batches.FourEyesRefused, match="less than 48 hours old"):
        approve(app, approver, batch_id)
    (refused,) = audit_entries(app, "four_eyes.refused")
    assert refused["details"]["rule"] == "account_age"
    with app.app_context(), session_scope(write=True) as session:
        accounts.find_user(session, approver).created_at = utcnow() - timedelta(hours=49)
        session.commit()
    assert approve(app, approver, batch_id).state == "approved"


def test_near_misses_are_audited_with_the_approval(app, make_user, upload):
    admin = make_user("admin")
    with app.app_context(), session_scope(write=True) as session:
        creator = accounts.find_user(session, admin).id
        for email in ("sibling.one@example.org", "sibling.two@example.org"):
            accounts.create_user(
                session,
                actor=admin,
                email=email,
                password=PASSWORD,
                role="officer",
                created_by=creator,
            )
        session.commit()
    batch_id = upload("sibling.one@example.org", f"identity\n{V}\n")

    approve(app, "sibling.two@example.org", batch_id)

    entries = audit_entries(app)
    approved = next(e for e in entries if e["action"] == "batch.approved")
    misses = [e for e in entries if e["action"] == "four_eyes.near_miss"]
    assert [e["details"]["rule"] for e in misses] == ["same_creator", "young_account"]
    assert [e["seq"] for e in misses] == [approved["seq"] + 1, approved["seq"] + 2]
    assert misses[0]["details"] == {
        "rule": "same_creator",
        "approver_id": _user(app, "sibling.two@example.org").id,
        "author_id": _user(app, "sibling.one@example.org").id,
    }
    assert misses[0]["target_type"] == "batch" and misses[0]["target_id"] == str(batch_id)


def test_no_near_miss_for_independent_seasoned_accounts(app, make_user, upload):
    uploader, approver = make_user("officer"), make_user("officer")
    with app.app_context(), session_scope(write=True) as session:
        accounts.find_user(session, approver).created_at = utcnow() - timedelta(days=3)
        session.commit()
    approve(app, approver, upload(uploader, f"identity\n{V}\n"))
    assert audit_entries(app, "four_eyes.near_miss") == []


@pytest.mark.parametrize(
    ("approver", "author", "age_hours", "min_age", "rule"),
    [
        ({"id": 1}, {"id": 1}, 100, 0, "uploader"),
        ({"id": 2, "created_by": 1}, {"id": 1}, 100, 0, "creator"),
        ({"id": 1}, {"id": 2, "created_by": 1}, 100, 0, "created"),
        ({"id": 2, "created_by": 3}, {"id": 1, "created_by": 3}, 100, 0, None),
        ({"id": 2}, {"id": 1}, 1, 0, None),
        ({"id": 2}, {"id": 1}, 1, 2, "account_age"),
        ({"id": 2}, {"id": 1}, 3, 2, None),
    ],
)
def test_the_rules(app, approver, author, age_hours, min_age, rule):
    now = utcnow()

    class Session:
        def get(self, model, key):
            return User(email="a@x.org", password_hash="!", role="admin", created_at=now, **author)

    person = User(
        email="b@x.org",
        password_hash="!",
        role="admin",
        created_at=now - timedelta(hours=age_hours),
        **approver,
    )
    refusal = four_eyes.approval_refusal(
        Session(), person, author["id"], now=now, min_age_hours=min_age
    )
    assert (refusal.rule if refusal else None) == rule
    if refusal:
        assert "cannot approve" in refusal.message


def test_accounts_made_on_the_command_line_have_no_creator(app, runner):
    result = runner.invoke(
        users_create,
        ["--email", "ops@example.org", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert _user(app, "ops@example.org").created_by is None


@pytest.mark.parametrize(("raw", "hours"), [(None, 0), ("", 0), ("0", 0), ("72", 72)])
def test_the_minimum_age_setting(tmp_path, raw, hours):
    env = {"DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    if raw is not None:
        env["DESK_APPROVER_MIN_AGE_HOURS"] = raw
    assert load_settings(tmp_path, env)["DESK_APPROVER_MIN_AGE_HOURS"] == hours


@pytest.mark.parametrize("raw", ["-1", "a day"])
def test_a_bad_minimum_age_is_refused(tmp_path, raw):
    env = {"DESK_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}"}
    with pytest.raises(ConfigError, match="DESK_APPROVER_MIN_AGE_HOURS"):
        load_settings(tmp_path, {**env, "DESK_APPROVER_MIN_AGE_HOURS": raw})
