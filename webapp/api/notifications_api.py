"""The caller's notifications over the API (DESIGN.md: GET /notifications)."""

from __future__ import annotations

from datetime import datetime

from flask_login import current_user
from pydantic import BaseModel, ConfigDict, Field

from webapp.accounts.access import role_required
from webapp.api.blueprint import api
from webapp.api.common import checked
from webapp.api.schemas import ErrorBody, Id
from webapp.db import get_session
from webapp.errors import api_error
from webapp.models import Notification, NotificationKind, Role
from webapp.notifications import inbox


class NotificationOut(BaseModel):
    """One notification: batches and corrections by number, never a data subject."""

    model_config = ConfigDict(title="Notification")

    id: int
    kind: NotificationKind
    batch_id: int | None = Field(None, description="The batch it is about; absent if none")
    text: str = Field(description="What happened, in words; names no data subject")
    created_at: datetime
    read: bool


class NotificationList(BaseModel):
    items: list[NotificationOut] = Field(description="Newest first (the latest 100)")


class NotificationPath(BaseModel):
    notification_id: Id


def public(row: Notification) -> dict:
    """A notification as the API shows it (DESIGN.md's shape)."""
    item = {"id": row.id, "kind": row.kind}
    if row.batch_id is not None:
        item["batch_id"] = row.batch_id
    return item | {
        "text": row.text,
        "created_at": row.created_at.isoformat(),
        "read": row.read_at is not None,
    }


@api.get(
    "/notifications",
    operation_id="list_notifications",
    summary="The caller's notifications, newest first. Role: auditor (any role).",
    responses={200: NotificationList},
)
@role_required(Role.AUDITOR)
def notifications_list():
    """The token's owner's notifications, newest first."""
    rows = inbox.notifications_for(get_session(), current_user.id)
    return {"items": [public(row) for row in rows]}


@api.post(
    "/notifications/<notification_id>/read",
    operation_id="mark_notification_read",
    summary="Mark one of the caller's notifications read. Role: auditor (any role).",
    responses={200: NotificationOut, 404: ErrorBody},
)
@role_required(Role.AUDITOR)
@checked(optional_body=True)
def notifications_mark_read(path: NotificationPath):
    """Mark it read (again: no change); another person's is a 404."""
    try:
        row = inbox.mark_read(
            get_session(), user_id=current_user.id, notification_id=path.notification_id
        )
    except inbox.NotificationNotFound as error:
        return api_error(404, str(error))
    return public(row)
