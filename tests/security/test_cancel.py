"""Issue 12, finding 3: any officer could cancel another officer's batch, even after it was
approved, with no reason.

Now the uploader or an admin cancels, with a reason (stored, shown, audited); once a batch is
approved, an admin only. Every refusal changes nothing.
"""

from __future__ import annotations

import html

import pytest
from batch_fixtures import *  # noqa: F401,F403
from workflow_factories import audit_entries, batch_of

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import utcnow


@pytest.fixture
def call(app, api_token):
    """call(role) → a function POSTing to /api/v1 as a new account of that role, and its email."""

    def make(role: str):
        token = api_token(role)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}

        def post(path: str, **kw):
            return client.post(f"/api/v1{path}", headers=headers, **kw)

        return post

    return make


def approve(app, actor: str, batch_id: int) -> None:
    with app.app_context(), session_scope(write=True) as session:
        batches.approve(session, actor=actor, batch_id=batch_id)


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200
    return html.unescape(response.get_data(as_text=True))


def stored(app, batch_id: int) -> tuple:
    """What a refused cancel must leave as it was: the batch's state and cancel fields, and
    that no cancel was audited."""
    batch = batch_of(app, batch_id)
    cancelled = audit_entries(app, "batch.cancelled")
    return batch.state, batch.cancelled_by, batch.cancelled_at, batch.cancel_reason, cancelled


def test_replay_another_officer_cannot_cancel_a_batch(app, client, auth, make_user, upload):
    uploader, other = make_user("officer"), make_user("officer")
    batch_id = upload(uploader, "identity\nada@x.org\n")
    before = stored(app, batch_id)
    auth.login(other)

    path = f"/batches/{batch_id}"
    response = auth.post(f"{path}/cancel", {"reason": "not mine"}, form_page=path)

    refusal = "Only the officer who uploaded this batch, or an admin"
    assert refusal in page(client, response.location)
    assert stored(app, batch_id) == before == ("awaiting_approval", None, None, None, [])
    assert "Cancel batch" not in page(client, path)  # not even offered


def test_replay_an_approved_batch_is_cancelled_by_an_admin_only(app, call, make_user, upload):
    uploader = make_user("officer")
    batch_id = upload(uploader, "identity\nada@x.org\n")
    approve(app, make_user("officer"), batch_id)
    officer, admin = call("officer"), call("admin")
    before = stored(app, batch_id)
    response = officer(f"/batches/{batch_id}/cancel", json={"reason": "oops"})
    assert response.status_code == 403 and response.json["error"]["code"] == "forbidden"
    with (
        app.app_context(),
        session_scope(write=True) as session,
        pytest.raises(batches.NotAllowed, match="only an admin can cancel it now"),
    ):
        batches.cancel(session, actor=uploader, batch_id=batch_id, reason="oops")
    assert stored(app, batch_id) == before and before[0] == "approved"

    response = admin(f"/batches/{batch_id}/cancel", json={"reason": "Wrong ticket"})

    assert (response.status_code, response.json["state"]) == (200, "cancelled")
    assert response.json["cancel_reason"] == "Wrong ticket"
    (entry,) = audit_entries(app, "batch.cancelled")
    assert entry["details"] == {"from_state": "approved", "reason": "Wrong ticket"}


@pytest.mark.parametrize(
    "body",
    [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": "x" * 2001}, {"reason": 5}],
    ids=["no-body", "empty", "blank", "spaces", "too-long", "number"],
)
def test_a_cancel_needs_a_reason(app, call, upload, make_user, body):
    batch_id = upload(make_user("officer"), "identity\nada@x.org\n")
    admin = call("admin")
    before = stored(app, batch_id)
    response = admin(f"/batches/{batch_id}/cancel", **({} if body is None else {"json": body}))
    assert response.status_code == 400
    assert "reason" in response.json["error"]["message"]
    assert stored(app, batch_id) == before


def test_the_uploader_cancels_from_the_page_and_it_shows_who_when_and_why(
    app, client, auth, make_user, upload
):
    uploader = make_user("officer")
    batch_id = upload(uploader, "identity\nada@x.org\n")
    auth.login(uploader)
    path = f"/batches/{batch_id}"
    assert 'id="cancel-reason"' in page(client, path)
    response = auth.post(f"{path}/cancel", {"reason": ""}, form_page=path)
    assert "Give the reason." in page(client, response.location)
    assert batch_of(app, batch_id).state == "awaiting_approval"

    response = auth.post(f"{path}/cancel", {"reason": "Sent to the wrong desk"}, form_page=path)

    shown = page(client, response.location)
    stored = batch_of(app, batch_id)
    assert stored.state == "cancelled" and stored.cancel_reason == "Sent to the wrong desk"
    assert f"Cancelled</strong> by {uploader} on <time datetime=" in shown
    assert f">{stored.cancelled_at:%Y-%m-%d %H:%M} UTC</time>. Nothing was sent" in shown
    assert "Reason: Sent to the wrong desk" in shown
    assert stored.cancelled_at <= utcnow()


def test_the_api_documents_the_reason(client):
    document = client.get("/api/v1/openapi.json").json
    cancel = document["paths"]["/batches/{batch_id}/cancel"]["post"]
    schema = cancel["requestBody"]["content"]["application/json"]["schema"]
    if "$ref" in schema:  # the body's model, declared once under components
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert schema["required"] == ["reason"] and schema["properties"]["reason"]["maxLength"] == 2000
    assert {"400", "403", "409"} <= set(cancel["responses"])
