"""Admin endpoints under /_sandbox/ for tests and demos (no auth: bind to loopback)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template, request

from webapp.sandbox.faults import parse_faults
from webapp.sandbox.state import SandboxState

admin = Blueprint("sandbox_admin", __name__, url_prefix="/_sandbox")


def _state() -> SandboxState:
    return current_app.extensions["heap_sandbox"]


def _json_body() -> Any:
    """Return the JSON body, {} when empty; raise ValueError when it is not JSON."""
    if not request.get_data(cache=True):
        return {}
    data = request.get_json(silent=True)
    if data is None:
        raise ValueError("the body must be JSON")
    return data


@admin.errorhandler(ValueError)
def bad_admin_request(exc: ValueError) -> tuple[Response, int]:
    """Answer a malformed admin call with its reason."""
    return jsonify(error=str(exc)), 400


@admin.get("/")
def inspect() -> str:
    """Render the inspection page: users, accounts, deletions, recent requests."""
    snapshot = _state().snapshot()
    recent = list(reversed(snapshot["requests"]))[:100]
    return render_template("sandbox/inspect.html", state=snapshot, recent=recent)


@admin.get("/state")
def state() -> Response:
    """Return everything held and received as JSON."""
    return jsonify(_state().snapshot())


@admin.post("/config")
def config() -> Response:
    """Change knobs: {"token_ttl": 1, "rate_limit": false, ...}; answers the new config."""
    changes = _json_body()
    if not isinstance(changes, dict):
        raise ValueError("send an object of settings")
    return jsonify(config=_state().configure(changes).to_json())


@admin.post("/faults")
def faults() -> Response:
    """Queue faults: a fault object, a list, or {"faults": [...], "replace": true}."""
    payload = _json_body()
    replace = isinstance(payload, dict) and payload.get("replace") is True
    if isinstance(payload, dict):
        payload = {key: value for key, value in payload.items() if key != "replace"}
    state = _state()
    state.add_faults(parse_faults(payload), replace=replace)
    with state.lock:
        pending = [fault.to_json() for fault in state.faults]
    return jsonify(faults_pending=pending)


@admin.post("/reset")
def reset() -> Response:
    """Forget all data, tokens, deletions, faults and the log (the config stays)."""
    _state().reset()
    return jsonify(reset=True)


@admin.post("/complete")
def complete() -> Response:
    """Complete deletion requests now: {"ids": [...]} or {} for all pending ones."""
    payload = _json_body()
    ids = payload.get("ids") if isinstance(payload, dict) else None
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise ValueError("ids must be a list of deletion_request_id strings")
    return jsonify(completed=_state().complete(ids))
