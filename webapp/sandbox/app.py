"""The sandbox WSGI app: Heap's ingestion and user deletion endpoints over in-memory state.

Error bodies vary by endpoint, as on Heap's own pages, so the client must read every shape:
  * ingestion 400s: text/plain; add_account_properties success: text/plain `OK`
  * auth_token 401 and user_deletion 401: `{"err": {"message": ...}}`
  * user_deletion 400: `{"error": "..."}` (top-level string)
  * deletion_status 401 and 404: `{"message": "..."}`
"""

from __future__ import annotations

import math

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from webapp.sandbox import rules
from webapp.sandbox.admin import admin
from webapp.sandbox.middleware import MAX_BODY, SandboxMiddleware
from webapp.sandbox.rules import ContractViolation
from webapp.sandbox.state import SandboxState

heap_api = Blueprint("heap_api", __name__)


def create_sandbox_app(state: SandboxState) -> Flask:
    """Return the sandbox Flask app serving `state` (nothing starts until a server runs it)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["heap_sandbox"] = state
    app.register_blueprint(heap_api)
    app.register_blueprint(admin)
    app.wsgi_app = SandboxMiddleware(app.wsgi_app, state)  # type: ignore[method-assign]
    return app


def _state() -> SandboxState:
    return current_app.extensions["heap_sandbox"]


def _body() -> dict:
    return rules.parse_json(request.get_data(cache=False))


def _note(text: str) -> None:
    """Say in the request log what Heap would have done silently."""
    notes = request.environ.get("sandbox.notes")
    if notes is not None:
        notes.append(text)


@heap_api.errorhandler(ContractViolation)
def contract_violation(exc: ContractViolation) -> Response:
    """Answer an ingestion rule violation the way Heap does: 400 text/plain."""
    return Response(exc.message, status=400, mimetype="text/plain")


def _too_many(app_id: str, who: str) -> Response | None:
    """Return a 429 if `who` is over 30 requests / 30 s on this app_id, else None."""
    state = _state()
    wait = state.rate_limited(app_id, who)
    if wait is None:
        return None
    config = state.config
    response = Response(
        f"Too Many Requests: at most {config.rate_limit_requests} requests per "
        f"{config.rate_limit_window:g} seconds per identity",
        status=429,
        mimetype="text/plain",
    )
    response.headers["Retry-After"] = str(max(1, math.ceil(wait)))
    return response


def _who(item: dict) -> str:
    if item.get("identity") is not None:
        return f"identity:{item['identity']}"
    return f"user_id:{item['user_id']}"


# ----- ingestion --------------------------------------------------------------------------
@heap_api.post("/api/track")
def track() -> Response:
    """Track one event (`event`) or a bulk of up to 1000 (`events`)."""
    body = _body()
    app_id = rules.app_id(body)
    events = rules.track_events(body)
    state = _state()
    with state.lock:
        if "events" not in body:
            limited = _too_many(app_id, _who(events[0]))
            if limited is not None:
                return limited
        environment = state.environment(app_id)
        for event in events:
            note = environment.track(event, state.clock())
            if note:
                _note(note)
    return Response(b"", status=200)


@heap_api.post("/api/v1/identify")
def identify() -> Response:
    """Link an anonymous user_id to an identity; integrity rules ignore the call silently."""
    body = _body()
    app_id = rules.app_id(body)
    user_id, identity = rules.identify_args(body)
    state = _state()
    with state.lock:
        limited = _too_many(app_id, f"identity:{identity}")
        if limited is not None:
            return limited
        note = state.environment(app_id).identify(user_id, identity, state.clock())
        if note:
            _note(note)
    return jsonify({})


@heap_api.post("/api/add_user_properties")
def add_user_properties() -> Response:
    """Set properties of one identity, or of up to 1000 (`users`)."""
    body = _body()
    app_id = rules.app_id(body)
    items = rules.user_property_items(body)
    state = _state()
    with state.lock:
        if "users" not in body:
            limited = _too_many(app_id, f"identity:{items[0][0]}")
            if limited is not None:
                return limited
        environment = state.environment(app_id)
        for identity, properties in items:
            environment.add_user_properties(identity, properties)
    return jsonify({})


@heap_api.post("/api/add_account_properties")
def add_account_properties() -> Response:
    """Set properties of one account, or of up to 1000 (`accounts`); answers `OK`."""
    body = _body()
    app_id = rules.app_id(body)
    items = rules.account_property_items(body)
    state = _state()
    with state.lock:
        environment = state.environment(app_id)
        for account_id, properties in items:
            environment.add_account_properties(account_id, properties)
    return Response("OK", status=200, mimetype="text/plain")


# ----- user deletion API -------------------------------------------------------------------
@heap_api.post("/api/public/v0/auth_token")
def auth_token() -> tuple[Response, int]:
    """Issue a token for the right app_id:api_key pair (HTTP Basic)."""
    auth = request.authorization
    token = None
    if auth is not None and auth.type == "basic":
        token = _state().issue_token(auth.username or "", auth.password or "")
    if token is None:
        return jsonify(err={"message": "Invalid app_id or api_key"}), 401
    return jsonify(access_token=token), 200


def _bearer_app_id() -> str | None:
    """Return the app_id of the request's live Bearer token, or None."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return _state().token_app_id(token.strip())


@heap_api.post("/api/public/v0/user_deletion")
def user_deletion() -> tuple[Response, int]:
    """Create a deletion request for up to 10,000 users."""
    app_id = _bearer_app_id()
    if app_id is None:
        return jsonify(err={"message": "Unauthorized: invalid or expired token"}), 401
    try:
        users = rules.deletion_users(_body())
    except ContractViolation as exc:
        return jsonify(error=exc.message), 400
    record = _state().create_deletion(app_id, users)
    location = (
        f"{request.host_url.rstrip('/')}/api/public/v0/deletion_status/{record.deletion_request_id}"
    )
    return jsonify(
        deletion_request_location=location,
        deletion_request_id=record.deletion_request_id,
        status="pending",
    ), 201


@heap_api.get("/api/public/v0/deletion_status/<deletion_request_id>")
def deletion_status(deletion_request_id: str) -> tuple[Response, int]:
    """Report a deletion request's status: pending, then complete."""
    if _bearer_app_id() is None:
        return jsonify(message="Unauthorized: invalid or expired token"), 401
    record = _state().poll_deletion(deletion_request_id)
    if record is None:
        return jsonify(message="Deletion request not found"), 404
    return jsonify(deletion_request_id=record.deletion_request_id, status=record.status), 200
