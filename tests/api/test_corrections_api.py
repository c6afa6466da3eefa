"""POST /api/v1/corrections/* against the sandbox, and the history endpoints."""

from __future__ import annotations

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import deleted_subject, make_env, sandbox_data


@pytest.fixture
def officer(api_token):
    return {"Authorization": f"Bearer {api_token('officer')}"}


@pytest.fixture
def auditor(api_token):
    return {"Authorization": f"Bearer {api_token('auditor')}"}


def users(sandbox) -> dict:
    return {user["identity"]: user for user in sandbox_data(sandbox).get("users", [])}


PROPS = {"properties": {"plan": "pro"}}
CASES = [
    ("identify", {"user_id": "12", "identity": "ann"}, "identify", 1),
    ("user-properties", {"identity": "ann", **PROPS}, "user_properties", 1),
    ("user-properties", {"users": [{"identity": "ann", **PROPS}]}, "user_properties_bulk", 1),
    ("account-properties", {"account_id": "acme", **PROPS}, "account_properties", 1),
    (
        "account-properties",
        {"accounts": [{"account_id": "a", **PROPS}]},
        "account_properties_bulk",
        1,
    ),
    ("link-account", {"identity": "ann", "account_id": "acme"}, "link_account", 1),
    ("events", {"event": "Refund", "identity": "ann", **PROPS}, "track", 1),
    (
        "events",
        {"event": "Up", "identity": "ann", "user_properties": {"p": 1}},
        "track_with_user_properties",
        2,
    ),
    ("events", {"events": [{"event": "Refund", "user_id": 5}]}, "track_bulk", 1),
]


@pytest.mark.parametrize(("path", "body", "operation", "calls"), CASES)
def test_each_operation_returns_201_with_the_outcome(
    client, sandbox, heap_env, officer, path, body, operation, calls
):
    response = client.post(
        f"/api/v1/corrections/{path}", json={"environment_id": heap_env, **body}, headers=officer
    )
    assert response.status_code == 201, response.json
    data = response.json
    assert data["operation"] == operation and data["state"] == "succeeded"
    assert data["heap_status"] == 200 and isinstance(data["id"], int)
    assert [c["state"] for c in data["calls"]] == ["succeeded"] * calls
    assert "body" not in data["calls"][0]
    assert len(sandbox.state.request_paths()) == calls


def test_the_effect_is_in_the_sandbox(client, sandbox, heap_env, officer):
    body = {"environment_id": heap_env, "identity": "ann", "properties": {"plan": "pro"}}
    client.post("/api/v1/corrections/user-properties", json=body, headers=officer)
    assert users(sandbox)["ann"]["properties"] == {"plan": "pro"}


def test_bulk_of_2500_users_in_three_requests(client, sandbox, heap_env, officer):
    body = {
        "environment_id": heap_env,
        "users": [{"identity": f"u{n}", "properties": {"n": n}} for n in range(2500)],
    }
    response = client.post("/api/v1/corrections/user-properties", json=body, headers=officer)
    assert response.status_code == 201
    assert [c["items"] for c in response.json["calls"]] == [1000, 1000, 500]
    assert len(sandbox.state.request_paths()) == 3


@pytest.mark.parametrize(
    ("path", "body", "status", "code", "message"),
    [
        ("identify", {"user_id": "1", "identity": "null"}, 422, "invalid", "merge unrelated"),
        ("identify", {"user_id": 2**53, "identity": "a"}, 422, "invalid", "2^53-1"),
        ("user-properties", {"identity": "a", "properties": {"iD": 1}}, 422, "invalid", "“id”"),
        ("events", {"event": "E"}, 422, "invalid", "exactly one of identity or user_id"),
        ("identify", {"user_id": "1", "identity": "a", "colour": "red"}, 422, "invalid", "colour"),
    ],
)
def test_rules_answer_422_and_store_nothing(
    client, sandbox, heap_env, officer, auditor, path, body, status, code, message
):
    response = client.post(
        f"/api/v1/corrections/{path}", json={"environment_id": heap_env, **body}, headers=officer
    )
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert message in response.json["error"]["message"]
    assert sandbox.state.request_paths() == []
    assert client.get("/api/v1/corrections", headers=auditor).json["corrections"] == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"identity": "a", "properties": {"a": 1}}, "'environment_id' must be"),
        ({"environment_id": "1", "identity": "a", "properties": {"a": 1}}, "'environment_id'"),
        ({"environment_id": 1, "override_reason": 5}, "'override_reason' must be a string"),
    ],
)
def test_options_are_checked(client, heap_env, officer, body, message):
    response = client.post("/api/v1/corrections/user-properties", json=body, headers=officer)
    assert response.status_code == 422
    assert message in response.json["error"]["message"]


def test_an_environment_that_does_not_exist_is_404(client, heap_env, officer):
    body = {"environment_id": 999, "identity": "a", "properties": {"a": 1}}
    response = client.post("/api/v1/corrections/user-properties", json=body, headers=officer)
    assert response.status_code == 404 and response.json["error"]["code"] == "not_found"
    assert "Choose a Heap" in response.json["error"]["message"]


def test_an_app_id_in_the_body_must_be_the_environments(client, sandbox, heap_env, officer):
    body = {"environment_id": heap_env, "identity": "ann", "properties": {"a": 1}}
    right = client.post(
        "/api/v1/corrections/user-properties",
        json={**body, "app_id": sandbox.app_id},
        headers=officer,
    )
    assert right.status_code == 201
    wrong = client.post(
        "/api/v1/corrections/user-properties", json={**body, "app_id": "42"}, headers=officer
    )
    # The environment's app_id decides, not the body's form: a conflict (409).
    assert wrong.status_code == 409 and "leave it out" in wrong.json["error"]["message"]


def test_link_account_without_property(app, client, sandbox, paced, officer):
    env_id = make_env(app, sandbox, name="Plain", account_property=None)
    body = {"environment_id": env_id, "identity": "ann", "account_id": "acme"}
    response = client.post("/api/v1/corrections/link-account", json=body, headers=officer)
    assert response.status_code == 409  # the environment's setting, not the body, is missing
    assert "no Account ID property configured" in response.json["error"]["message"]


def test_guard_answers_409_until_an_override_reason_is_given(
    app, client, sandbox, heap_env, officer
):
    deleted_subject(app, heap_env, "user_id", "77")
    body = {"environment_id": heap_env, "event": "Visit", "user_id": "77"}
    refused = client.post("/api/v1/corrections/events", json=body, headers=officer)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "reingestion_guard"
    assert sandbox.state.request_paths() == []
    body["override_reason"] = "Legal hold, ticket 9"
    sent = client.post("/api/v1/corrections/events", json=body, headers=officer)
    assert sent.status_code == 201
    assert sent.json["override_reason"] == "Legal hold, ticket 9"
    assert sent.json["guarded_count"] == 1


def test_identify_warnings_need_confirm_warnings(client, sandbox, heap_env, officer):
    first = {"environment_id": heap_env, "user_id": "3", "identity": "one"}
    assert (
        client.post("/api/v1/corrections/identify", json=first, headers=officer).status_code == 201
    )
    second = {**first, "identity": "two"}
    refused = client.post("/api/v1/corrections/identify", json=second, headers=officer)
    assert refused.status_code == 409
    assert refused.json["error"]["code"] == "confirmation_required"
    sent = client.post(
        "/api/v1/corrections/identify", json={**second, "confirm_warnings": True}, headers=officer
    )
    assert sent.status_code == 201 and sent.json["warnings_confirmed"] is True
    assert sent.json["warnings"][0]["code"] == "identify_user_id_taken"


def test_email_warning_comes_back_with_the_outcome(client, heap_env, officer):
    body = {"environment_id": heap_env, "identity": "ann", "properties": {"EMAIL": "a@b.org"}}
    response = client.post("/api/v1/corrections/user-properties", json=body, headers=officer)
    assert response.status_code == 201
    assert "lower-case 'email'" in response.json["warnings"][0]["message"]


def test_preview_sends_nothing(client, sandbox, heap_env, officer, auditor):
    body = {"environment_id": heap_env, "event": "E", "identity": "ann", "preview": True}
    response = client.post("/api/v1/corrections/events", json=body, headers=officer)
    assert response.status_code == 200
    [call] = response.json["calls"]
    assert call["url"] == f"{sandbox.url}/api/track"
    assert call["body"]["identity"] == "ann" and call["body"]["idempotency_key"]
    assert sandbox.state.request_paths() == []
    assert client.get("/api/v1/corrections", headers=auditor).json["corrections"] == []


def test_heap_failure_is_a_recorded_outcome_and_can_be_retried(
    client, sandbox, heap_env, officer, sandbox_as_heap
):
    sandbox.add_faults({"kind": "400", "path": "/api/v1/identify", "message": "Rejected"})
    body = {"environment_id": heap_env, "user_id": "1", "identity": "ann"}
    response = client.post("/api/v1/corrections/identify", json=body, headers=officer)
    assert response.status_code == 201
    assert response.json["state"] == "failed" and response.json["heap_status"] == 400
    assert "Rejected" in response.json["message"]
    retried = client.post(f"/api/v1/corrections/{response.json['id']}/retry", headers=officer)
    assert retried.status_code == 200 and retried.json["state"] == "succeeded"
    again = client.post(f"/api/v1/corrections/{response.json['id']}/retry", headers=officer)
    assert again.status_code == 409 and again.json["error"]["code"] == "not_retryable"


def test_list_and_detail_values_by_role(client, heap_env, officer, auditor):
    body = {"environment_id": heap_env, "identity": "ann@example.org", "properties": {"a": "1"}}
    created = client.post("/api/v1/corrections/user-properties", json=body, headers=officer).json
    listed = client.get("/api/v1/corrections?operation=user_properties", headers=auditor).json
    assert [c["id"] for c in listed["corrections"]] == [created["id"]]
    assert listed["next_before"] is None
    as_auditor = client.get(f"/api/v1/corrections/{created['id']}", headers=auditor).json
    assert "body" not in as_auditor["calls"][0]
    assert "ann@example.org" not in str(as_auditor)
    assert len(as_auditor["subject_fingerprints"]) == 1
    as_officer = client.get(f"/api/v1/corrections/{created['id']}", headers=officer).json
    assert as_officer["calls"][0]["body"]["identity"] == "ann@example.org"


@pytest.mark.parametrize(
    ("query", "message"),
    [("operation=nope", "Unknown operation"), ("since=yesterday", "'since' must be a date")],
)
def test_list_filters_are_checked(client, auditor, query, message):
    response = client.get(f"/api/v1/corrections?{query}", headers=auditor)
    assert response.status_code == 422 and message in response.json["error"]["message"]


def test_auditors_cannot_write_and_unknown_ids_are_404(client, heap_env, auditor, officer):
    body = {"environment_id": heap_env, "user_id": "1", "identity": "a"}
    assert (
        client.post("/api/v1/corrections/identify", json=body, headers=auditor).status_code == 403
    )
    assert client.post("/api/v1/corrections/identify", json=body).status_code == 401
    assert client.get("/api/v1/corrections/999", headers=auditor).status_code == 404
    assert client.post("/api/v1/corrections/999/retry", headers=officer).status_code == 404


def test_openapi_describes_every_correction_path(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for family in ("identify", "user-properties", "account-properties", "link-account", "events"):
        assert "post" in paths[f"/corrections/{family}"]
    assert "get" in paths["/corrections"] and "get" in paths["/corrections/{correction_id}"]
