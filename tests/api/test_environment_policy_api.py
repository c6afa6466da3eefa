"""GET/PUT /api/v1/environments/{id}/policy, and how the API answers what a policy refuses."""

from __future__ import annotations

import io
import json

import pytest
from batch_fixtures import *  # noqa: F401,F403
from corrections_helpers import make_env as make_sandbox_env
from corrections_helpers import paced  # noqa: F401
from sqlmodel import func, select

from webapp import tool_policy
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Environment

OPERATIONS = ["deletion", "identify", "user_properties", "account_properties"]
OPERATIONS += ["link_account", "track"]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def admin(api_token) -> dict:
    return bearer(api_token("admin"))


@pytest.fixture
def read_token(app, make_user):
    """A read-scoped token for a new account of `role`."""

    def make(role: str) -> dict:
        email = make_user(role)
        with app.app_context(), session_scope(write=True) as session:
            user = accounts.find_user(session, email)
            token = api_tokens.create_api_token(
                session, actor="test", user=user, name="read", scope="read"
            )
        return bearer(token)

    return make


def stored_policy(app, env_id: int) -> dict:
    with app.app_context(), session_scope(write=False) as session:
        return tool_policy.policy_of(session, session.get(Environment, env_id)).as_json()


def policy_changes(app) -> int:
    with app.app_context(), session_scope(write=False) as session:
        query = select(func.count()).where(AuditEntry.action == tool_policy.CHANGED_ACTION)
        return session.exec(query).one()


def test_any_role_reads_the_whole_policy_with_a_read_token(client, make_env, read_token):
    env_id = make_env("Main Production")
    response = client.get(f"/api/v1/environments/{env_id}/policy", headers=read_token("auditor"))
    assert response.status_code == 200, response.json
    body = response.json
    assert set(body) == {
        "operations",
        "corrections_four_eyes_above",
        "max_items",
        "forbidden_property_keys",
        "descriptions",
    }
    assert body["operations"] == dict.fromkeys(OPERATIONS, True)
    assert body["corrections_four_eyes_above"] == 100  # Main Production's default
    assert body["max_items"] == tool_policy.MAX_ITEMS_LIMIT
    assert body["forbidden_property_keys"] == []
    assert body["descriptions"] == tool_policy.DEFAULT_DESCRIPTIONS


def test_an_admin_changes_any_subset_and_gets_the_whole_policy(app, client, make_env, admin):
    env_id = make_env("Main Production")
    changes = {
        "operations": {"track": False},
        "corrections_four_eyes_above": None,
        "forbidden_property_keys": ["email", "ssn_*"],
        "descriptions": {"identify": "Ask the data team first."},
    }
    response = client.put(f"/api/v1/environments/{env_id}/policy", json=changes, headers=admin)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["operations"]["track"] is False and body["operations"]["identify"] is True
    assert body["corrections_four_eyes_above"] is None
    assert body["max_items"] == tool_policy.MAX_ITEMS_LIMIT  # not sent: unchanged
    assert body["forbidden_property_keys"] == ["email", "ssn_*"]
    assert body["descriptions"]["identify"] == "Ask the data team first."
    assert body["descriptions"]["track"] == tool_policy.DEFAULT_DESCRIPTIONS["track"]
    assert stored_policy(app, env_id) == body
    assert client.get(f"/api/v1/environments/{env_id}/policy", headers=admin).json == body
    assert policy_changes(app) == 1


def test_a_whole_number_written_as_a_json_float_is_taken(app, client, make_env, admin):
    env_id = make_env()
    body = {"max_items": 500.0, "corrections_four_eyes_above": 20.0}
    response = client.put(f"/api/v1/environments/{env_id}/policy", json=body, headers=admin)
    assert response.status_code == 200, response.json
    assert (response.json["max_items"], response.json["corrections_four_eyes_above"]) == (500, 20)


def test_an_empty_description_puts_the_desks_own_back(app, client, make_env, admin):
    env_id = make_env()
    url = f"/api/v1/environments/{env_id}/policy"
    client.put(url, json={"descriptions": {"track": "Ours"}}, headers=admin)
    response = client.put(url, json={"descriptions": {"track": ""}}, headers=admin)
    assert response.json["descriptions"]["track"] == tool_policy.DEFAULT_DESCRIPTIONS["track"]


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_only_admins_change_a_policy(app, client, make_env, api_token, role):
    env_id = make_env()
    before = stored_policy(app, env_id)
    response = client.put(
        f"/api/v1/environments/{env_id}/policy",
        json={"operations": {"deletion": False}},
        headers=bearer(api_token(role)),
    )
    assert response.status_code == 403
    assert response.json["error"]["code"] == "forbidden"
    assert stored_policy(app, env_id) == before and policy_changes(app) == 0


def test_a_read_token_cannot_change_a_policy(app, client, make_env, read_token):
    env_id = make_env()
    response = client.put(
        f"/api/v1/environments/{env_id}/policy",
        json={"max_items": 10},
        headers=read_token("admin"),
    )
    assert response.status_code == 403
    assert stored_policy(app, env_id)["max_items"] == tool_policy.MAX_ITEMS_LIMIT


def test_without_a_token_it_is_401(client, make_env, make_user):
    make_user("admin")  # the desk is set up
    env_id = make_env()
    assert client.get(f"/api/v1/environments/{env_id}/policy").status_code == 401
    assert client.put(f"/api/v1/environments/{env_id}/policy", json={}).status_code == 401


@pytest.mark.parametrize("method", ["get", "put"])
@pytest.mark.parametrize("env_id", [999, 0, 2**31, "x"])
def test_an_unknown_environment_is_404(client, admin, method, env_id):
    response = getattr(client, method)(
        f"/api/v1/environments/{env_id}/policy", json={}, headers=admin
    )
    assert response.status_code == 404
    assert response.json["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"max_item": 5}, 400, "Unknown field(s): max_item."),
        ({"operations": {"track": False}, "colour": "red"}, 400, "Unknown field(s): colour."),
        ({"max_items": 0}, 422, "“max_items” must be a whole number from 1 to 50,000."),
        ({"max_items": "5"}, 422, "“max_items” must be a whole number from 1 to 50,000."),
        ({"max_items": True}, 422, "“max_items” must be a whole number"),
        ({"max_items": 2.5}, 422, "“max_items” must be a whole number"),
        ({"corrections_four_eyes_above": -1}, 422, "“corrections_four_eyes_above” must be"),
        ({"operations": {"erase": False}}, 422, "Unknown operation erase"),
        ({"operations": {"track": "no"}}, 422, "Operation “track” must be true or false."),
        ({"operations": ["track"]}, 422, "“operations” must be an object"),
        ({"forbidden_property_keys": "email"}, 422, "must be a list of names or patterns"),
        ({"forbidden_property_keys": ["  "]}, 422, "must be a non-empty text"),
        ({"forbidden_property_keys": ["a\tb"]}, 422, "contains a control character"),
        # Control characters are refused even where trimming would remove them.
        ({"forbidden_property_keys": ["ssn\x1f"]}, 422, "contains a control character"),
        ({"descriptions": {"track": "\x0b"}}, 422, "contains a control character"),
        ({"descriptions": {"track": "x" * 1001}}, 422, "over 1000 characters"),
        ({"descriptions": {"track": 5}}, 422, "must be a text"),
    ],
)
def test_bad_input_is_refused_with_a_plain_message_and_changes_nothing(
    app, client, make_env, admin, body, status, message
):
    env_id = make_env()
    before = stored_policy(app, env_id)
    # A valid change next to the bad one must not be stored either.
    body = {"descriptions": {"identify": "Changed"}, **body}
    response = client.put(f"/api/v1/environments/{env_id}/policy", json=body, headers=admin)
    assert response.status_code == status, response.json
    assert message in response.json["error"]["message"]
    assert stored_policy(app, env_id) == before and policy_changes(app) == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"data": "max_items=5", "content_type": "application/x-www-form-urlencoded"}, "JSON"),
        ({"data": "{not json", "content_type": "application/json"}, "not valid JSON"),
        ({"json": [1, 2]}, "not a JSON object"),
        ({"json": {"descriptions": {"track": "a\u0000b"}}}, "NUL"),
    ],
)
def test_a_body_that_is_not_a_json_object_is_400(app, client, make_env, admin, kwargs, message):
    env_id = make_env()
    response = client.put(f"/api/v1/environments/{env_id}/policy", headers=admin, **kwargs)
    assert response.status_code == 400, response.json
    assert message in response.json["error"]["message"]
    assert policy_changes(app) == 0


def test_the_document_describes_both_operations(client):
    document = client.get("/api/v1/openapi.json").json
    item = document["paths"]["/environments/{environment_id}/policy"]
    assert item["get"]["operationId"] == "get_environment_policy"
    assert item["put"]["operationId"] == "update_environment_policy"
    assert {"200", "404"} <= set(item["get"]["responses"])
    assert {"200", "400", "403", "404", "422"} <= set(item["put"]["responses"])
    body = item["put"]["requestBody"]["content"]["application/json"]["schema"]
    schemas = document["components"]["schemas"]
    body = schemas[body["$ref"].rsplit("/", 1)[-1]] if "$ref" in body else body
    assert body["additionalProperties"] is False
    assert "required" not in body  # any subset


# ----- what the API answers when a policy refuses ------------------------------------------
@pytest.fixture
def heap_env(app, sandbox, paced) -> int:  # noqa: F811 - paced: the sandbox's clock
    return make_sandbox_env(app, sandbox)


def set_policy(app, env_id: int, changes: dict) -> None:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, env_id)
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)


@pytest.mark.parametrize("preview", [True, False])
def test_a_correction_of_a_disabled_operation_is_403(
    app, client, sandbox, heap_env, api_token, preview
):
    set_policy(app, heap_env, {"operations": {"identify": False}})
    body = {"environment_id": heap_env, "user_id": "12", "identity": "ann", "preview": preview}
    response = client.post(
        "/api/v1/corrections/identify", json=body, headers=bearer(api_token("officer"))
    )
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "operation_disabled"
    assert "disables identify" in response.json["error"]["message"]
    assert sandbox.state.request_paths() == []


def test_a_correction_the_guardrails_refuse_stays_422(app, client, sandbox, heap_env, api_token):
    set_policy(app, heap_env, {"forbidden_property_keys": ["ssn*"]})
    body = {"environment_id": heap_env, "identity": "ann", "properties": {"SSN_last4": "1234"}}
    response = client.post(
        "/api/v1/corrections/user-properties", json=body, headers=bearer(api_token("officer"))
    )
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "policy"
    assert "“SSN_last4”" in response.json["error"]["message"]


def test_an_upload_to_an_environment_without_deletion_is_403(app, client, make_env, api_token):
    env_id = make_env("Main Production")
    set_policy(app, env_id, {"operations": {"deletion": False}})
    response = client.post(
        "/api/v1/batches",
        data={"environment_id": str(env_id), "file": (io.BytesIO(b"email\na@b.org\n"), "l.csv")},
        content_type="multipart/form-data",
        headers=bearer(api_token("officer")),
    )
    assert response.status_code == 403, response.json
    assert response.json["error"]["code"] == "operation_disabled"
    assert "disables deletion" in response.json["error"]["message"]
    with app.app_context(), session_scope(write=False) as session:
        assert session.exec(select(func.count()).select_from(Batch)).one() == 0


def test_the_policy_change_is_audited_without_tokens(app, client, make_env, api_token):
    token = api_token("admin")
    env_id = make_env()
    client.put(
        f"/api/v1/environments/{env_id}/policy",
        json={"max_items": 10},
        headers=bearer(token),
    )
    with app.app_context(), session_scope(write=False) as session:
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == tool_policy.CHANGED_ACTION)
        ).one()
    assert entry.actor.startswith("admin")
    assert json.loads(entry.details)["changed"] == ["max_items"]
    assert token not in entry.details
