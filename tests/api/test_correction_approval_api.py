"""Four-eyes for corrections over the API: 202 awaiting approval, approve, reject, statuses."""

from __future__ import annotations

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import sandbox_data

from webapp import tool_policy
from webapp.db import session_scope
from webapp.models import Environment

LIMIT = 1


@pytest.fixture
def guarded_env(app, heap_env) -> int:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, heap_env)
        changes = {"corrections_four_eyes_above": LIMIT}
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)
    return heap_env


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def author(api_token):
    return bearer(api_token("officer"))


@pytest.fixture
def second(api_token):
    return bearer(api_token("officer"))


def body(env_id: int, count: int = LIMIT + 1) -> dict:
    users = [
        {"identity": f"p{n}@example.org", "properties": {"tier": "gold"}} for n in range(count)
    ]
    return {"environment_id": env_id, "users": users}


def requested(client, env_id: int, headers: dict) -> dict:
    response = client.post(
        "/api/v1/corrections/user-properties", json=body(env_id), headers=headers
    )
    assert response.status_code == 202, response.json
    return response.json


def test_above_the_limit_the_answer_is_202_awaiting_approval(client, sandbox, guarded_env, author):
    data = requested(client, guarded_env, author)
    assert data["state"] == "awaiting_approval"
    assert data["approval_required"] is True
    assert (data["decided_by"], data["decided_at"], data["decision_reason"]) == (None, None, None)
    assert [call["state"] for call in data["calls"]] == ["pending"]
    assert sandbox.state.request_paths() == []


def test_at_the_limit_the_answer_is_201_as_before(client, sandbox, guarded_env, author):
    response = client.post(
        "/api/v1/corrections/user-properties", json=body(guarded_env, LIMIT), headers=author
    )
    assert response.status_code == 201
    assert response.json["state"] == "succeeded" and response.json["approval_required"] is False


def test_a_second_officer_approves_with_200_and_the_outcome(
    client, sandbox, guarded_env, author, second
):
    data = requested(client, guarded_env, author)
    response = client.post(f"/api/v1/corrections/{data['id']}/approve", headers=second)
    assert response.status_code == 200, response.json
    approved = response.json
    assert approved["state"] == "succeeded" and approved["decided_by"].startswith("officer")
    assert [call["state"] for call in approved["calls"]] == ["succeeded"]
    identities = {user["identity"] for user in sandbox_data(sandbox)["users"]}
    assert identities == {"p0@example.org", "p1@example.org"}


def test_the_author_gets_403(client, sandbox, guarded_env, author):
    data = requested(client, guarded_env, author)
    response = client.post(f"/api/v1/corrections/{data['id']}/approve", headers=author)
    assert response.status_code == 403
    assert response.json["error"]["code"] == "self_approval"
    assert "author of this correction" in response.json["error"]["message"]
    assert sandbox.state.request_paths() == []


def test_an_auditor_gets_403(client, guarded_env, author, api_token):
    data = requested(client, guarded_env, author)
    auditor = bearer(api_token("auditor"))
    for step in ("approve", "reject"):
        response = client.post(
            f"/api/v1/corrections/{data['id']}/{step}", json={"reason": "no"}, headers=auditor
        )
        assert response.status_code == 403


def test_approving_twice_is_409(client, guarded_env, author, second):
    data = requested(client, guarded_env, author)
    client.post(f"/api/v1/corrections/{data['id']}/approve", headers=second)
    response = client.post(f"/api/v1/corrections/{data['id']}/approve", headers=second)
    assert response.status_code == 409
    assert response.json["error"]["code"] == "wrong_state"


def test_reject_with_a_reason_sends_nothing(client, sandbox, guarded_env, author, second):
    data = requested(client, guarded_env, author)
    response = client.post(
        f"/api/v1/corrections/{data['id']}/reject", json={"reason": "wrong tier"}, headers=second
    )
    assert response.status_code == 200
    assert response.json["state"] == "rejected"
    assert response.json["decision_reason"] == "wrong tier"
    assert sandbox.state.request_paths() == []
    again = client.post(f"/api/v1/corrections/{data['id']}/approve", headers=second)
    assert again.status_code == 409


@pytest.mark.parametrize(
    "sent", [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": 5}, {"reason": "x" * 2001}]
)
def test_reject_without_a_reason_is_400(client, guarded_env, author, second, sent):
    data = requested(client, guarded_env, author)
    response = client.post(f"/api/v1/corrections/{data['id']}/reject", json=sent, headers=second)
    assert response.status_code == 400, response.json
    assert "reason" in response.json["error"]["message"]
    detail = client.get(f"/api/v1/corrections/{data['id']}", headers=second).json
    assert detail["state"] == "awaiting_approval"


def test_unknown_correction_is_404(client, second):
    assert client.post("/api/v1/corrections/999/approve", headers=second).status_code == 404
    response = client.post("/api/v1/corrections/999/reject", json={"reason": "x"}, headers=second)
    assert response.status_code == 404


def test_the_list_filters_by_state(client, guarded_env, author, second):
    waiting = requested(client, guarded_env, author)
    client.post("/api/v1/corrections/user-properties", json=body(guarded_env, 1), headers=author)
    listed = client.get("/api/v1/corrections?state=awaiting_approval", headers=second).json
    assert [row["id"] for row in listed["corrections"]] == [waiting["id"]]
    assert listed["corrections"][0]["approval_required"] is True
    bad = client.get("/api/v1/corrections?state=asleep", headers=second)
    assert bad.status_code == 422


def test_the_document_names_the_new_statuses(client):
    document = client.get("/api/v1/openapi.json").json
    paths = document["paths"]
    assert "202" in paths["/corrections/user-properties"]["post"]["responses"]
    approve = paths["/corrections/{correction_id}/approve"]["post"]["responses"]
    assert {"200", "403", "404", "409"} <= set(approve)
    reject = paths["/corrections/{correction_id}/reject"]["post"]
    assert {"200", "400", "403", "404", "409"} <= set(reject["responses"])
    schema = reject["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert document["components"]["schemas"][schema.split("/")[-1]]["required"] == ["reason"]
    states = document["components"]["schemas"]["CorrectionState"]["enum"]
    assert {"awaiting_approval", "rejected"} <= set(states)
