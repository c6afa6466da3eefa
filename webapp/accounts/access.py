"""Who may do what, who is signed in, and the HTTP headers every answer carries."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, g, jsonify, redirect, request, url_for
from flask_login import LoginManager, UserMixin, current_user
from sqlalchemy.exc import SQLAlchemyError

from webapp.accounts import sessions as login_sessions
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import close_session, get_session, session_scope
from webapp.forms import unstorable_text
from webapp.models import ApiToken, LoginSession, Role, User, utcnow

# Created unbound; `init_app` binds it to the app (microblog's pattern).
login_manager = LoginManager()

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'"
)
LAST_SEEN_RESOLUTION_SECONDS = 60


@dataclass
class Principal(UserMixin):
    """The signed-in person as the request sees them: plain values, not an ORM object."""

    id: int
    email: str
    role: str
    session_id: int | None = None
    session_token: str | None = None
    via: str = "session"
    # The API token's scope ("read" or "write"); None for a signed-in person.
    scope: str | None = None

    def get_id(self) -> str | None:
        # Flask-Login keeps this in the cookie: the server-side session's token, so that
        # revoking the row ends the session even for a copied cookie (PITFALLS.md #1).
        return self.session_token

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def can(self, needed: Role | str) -> bool:
        """True when the person's role includes `needed`."""
        return self.role_enum.allows(Role(needed))

    @classmethod
    def of(cls, user: User, **extra) -> Principal:
        return cls(id=user.id, email=user.email, role=user.role, **extra)


def is_api_request() -> bool:
    """Requests under /api/ answer in JSON and authenticate by bearer token only."""
    return request.path.startswith("/api/")


@login_manager.user_loader
def load_user(session_token: str) -> Principal | None:
    """Resolve the cookie's session token to a live server-side session."""
    if is_api_request():
        return None  # cookies are not accepted by the API: it has no CSRF protection
    found = login_sessions.load_session(get_session(), session_token)
    if found is None:
        return None
    user, row = found
    # The header's unread-count refresh is not activity: an open tab must not keep a session
    # alive past its idle timeout (a header only a page's own script sends; it can only shorten).
    if request.headers.get("X-Desk-Background") != "1":
        _touch(row, "last_seen_at")
    return Principal.of(user, session_id=row.id, session_token=session_token)


def _touch(row: LoginSession | ApiToken, column: str) -> None:
    """Note activity (idle timeout, token use), at most once a minute per row.

    The write happens after the request's own session is closed (see write_touches): a second
    write transaction opened while the request's one holds SQLite's write lock would deadlock.
    """
    last = getattr(row, column)
    if last is not None and (utcnow() - last).total_seconds() < LAST_SEEN_RESOLUTION_SECONDS:
        return
    g.setdefault("desk_touches", []).append((type(row), row.id, column))


def write_touches(_exc: BaseException | None = None) -> None:
    """Record the activity noted during the request, in a short transaction of its own."""
    touches = g.pop("desk_touches", None)
    if not touches:
        return
    close_session()
    try:
        with session_scope(write=True) as session:
            for model, row_id, column in touches:
                fresh = session.get(model, row_id)
                if fresh is not None:
                    setattr(fresh, column, utcnow())
            session.commit()
    except SQLAlchemyError:
        log.warning("could not record session activity", exc_info=True)


@login_manager.request_loader
def load_api_user(req) -> Principal | None:
    """Bearer tokens authenticate /api/ requests."""
    if not is_api_request():
        return None
    header = req.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return None
    try:
        found = api_tokens.user_for_api_token(get_session(), raw.strip())
    except api_tokens.TokenRefused as refused:
        g.desk_token_refused = str(refused)  # the 401 says why (see unauthorized)
        return None
    if found is None:
        return None
    user, token = found
    _touch(token, "last_used_at")
    return Principal.of(user, via="token", scope=token.scope)


@login_manager.unauthorized_handler
def unauthorized():
    """Pages send people to sign in; the API answers 401."""
    if is_api_request():
        refused = g.get("desk_token_refused")
        if refused:
            abort(401, refused)
        abort(401)
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


READING_METHODS = {"GET", "HEAD", "OPTIONS"}


def require_write_scope():
    """Every API request that may change something needs a token with the `write` scope.

    Checked for the whole API before any view (api/blueprint.py), so no writing route can
    forget it; requests without a valid token go on to the view's own 401.
    """
    if request.method in READING_METHODS or not current_user.is_authenticated:
        return None
    if current_user.scope is not None and current_user.scope != "write":
        abort(
            403,
            f"This API token has the {current_user.scope} scope; {request.method} requests "
            "need a token with the write scope. Create one on the API tokens page.",
        )
    return None


def role_required(role: Role | str):
    """Allow the view to people whose role includes `role`; 401/403 for the rest."""
    needed = Role(role)

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if not current_user.can(needed):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_role = needed
        return wrapped

    return decorator


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths are followed after sign-in."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target:
        return None
    return target


def client_ip() -> str:
    """The caller's address (ProxyFix, when configured, has already rewritten it)."""
    return (request.remote_addr or "unknown")[:64]


def set_security_headers(response):
    """CSP without inline script, no sniffing or framing, and no caching of personal data."""
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if not request.path.startswith("/static/"):
        # Pages and downloads may show personal data: never keep them in any cache.
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
    if current_app.config.get("DESK_HSTS"):
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def refuse_unstorable_text():
    """No query or form field of the desk takes a NUL or a lone surrogate: refuse it before
    any view, with the message JSON bodies get from api.common.json_body (forms.unstorable_text).

    PostgreSQL cannot store NUL in text (a crafted field would otherwise be a 500 there and
    accepted on SQLite), and a lone surrogate cannot be encoded at all.
    """
    for fields in (request.args, request.form):
        for key, value in fields.items(multi=True):
            problem = unstorable_text(key) or unstorable_text(value)
            if problem:
                abort(400, problem)


SETUP_OPEN_ENDPOINTS = {
    "auth.setup",
    "static",
    "api.health",
    "api.openapi",
    "api.docs",
    "api.docs_asset",
}


def require_setup():
    """Until the first admin exists, every page leads to the setup page."""
    if current_app.extensions.get("desk_setup_done"):
        return None
    if accounts.user_count(get_session()):
        current_app.extensions["desk_setup_done"] = True
        return None
    if request.endpoint in SETUP_OPEN_ENDPOINTS:
        return None
    if is_api_request():
        return jsonify(
            error={
                "code": "not_set_up",
                "message": "The desk has no accounts yet: open it in a browser "
                "to create the first admin.",
            }
        ), 503
    return redirect(url_for("auth.setup"))


def init_app(app: Flask) -> None:
    """Bind the login manager and the request hooks."""
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session row does this job
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    app.before_request(refuse_unstorable_text)
    app.before_request(require_setup)
    app.after_request(set_security_headers)
    app.teardown_appcontext(write_touches)
    app.jinja_env.globals["Role"] = Role
