"""GET /api/v1/docs: the OpenAPI document rendered by Swagger UI, without inline script.

Swagger UI's files come from flask-swagger-ui's bundled copy of swagger-ui-dist (a maintained
package; only its static files are used, not its blueprint, whose page starts the viewer with
inline script). The desk's own static/api-docs.js starts it, so the page keeps the desk's
Content-Security-Policy (script-src 'self'). Public like the document itself: it holds no data;
"Authorize" takes a token for "Try it out", kept in the page's memory only.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import abort, render_template, send_from_directory

from webapp.api.blueprint import api

SWAGGER_UI = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
# The only files of swagger-ui-dist the page loads.
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


@api.get("/docs")
def docs():
    """The API's document, readable in a browser."""
    return render_template("api/docs.html")


@api.get("/docs/assets/<name>")
def docs_asset(name: str):
    """Swagger UI's script and style sheet."""
    if name not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI, name, max_age=86400)
