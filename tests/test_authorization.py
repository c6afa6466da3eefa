"""Every route × every role × anonymous: who may open what (extended as routes are added)."""

from __future__ import annotations

import re

import pytest

from webapp.models import Role

ROLES = [None, "auditor", "officer", "admin"]
PUBLIC = {"static", "auth.setup", "auth.login", "home.index", "api.health", "api.openapi"}
PUBLIC |= {"api.docs", "api.docs_asset"}  # the API's document, rendered: it holds no data
# The second step of sign-in: open before sign-in, guarded by the pending second-factor marker.
PUBLIC |= {
    "two_factor.verify",
    "two_factor.enrol",
    "two_factor.enrol_start",
    "two_factor.enrol_confirm",
}
# Pages any signed-in person may use, whatever the role (their own account).
SIGNED_IN = {"auth.logout", "auth.change_password", "admin.tokens", "admin.revoke_token"}


def _required(app, endpoint: str) -> Role | None:
    return getattr(app.view_functions[endpoint], "required_role", None)


def _path(rule) -> str:
    """A concrete URL for a rule: id-like arguments become 1, formats 'jsonl'."""
    path = rule.rule
    for name in rule.arguments:
        value = "jsonl" if name == "fmt" else "1"
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, path)
    return path


def test_every_route_is_guarded(app):
    """A new route without role_required (or an explicit place in the lists above) fails here."""
    unguarded = [
        endpoint
        for endpoint in app.view_functions
        if endpoint not in PUBLIC | SIGNED_IN and _required(app, endpoint) is None
    ]
    assert unguarded == []


@pytest.fixture
def matrix_app(app):
    # The matrix checks roles, not CSRF (tested on its own below).
    app.config["WTF_CSRF_ENABLED"] = False
    return app


@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(matrix_app, make_user, role):
    app = matrix_app
    make_user("admin", email="first-admin@example.org")  # the desk is set up
    client = app.test_client()
    if role:
        from conftest import AuthActions

        assert AuthActions(client).login(make_user(role)).status_code == 302
    checked = 0
    for rule in app.url_map.iter_rules():
        endpoint = rule.endpoint
        if endpoint in PUBLIC or endpoint == "auth.logout":  # logout would end the walk
            continue
        needed = _required(app, endpoint)
        api = rule.rule.startswith("/api/")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_path(rule), method=method)
            status = response.status_code
            if role is None or api:
                # Anonymous (and cookies on the API, which takes bearer tokens only).
                expected = {401} if api else {302}
                assert status in expected, (method, rule.rule, role, status)
                if not api:
                    assert response.location.startswith("/login")
            elif needed is not None and not Role(role).allows(needed):
                assert status == 403, (method, rule.rule, role, status)
            else:
                assert status not in {401, 403}, (method, rule.rule, role, status)
            checked += 1
    assert checked > 20


WRITING = {"POST", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize("role", ["auditor", "officer", "admin"])
def test_api_matrix_with_bearer_tokens(app, api_token, role):
    token = api_token(role)
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/") or rule.endpoint in PUBLIC:
            continue
        needed = _required(app, rule.endpoint)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(
                _path(rule), method=method, headers={"Authorization": f"Bearer {token}"}
            )
            if needed is not None and not Role(role).allows(needed):
                assert response.status_code == 403, (method, rule.rule, role)
                assert response.json["error"]["code"] == "forbidden"
            elif role == "auditor" and method in WRITING:
                # Auditors' tokens have the read scope: no writing route, not even a
                # harmless one (POST /audit/checkpoints: auditors sign one on the page).
                assert response.status_code == 403, (method, rule.rule, role)
                assert "write scope" in response.json["error"]["message"]
            else:
                assert response.status_code not in {401, 403}, (method, rule.rule, role)


def test_forms_without_csrf_token_change_nothing(app, client, auth, make_user):
    admin = make_user("admin")
    auth.login(admin)
    response = client.post(
        "/admin/users",
        data={"email": "x@example.org", "role": "admin", "password": "long enough password"},
    )
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)
    assert "x@example.org" not in client.get("/admin/users").get_data(as_text=True)


def test_login_form_needs_csrf(client, make_user):
    email = make_user("officer")
    response = client.post("/login", data={"email": email, "password": "whatever"})
    assert response.status_code == 400
