"""HTTP hardening: headers, cookies, size limit, API token authentication."""

from __future__ import annotations

from sqlmodel import select

from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.models import User


def test_pages_carry_security_headers_and_no_store(client, auth, login_as):
    login_as("auditor")
    response = client.get("/audit")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    download = client.get("/audit/export.csv")
    assert download.headers["Cache-Control"] == "no-store"
    assert "attachment" in download.headers["Content-Disposition"]


def test_pages_have_no_inline_script(client, auth, login_as):
    login_as("admin")
    for path in ("/dashboard", "/audit", "/environments", "/admin/users", "/account/tokens"):
        page = client.get(path).get_data(as_text=True)
        assert "<script>" not in page and "onclick=" not in page, path


def test_session_cookie_flags(client, auth, make_user):
    response = auth.login(make_user("officer"))
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_request_size_limit(app, client, auth, login_as):
    login_as("admin")
    assert app.config["MAX_CONTENT_LENGTH"]
    response = client.post(
        "/admin/users", data={"email": "x" * (app.config["MAX_CONTENT_LENGTH"] + 1)}
    )
    assert response.status_code == 413


def test_api_tokens_authenticate_and_can_be_revoked(app, client, auth, make_user):
    email = make_user("auditor")
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        raw = api_tokens.create_api_token(session, actor="test", user=user, name="script")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/audit/verify", headers=headers).json["ok"] is True
    auth.login(email)
    page = client.get("/account/tokens").get_data(as_text=True)
    assert "script" in page and raw not in page  # shown once, never again
    import re

    token_id = re.search(r"/account/tokens/(\d+)/revoke", page).group(1)
    auth.post(f"/account/tokens/{token_id}/revoke", form_page="/account/tokens")
    refused = client.get("/api/v1/audit/verify", headers=headers)
    assert refused.status_code == 401
    assert refused.json["error"]["code"] == "unauthorized"


def test_api_refuses_cookies_and_bad_tokens(client, auth, login_as):
    login_as("admin")
    assert client.get("/api/v1/audit").status_code == 401  # cookies do not work on the API
    bad = client.get("/api/v1/audit", headers={"Authorization": "Bearer desk_nope"})
    assert bad.status_code == 401 and "Bearer" in bad.json["error"]["message"]


def test_token_created_in_the_ui_is_shown_once(client, auth, login_as):
    login_as("officer")
    page = auth.post("/account/tokens", {"name": "ci"}).get_data(as_text=True)
    assert "Copy this token now" in page
    assert "Copy this token now" not in client.get("/account/tokens").get_data(as_text=True)


def test_health_reports_database_and_migrations(client, api_token):
    assert client.get("/api/v1/health").json == {"status": "ok"}  # details need an admin
    headers = {"Authorization": f"Bearer {api_token('admin')}"}
    body = client.get("/api/v1/health", headers=headers).json
    assert body["database"]["ok"] and body["database"]["at_head"]
    assert body["status"] == "ok"
    assert "lease_holder" in body["scheduler"]


def test_errors_are_pages_and_json(client, auth, login_as):
    login_as("auditor")
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "Not found" in page.get_data(as_text=True)
    api = client.get("/api/v1/nothing")
    assert api.status_code == 404 and api.json["error"]["code"] == "not_found"


def test_openapi_describes_the_api(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    assert "/audit/verify" in document["paths"] and "/environments" in document["paths"]


def test_token_use_is_recorded_without_blocking_writes(app, client, api_token):
    from sqlmodel import select

    from webapp.models import ApiToken

    token = api_token("admin")
    response = client.post(
        "/api/v1/environments",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "Staging", "app_id": "42"},
    )
    assert response.status_code == 201
    with app.app_context(), session_scope(write=False) as session:
        assert session.exec(select(ApiToken)).one().last_used_at is not None


def test_an_admin_password_reset_ends_the_accounts_api_tokens(app, client, auth, api_token):
    token = api_token("auditor")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/audit/verify", headers=headers).status_code == 200
    with app.app_context(), session_scope(write=True) as session:
        user = session.exec(select(User).order_by(User.id.desc())).first()
        accounts.reset_password(
            session, actor="admin@example.org", user_id=user.id, password="a fresh long passphrase"
        )
    assert client.get("/api/v1/audit/verify", headers=headers).status_code == 401
