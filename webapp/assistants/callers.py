"""Who is calling: a desk API token turned into the person it acts for, as the REST API does."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError

from webapp.accounts import tokens as api_tokens
from webapp.accounts.access import LAST_SEEN_RESOLUTION_SECONDS, Principal
from webapp.db import session_scope
from webapp.models import ApiToken, Role, utcnow

log = logging.getLogger(__name__)

SEND_A_BEARER = (
    "Send a Deletion Desk API token as `Authorization: Bearer desk_…` (create one on the API "
    "tokens page or with `desk tokens create`)."
)
NOT_KNOWN = "This API token is not one the desk knows, or its account is disabled."


class Unauthenticated(Exception):
    """No usable token; the message is for its holder."""


@dataclass(frozen=True)
class Access:
    """What a tool or resource asks of its caller: a least role, and the write scope or not."""

    role: Role = Role.AUDITOR
    writes: bool = False


def refusal(caller: Principal, name: str, access: Access) -> str | None:
    """Why `caller` may not use `name` (a tool or resource), or None when they may."""
    if not caller.can(access.role):
        return (
            f"{name} needs an {access.role.value} or admin account; yours is an {caller.role}. "
            "Auditors read (lookups, batches, deadlines, the audit trail) and change nothing."
        )
    if access.writes and caller.scope != "write":
        return (
            f"This API token has the {caller.scope} scope; {name} changes the desk and needs a "
            "token with the write scope. Create one on the API tokens page."
        )
    return None


def caller_for_token(app: Flask, raw: str | None) -> Principal:
    """The person behind a bearer token, or Unauthenticated saying why not (expired, revoked)."""
    raw = (raw or "").strip()
    if not raw:
        raise Unauthenticated(SEND_A_BEARER)
    with app.app_context():
        with session_scope(write=False) as session:
            try:
                found = api_tokens.user_for_api_token(session, raw)
            except api_tokens.TokenRefused as refused:
                raise Unauthenticated(str(refused)) from None
            if found is None:
                raise Unauthenticated(NOT_KNOWN)
            user, token = found
            caller = Principal.of(user, via="token", scope=token.scope)
            last = token.last_used_at
        if last is None or (utcnow() - last).total_seconds() >= LAST_SEEN_RESOLUTION_SECONDS:
            _note_use(token.id)
    return caller


def _note_use(token_id: int) -> None:
    """Record the token's use (the API tokens page shows it), at most once a minute."""
    try:
        with session_scope(write=True) as session:
            row = session.get(ApiToken, token_id)
            if row is not None:
                row.last_used_at = utcnow()
                session.commit()
    except SQLAlchemyError:
        log.warning("could not record an API token's use", exc_info=True)


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    scheme, _, raw = (header or "").partition(" ")
    return raw.strip() or None if scheme.lower() == "bearer" else None
