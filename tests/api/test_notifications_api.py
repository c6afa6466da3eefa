"""GET /api/v1/notifications exactly as DESIGN.md fixes it, and POST …/{id}/read."""

from __future__ import annotations

from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.accounts.tokens import user_for_api_token
from webapp.db import session_scope
from webapp.models import Notification, NotificationKind, User

CSV = "identity\r\nada.lovelace@example.com\r\ngrace.hopper@example.org\r\n"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def owner_email(app, token: str) -> str:
    with app.app_context(), session_scope(write=False) as session:
        return user_for_api_token(session, token)[0].email


def add_note(app, email: str, kind=NotificationKind.CORRECTION_AWAITS_APPROVAL, **values) -> int:
    with app.app_context(), session_scope(write=True) as session:
        user = session.exec(select(User).where(User.email == email)).one()
        row = Notification(user_id=user.id, kind=kind.value, text="Correction #7 awaits", **values)
        session.add(row)
        session.commit()
        return row.id


def test_the_callers_notifications_newest_first_in_designs_shape(
    app, client, api_token, make_user, upload
):
    token = api_token("officer")
    batch_id = upload(make_user("officer"), CSV)
    later = add_note(app, owner_email(app, token), correction_id=None)

    response = client.get("/api/v1/notifications", headers=bearer(token))

    assert response.status_code == 200
    items = response.json["items"]
    assert [item["id"] for item in items][0] == later
    assert set(items[0]) == {"id", "kind", "text", "created_at", "read"}  # no batch: no batch_id
    assert set(items[1]) == {"id", "kind", "batch_id", "text", "created_at", "read"}
    assert items[1]["kind"] == "batch_awaits_approval"
    assert items[1]["batch_id"] == batch_id
    assert items[1]["read"] is False
    assert items[1]["created_at"].endswith("+00:00")
    assert "ada.lovelace" not in response.get_data(as_text=True)


def test_any_role_with_a_read_token_sees_only_their_own(app, client, api_token, make_user, upload):
    auditor = api_token("auditor")  # auditors' tokens are read-only
    upload(make_user("officer"), CSV)  # notifies officers and admins, not auditors

    response = client.get("/api/v1/notifications", headers=bearer(auditor))

    assert response.status_code == 200
    assert response.json == {"items": []}
    assert client.get("/api/v1/notifications").status_code == 401


def test_mark_read_and_another_persons_is_a_404(app, client, api_token, make_user):
    token, other = api_token("officer"), api_token("officer")
    note = add_note(app, owner_email(app, token))

    response = client.post(f"/api/v1/notifications/{note}/read", headers=bearer(token))
    assert response.status_code == 200
    assert response.json["read"] is True
    assert client.get("/api/v1/notifications", headers=bearer(token)).json["items"][0]["read"]

    refused = client.post(f"/api/v1/notifications/{note}/read", headers=bearer(other))
    assert refused.status_code == 404
    assert refused.json["error"]["code"] == "not_found"
    for bad in ("0", "abc", "99999999999"):
        response = client.post(f"/api/v1/notifications/{bad}/read", headers=bearer(token))
        assert response.status_code == 404, bad


def test_the_document_describes_both_operations(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    assert paths["/notifications"]["get"]["operationId"] == "list_notifications"
    assert "post" in paths["/notifications/{notification_id}/read"]
