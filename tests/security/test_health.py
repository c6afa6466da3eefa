"""Issue 12, finding 12: an unauthenticated GET /api/v1/health showed the server's hostname and
process id (the lease holder), the database dialect and the migration revision.

Now anyone gets exactly {"status": "ok" | "degraded"}; an admin's token gets the details.
"""

from __future__ import annotations

import json

import pytest

from webapp import migrations
from webapp.db import session_scope
from webapp.lease import acquire_lease


@pytest.fixture
def leased(app):
    with app.app_context(), session_scope(write=True) as session:
        acquire_lease(session, holder="web-7.example.internal:4242:abc", ttl_seconds=60)


def test_anonymous_callers_get_the_status_only(client, leased, make_user):
    make_user("admin")
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}
    text = json.dumps(answer.json)
    assert "web-7" not in text and "4242" not in text and "sqlite" not in text


@pytest.mark.parametrize("role", ["auditor", "officer"])
def test_other_roles_get_the_status_only(client, api_token, leased, role):
    answer = client.get("/api/v1/health", headers={"Authorization": f"Bearer {api_token(role)}"})
    assert answer.json == {"status": "ok"}


def test_a_bad_token_gets_the_status_only(client, leased, make_user):
    make_user("admin")
    answer = client.get("/api/v1/health", headers={"Authorization": "Bearer desk_nope"})
    assert answer.status_code == 200 and answer.json == {"status": "ok"}


def test_an_admins_token_gets_the_details(client, api_token, leased):
    answer = client.get("/api/v1/health", headers={"Authorization": f"Bearer {api_token('admin')}"})
    body = answer.json
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["database"]["at_head"]
    assert body["database"]["dialect"] in {"sqlite", "postgresql"}
    assert body["scheduler"]["lease_holder"] == "web-7.example.internal:4242:abc"


def test_degraded_is_all_an_anonymous_caller_learns(client, monkeypatch, make_user):
    make_user("admin")
    monkeypatch.setattr(migrations, "head_revisions", lambda: {"a-later-revision"})
    answer = client.get("/api/v1/health")
    assert answer.status_code == 200 and answer.json == {"status": "degraded"}


def test_an_unusable_database_is_degraded_503_without_details(client, monkeypatch, make_user):
    make_user("admin")

    def broken(_engine):
        raise RuntimeError("database at db-internal.example:5432 refused the connection")

    monkeypatch.setattr(migrations, "current_revisions", broken)
    answer = client.get("/api/v1/health")
    assert answer.status_code == 503 and answer.json == {"status": "degraded"}
