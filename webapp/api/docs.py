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
from pydantic import BaseModel

from webapp.api.blueprint import api

SWAGGER_UI = Path(flask_swagger_ui.__file__).resolve().parent / "dist"
# The only files of swagger-ui-dist the page loads.
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css"})


class AssetPath(BaseModel):
    name: str


# Public pages, not operations of the API: left out of the document. (In it, security=[]
# would not say "public": the blueprint appends its bearer requirement to the route's list.)
@api.get("/docs", doc_ui=False, security=[])
def docs():
    """The API's document, readable in a browser."""
    return render_template("api/docs.html")


@api.get("/docs/assets/<name>", doc_ui=False, security=[])
def docs_asset(path: AssetPath):
    """Swagger UI's script and style sheet."""
    if path.name not in ASSETS:
        abort(404)
    return send_from_directory(SWAGGER_UI, path.name, max_age=86400)
