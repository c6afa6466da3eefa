"""Deletion Desk: GDPR erasure requests against Heap, carried out and proven."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask_openapi3 import Info, OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter

from webapp import db, errors, navigation
from webapp.accounts import access as security
from webapp.config import load_settings
from webapp.forms import csrf
from webapp.models import MAX_ID

ROOT = Path(__file__).resolve().parent.parent


class IdConverter(IntegerConverter):
    """`<int:…>` within the ids' range: a larger number matches no route (404), never a 500."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def create_app(test_config: dict | None = None) -> Flask:
    """Build the app: configuration and wiring only — no connection, thread or HTTP call."""
    from webapp.api.schemas import ErrorBody, validation_error

    # flask-openapi3's Flask: the API's models validate requests and write its document.
    app = OpenAPI(
        __name__,
        info=Info(title="Deletion Desk API", version="1"),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        validation_error_status=400,
        validation_error_model=ErrorBody,
        validation_error_callback=validation_error,
        doc_ui=False,  # its pages use inline script; /api/v1/docs is the desk's own
        instance_path=str((test_config or {}).get("INSTANCE_PATH") or ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.url_map.converters["int"] = IdConverter
    app.config.update(load_settings(Path(app.instance_path)))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="desk_session",
        PERMANENT_SESSION_LIFETIME=app.config["DESK_SESSION_MAX_HOURS"] * 3600,
        MAX_CONTENT_LENGTH=app.config["DESK_UPLOAD_MAX_BYTES"] + 256 * 1024,
        # A pasted list is a form field; Flask caps those at 500 kB unless told, which made a
        # 10,000-row paste impossible. The paste is then held to the file's limit by intake.
        MAX_FORM_MEMORY_SIZE=app.config["DESK_UPLOAD_MAX_BYTES"] + 256 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the server-side session
        JSON_SORT_KEYS=False,
    )
    if test_config:
        app.config.update(test_config)

    # /mcp (AI assistants) beside the routes, in the same workers (ARCHITECTURE.md, "Serving").
    from webapp.assistants.http import mount as mount_mcp

    mount_mcp(app)
    if app.config["DESK_PROXY_HOPS"]:
        hops = app.config["DESK_PROXY_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    db.init_app(app)
    csrf.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    navigation.init_app(app)
    register_blueprints(app)
    register_domain_errors(app)
    return app


def register_domain_errors(app: Flask) -> None:
    """Domain errors any page or endpoint may meet, answered the same way everywhere."""
    from webapp.evidence.tree_heads import TreeHeadError

    # Evidence that needs a signed tree head when none can be signed (the time-stamping
    # authority is down): a 503 naming the cause.
    errors.unavailable_on(app, TreeHeadError)


def register_blueprints(app: Flask) -> None:
    """Attach every blueprint; the API is exempt from CSRF because it takes bearer tokens only."""
    from webapp.api import api
    from webapp.views import (
        admin,
        audit_views,
        auth,
        batch_review,
        batches,
        correction_approval,
        corrections,
        environments,
        home,
        notifications,
        subjects,
        times,
    )
    from webapp.views import evidence as evidence_views
    from webapp.views import two_factor as two_factor_views

    for blueprint in (
        auth.bp,
        home.bp,
        admin.bp,
        environments.bp,
        audit_views.bp,
        batches.bp,
        batch_review.bp,
        subjects.bp,
        corrections.bp,
        correction_approval.bp,
        notifications.bp,
        two_factor_views.bp,
        evidence_views.bp,
        times.bp,
    ):
        app.register_blueprint(blueprint)
    csrf.exempt(api)
    app.register_api(api)
