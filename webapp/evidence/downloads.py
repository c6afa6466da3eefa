"""Every evidence download is audited: who took which personal data out of the desk, and when."""

from __future__ import annotations

from functools import wraps

from flask import Response, request
from flask_login import current_user

from webapp.db import session_scope
from webapp.trail import audit


def record_download(*, actor: str, kind: str, target_type: str, target_id: int, masked) -> None:
    """Append `evidence.downloaded` in a short transaction of its own (downloads are GETs)."""
    with session_scope(write=True) as session:
        audit.record(
            session,
            actor=actor,
            action="evidence.downloaded",
            target_type=target_type,
            target_id=target_id,
            details={"kind": kind, "masked": masked},
        )
        session.commit()


def audited_download(kind: str, target_type: str):
    """Audit a download view's successful answers (errors and redirects are not downloads)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            response = view(*args, **kwargs)
            if isinstance(response, Response) and response.status_code == 200:
                record_download(
                    actor=current_user.email,
                    kind=kind,
                    target_type=target_type,
                    target_id=kwargs[f"{target_type}_id"],
                    masked=request.args.get("masked") or None,
                )
            return response

        return wrapped

    return decorator
