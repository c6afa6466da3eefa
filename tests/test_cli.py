"""The `desk` command: users, tokens, audit export."""

from __future__ import annotations

import json

from conftest import PASSWORD

from webapp.accounts import users as accounts
from webapp.cli import audit_export, tokens_create, users_create
from webapp.db import session_scope
from webapp.trail import audit


def test_users_create_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(
        users_create,
        ["--email", "Ops@Example.org", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.find_user(session, "ops@example.org").role == "admin"
    again = runner.invoke(
        users_create,
        ["--email", "ops@example.org", "--role", "admin", "--password-stdin"],
        input=PASSWORD + "\n",
    )
    assert again.exit_code != 0 and "already exists" in again.output
    short = runner.invoke(
        users_create,
        ["--email", "x@example.org", "--role", "officer", "--password-stdin"],
        input="short\n",
    )
    assert short.exit_code != 0 and "at least 12" in short.output


def test_tokens_create_prints_a_working_token_once(app, runner, make_user, client):
    email = make_user("auditor")
    result = runner.invoke(tokens_create, ["--email", email])
    token = result.output.strip()
    assert result.exit_code == 0 and token.startswith("desk_")
    response = client.get("/api/v1/audit", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    missing = runner.invoke(tokens_create, ["--email", "nobody@example.org"])
    assert missing.exit_code != 0


def test_audit_export_jsonl_verifies(app, runner, make_user, tmp_path):
    make_user("officer")
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(audit_export, ["--format", "jsonl", "--output", str(out)])
    assert result.exit_code == 0
    entries = [json.loads(line) for line in out.read_text().splitlines()]
    assert entries and audit.verify_entries(entries).ok
