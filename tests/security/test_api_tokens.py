"""Issue 12, finding 6: API tokens survived their owner's password change, never expired and had
no scope.

Now a token lasts 1 to 365 days (90 by default, shown with its last use), carries the scope
`read` or `write` (auditors only ever `read`; every POST, PUT and DELETE of the API needs
`write`), and a password change revokes the owner's tokens except those they tick to keep.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from conftest import PASSWORD, AuthActions
from sqlmodel import select

from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.accounts.sign_in import AccountError
from webapp.cli import tokens_create
from webapp.db import session_scope
from webapp.models import ApiToken, utcnow
from webapp.trail import audit

NEW = "a brand new long passphrase"


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _token(app, email: str, name: str = "script", **options) -> str:
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        return api_tokens.create_api_token(session, actor="test", user=user, name=name, **options)


def _rows(app) -> list[ApiToken]:
    with app.app_context(), session_scope(write=False) as session:
        return list(session.exec(select(ApiToken).order_by(ApiToken.id)).all())


def _entries(app, action: str) -> list[dict]:
    with app.app_context(), session_scope(write=False) as session:
        return [e for e in audit.iter_entries(session) if e["action"] == action]


# --- expiry -----------------------------------------------------------------------------------


def test_a_token_expires_after_90_days_by_default(app, make_user):
    _token(app, make_user("officer"))
    (row,) = _rows(app)
    lifetime = row.expires_at - row.created_at
    assert timedelta(days=90) - timedelta(minutes=1) <= lifetime <= timedelta(days=90)
    assert row.scope == "write"
    created = _entries(app, "api_token.created")[0]["details"]
    assert created["scope"] == "write" and created["days"] == 90


def test_an_expired_token_is_refused_with_a_plain_message(app, client, make_user):
    token = _token(app, make_user("auditor"), days=1)
    assert client.get("/api/v1/audit/verify", headers=_bearer(token)).status_code == 200
    with app.app_context(), session_scope(write=True) as session:
        row = session.exec(select(ApiToken)).one()
        row.expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    refused = client.get("/api/v1/audit/verify", headers=_bearer(token))
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "unauthorized"
    assert "expired" in refused.json["error"]["message"]


@pytest.mark.parametrize("days", [0, 366, -5])
def test_lifetimes_outside_1_to_365_days_are_refused(app, make_user, days):
    email = make_user("officer")
    with pytest.raises(AccountError, match="1 to 365 days"):
        _token(app, email, days=days)
    assert _rows(app) == []


# --- scopes -----------------------------------------------------------------------------------


def test_a_read_token_reads_but_cannot_write(app, client, make_user):
    token = _token(app, make_user("admin"), scope="read")
    assert client.get("/api/v1/environments", headers=_bearer(token)).status_code == 200
    refused = client.post(
        "/api/v1/environments", headers=_bearer(token), json={"name": "Staging", "app_id": "42"}
    )
    assert refused.status_code == 403
    message = refused.json["error"]["message"]
    assert "read" in message and "write" in message and "scope" in message
    write = _token(app, make_user("admin"), name="writer")
    created = client.post(
        "/api/v1/environments", headers=_bearer(write), json={"name": "Staging", "app_id": "42"}
    )
    assert created.status_code == 201


def test_every_writing_api_route_needs_the_write_scope(app, client, make_user):
    token = _token(app, make_user("admin"), scope="read")
    writing = [
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/")
        for method in rule.methods & {"POST", "PUT", "PATCH", "DELETE"}
    ]
    assert writing
    for method, rule in writing:
        path = re.sub(r"<(?:[^:<>]+:)?[^<>]+>", "1", rule)
        answer = client.open(path, method=method, headers=_bearer(token), json={})
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "write" in answer.json["error"]["message"]


def test_auditors_get_read_tokens_and_never_write_ones(app, make_user):
    email = make_user("auditor")
    _token(app, email)
    assert _rows(app)[0].scope == "read"
    with pytest.raises(AccountError, match="read"):
        _token(app, email, name="other", scope="write")
    with pytest.raises(AccountError):
        _token(app, email, name="other", scope="admin")
    assert len(_rows(app)) == 1


# --- the page -------------------------------------------------------------------------------


def test_the_page_creates_scoped_tokens_and_lists_expiry_and_last_use(app, client, make_user):
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    page = auth.post("/account/tokens", {"name": "nightly", "scope": "read", "days": "30"})
    token = re.search(r'data-testid="new-token">([^<]+)<', page.get_data(as_text=True)).group(1)
    client.get("/api/v1/environments", headers=_bearer(token))
    (row,) = _rows(app)
    assert row.scope == "read" and row.last_used_at is not None
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert row.expires_at.strftime("%Y-%m-%d") in listing
    assert row.last_used_at.strftime("%Y-%m-%d") in listing
    assert "read" in listing


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "x", "scope": "write", "days": "0"}, "1 to 365"),
        ({"name": "x", "scope": "write", "days": "400"}, "1 to 365"),
        ({"name": "x", "scope": "write", "days": "ninety"}, "1 to 365"),
        ({"name": "x", "scope": "owner", "days": "30"}, "Not a valid choice"),
    ],
)
def test_the_page_refuses_bad_lifetimes_and_scopes(app, client, make_user, data, message):
    auth = AuthActions(client)
    auth.login(make_user("officer"))
    answer = auth.post("/account/tokens", data)
    assert answer.status_code == 400 and message in answer.get_data(as_text=True)
    assert _rows(app) == []


def test_an_auditor_cannot_make_a_write_token_on_the_page(app, client, make_user):
    auth = AuthActions(client)
    auth.login(make_user("auditor"))
    answer = auth.post("/account/tokens", {"name": "x", "scope": "write", "days": "30"})
    assert answer.status_code == 400 and "read" in answer.get_data(as_text=True)
    assert _rows(app) == []


# --- the command line -----------------------------------------------------------------------


def test_cli_creates_tokens_with_scope_and_lifetime(app, runner, make_user, client):
    officer, auditor = make_user("officer"), make_user("auditor")
    result = runner.invoke(tokens_create, ["--email", officer, "--scope", "read", "--days", "7"])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    assert token.startswith("desk_") and "\n" not in token
    assert client.get("/api/v1/environments", headers=_bearer(token)).status_code == 200
    (row,) = _rows(app)
    assert row.scope == "read"
    assert timedelta(days=7) - timedelta(minutes=1) <= row.expires_at - row.created_at

    default = runner.invoke(tokens_create, ["--email", auditor])
    assert default.exit_code == 0 and _rows(app)[1].scope == "read"

    refused = runner.invoke(tokens_create, ["--email", auditor, "--scope", "write"])
    assert refused.exit_code != 0 and "read" in refused.output
    for days in ("0", "366"):
        refused = runner.invoke(tokens_create, ["--email", officer, "--days", days])
        assert refused.exit_code != 0 and "1 to 365" in refused.output
    assert len(_rows(app)) == 2


# --- password changes -------------------------------------------------------------------------


def test_a_password_change_revokes_the_owners_tokens(app, client, make_user):
    """The finding replayed: the token still worked after its owner's password changed."""
    email = make_user("officer")
    token = _token(app, email)
    other_owner = _token(app, make_user("officer"), name="someone else's")
    auth = AuthActions(client)
    auth.login(email)
    changed = auth.post("/account/password", {"current": PASSWORD, "new": NEW, "confirm": NEW})
    assert changed.status_code == 302
    refused = client.get("/api/v1/environments", headers=_bearer(token))
    assert refused.status_code == 401 and "revoked" in refused.json["error"]["message"]
    assert client.get("/api/v1/environments", headers=_bearer(other_owner)).status_code == 200
    rows = _rows(app)
    assert rows[0].revoked_reason == "password_changed" and rows[1].revoked_at is None
    (entry,) = _entries(app, "user.password_changed")
    assert entry["details"] == {"api_tokens_revoked": 1, "api_tokens_kept": 0}


def test_the_owner_may_keep_named_tokens_on_the_same_page(app, client, make_user):
    email = make_user("officer")
    keep, drop = _token(app, email, name="ticketing sync"), _token(app, email, name="laptop")
    auth = AuthActions(client)
    auth.login(email)
    page = client.get("/account/password").get_data(as_text=True)
    assert "ticketing sync" in page and "laptop" in page
    keep_id = next(row.id for row in _rows(app) if row.name == "ticketing sync")
    data = {"current": PASSWORD, "new": NEW, "confirm": NEW, "keep_tokens": str(keep_id)}
    assert auth.post("/account/password", data).status_code == 302
    assert client.get("/api/v1/environments", headers=_bearer(keep)).status_code == 200
    assert client.get("/api/v1/environments", headers=_bearer(drop)).status_code == 401
    (entry,) = _entries(app, "user.password_changed")
    assert entry["details"] == {"api_tokens_revoked": 1, "api_tokens_kept": 1}


def test_keeping_someone_elses_token_is_refused_and_changes_nothing(app, client, make_user):
    email = make_user("officer")
    _token(app, email, name="mine")
    theirs = _token(app, make_user("officer"), name="theirs")
    their_id = next(row.id for row in _rows(app) if row.name == "theirs")
    auth = AuthActions(client)
    auth.login(email)
    data = {"current": PASSWORD, "new": NEW, "confirm": NEW, "keep_tokens": str(their_id)}
    answer = auth.post("/account/password", data)
    assert answer.status_code == 400
    assert all(row.revoked_at is None for row in _rows(app))
    assert not _entries(app, "user.password_changed")
    assert client.get("/api/v1/environments", headers=_bearer(theirs)).status_code == 200
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.password_matches(accounts.find_user(session, email), PASSWORD, where="test")


def test_an_admin_password_reset_revokes_every_token(app, make_user):
    email = make_user("officer")
    _token(app, email, name="a")
    _token(app, email, name="b")
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        accounts.reset_password(session, actor="admin@example.org", user_id=user.id, password=NEW)
    assert {row.revoked_reason for row in _rows(app)} == {"password_reset"}
    assert _entries(app, "user.password_reset")[0]["details"] == {"api_tokens_revoked": 2}
