"""Heap environments: registration, the encrypted API key, connection test, key rotation."""

from __future__ import annotations

import logging
from pathlib import Path

from cryptography.fernet import Fernet
from sqlmodel import select

from webapp.crypto import decrypt
from webapp.db import session_scope
from webapp.models import Environment
from webapp.trail import audit

SECRET_KEY = "heap-api-key-0123456789-very-secret"


def _form(sandbox=None, **overrides) -> dict:
    data = {
        "name": "Main Production",
        "app_id": sandbox.app_id if sandbox else "3000610572",
        "region": "us",
        "base_url": sandbox.url if sandbox else "",
        "main_production": "y",
        "api_key": sandbox.api_key if sandbox else SECRET_KEY,
        "account_property": "account_id",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _environments(app) -> list[Environment]:
    with app.app_context(), session_scope(write=False) as session:
        return list(session.exec(select(Environment)).all())


def test_admin_registers_an_environment_and_the_key_is_never_shown(app, client, auth, login_as):
    login_as("admin")
    response = auth.post("/environments/new", _form())
    assert response.status_code == 302
    [env] = _environments(app)
    assert env.app_id == "3000610572" and env.main_production
    with app.app_context():
        assert decrypt(env.api_key_encrypted) == SECRET_KEY
    listing = client.get("/environments").get_data(as_text=True)
    edit = client.get(f"/environments/{env.id}").get_data(as_text=True)
    assert "Main Production" in listing and "key set on" in listing
    assert SECRET_KEY not in listing + edit
    assert "set on" in edit


def test_api_key_is_not_in_the_database_file_nor_logs_nor_audit(
    app, auth, login_as, caplog, database_url
):
    caplog.set_level(logging.DEBUG)
    login_as("admin")
    auth.post("/environments/new", _form())
    if database_url.startswith("sqlite"):
        path = database_url.removeprefix("sqlite:///")
        raw = b"".join(Path(p).read_bytes() for p in (path, path + "-wal") if Path(p).exists())
        assert SECRET_KEY.encode() not in raw
    with app.app_context(), session_scope(write=False) as session:
        trail = "".join(str(e) for e in audit.iter_entries(session))
    assert SECRET_KEY not in trail
    assert SECRET_KEY not in caplog.text


def test_empty_key_on_edit_keeps_the_stored_one(app, auth, login_as):
    login_as("admin")
    auth.post("/environments/new", _form())
    [env] = _environments(app)
    auth.post(f"/environments/{env.id}", _form(api_key="", name="Prod"))
    [after] = _environments(app)
    assert after.name == "Prod"
    assert after.api_key_encrypted == env.api_key_encrypted


def test_bad_environment_input_is_refused_with_a_message(app, auth, login_as):
    login_as("admin")
    cases = [
        (_form(app_id="abc"), "The app_id is a number."),
        (_form(api_key=""), "Main Production needs its deletion API key."),
        (_form(base_url="http://169.254.169.254/latest"), "not allowed"),
        (_form(base_url="ftp://example.org"), "Enter a full URL"),
    ]
    for data, message in cases:
        page = auth.post("/environments/new", data).get_data(as_text=True)
        assert message in page, message
    assert _environments(app) == []


def test_test_connection_against_the_sandbox(app, client, auth, login_as, sandbox, caplog):
    caplog.set_level(logging.DEBUG)
    login_as("admin")
    auth.post("/environments/new", _form(sandbox))
    [env] = _environments(app)
    page = auth.post(
        f"/environments/{env.id}/test", form_page="/environments", follow_redirects=True
    ).get_data(as_text=True)
    assert "Heap issued a token" in page
    with app.app_context(), session_scope(write=False) as session:
        entry = [
            e for e in audit.iter_entries(session) if e["action"] == "environment.connection_tested"
        ][-1]
    assert entry["details"]["ok"] is True
    assert "token" not in str(entry["details"]).replace("issued a token", "")
    assert sandbox.api_key not in caplog.text


def test_test_connection_reports_a_wrong_key(app, auth, login_as, sandbox):
    login_as("admin")
    auth.post("/environments/new", _form(sandbox, api_key="not-the-right-key-at-all"))
    [env] = _environments(app)
    page = auth.post(
        f"/environments/{env.id}/test", form_page="/environments", follow_redirects=True
    ).get_data(as_text=True)
    assert "Heap refused" in page


def test_api_registers_and_lists_environments(app, client, api_token):
    admin = {"Authorization": f"Bearer {api_token('admin')}"}
    created = client.post(
        "/api/v1/environments",
        headers=admin,
        json={
            "name": "EU prod",
            "app_id": "123",
            "region": "eu",
            "main_production": True,
            "api_key": SECRET_KEY,
        },
    )
    assert created.status_code == 201
    assert "api_key" not in created.json and created.json["api_key_set_at"]
    bad = client.post("/api/v1/environments", headers=admin, json={"name": "x", "app_id": "12a"})
    assert bad.status_code == 422
    assert "numeric" in bad.json["error"]["message"]
    listed = client.get(
        "/api/v1/environments", headers={"Authorization": f"Bearer {api_token('auditor')}"}
    )
    assert [e["name"] for e in listed.json["environments"]] == ["EU prod"]
    assert SECRET_KEY not in listed.get_data(as_text=True)


def test_keys_rotate_reencrypts_under_the_new_key(app, auth, login_as, monkeypatch, desk_env):
    from webapp import create_app
    from webapp.cli import keys_rotate

    login_as("admin")
    auth.post("/environments/new", _form())
    old_key = desk_env["DESK_ENCRYPTION_KEYS"]
    new_key = Fernet.generate_key().decode()
    monkeypatch.setenv("DESK_ENCRYPTION_KEYS", f"{new_key},{old_key}")
    rotated_app = create_app({"INSTANCE_PATH": app.instance_path})
    result = rotated_app.test_cli_runner().invoke(keys_rotate)
    assert result.exit_code == 0, result.output
    assert '"environments.api_key_encrypted": 1' in result.output
    [env] = _environments(app)
    # Only the new key is needed from now on: the old one can be retired.
    assert decrypt(env.api_key_encrypted, keys=[new_key]) == SECRET_KEY
    with rotated_app.app_context(), session_scope(write=False) as session:
        assert any(e["action"] == "keys.rotated" for e in audit.iter_entries(session))


def test_test_connection_explains_an_unreadable_key(app, auth, login_as, sandbox):
    login_as("admin")
    auth.post("/environments/new", _form(sandbox))
    [env] = _environments(app)
    with app.app_context(), session_scope(write=True) as session:
        session.get(Environment, env.id).api_key_encrypted = "gAAAAA-not-a-token"
        session.commit()
    page = auth.post(
        f"/environments/{env.id}/test", form_page="/environments", follow_redirects=True
    ).get_data(as_text=True)
    assert "cannot be decrypted" in page
