"""The JSON API under /api/v1 (bearer tokens; errors as {"error": {"code", "message"}}).

Each module attaches its routes, with their request and answer models, to `api`; flask-openapi3
writes the OpenAPI 3.1 document from those models (the ones that also validate the requests).
"""

import copy
import json

from flask import current_app, jsonify

from webapp.api import (  # noqa: F401 - importing a module registers its routes on `api`
    audit_api,
    batches_api,
    corrections_api,
    docs,
    environments_api,
    evidence_api,
    health,
    notifications_api,
    row_fixes_api,
    subjects_api,
)
from webapp.api.batch_models import lookup_parameter
from webapp.api.blueprint import PREFIX, api
from webapp.api.correction_models import BODIES

__all__ = ["api"]

REF = "#/components/schemas/"

DESCRIPTION = (
    "GDPR erasure requests against Heap. Authenticate with `Authorization: Bearer <token>` "
    "(create one under *API tokens* or with `desk tokens create`). Each token has a scope — "
    "`read` (GET only) or `write` (also POST, PUT and DELETE; never for auditors) — and expires "
    '1 to 365 days after its creation. Errors are `{"error": {"code", "message"}}`; a '
    "method a path does not have is 405 with an `Allow` header."
)


def document() -> dict:
    """The generated document, its paths relative to the `/api/v1` server, with what
    flask-openapi3 cannot write put right (see `_amend`)."""
    generated = copy.deepcopy(current_app.api_doc)
    paths = {
        path.removeprefix(PREFIX) or "/": item
        for path, item in sorted(generated["paths"].items())
        if path.startswith(PREFIX)
    }
    info = {**generated["info"], "description": DESCRIPTION}
    return _amend({**generated, "info": info, "servers": [{"url": PREFIX}], "paths": paths})


def _amend(doc: dict) -> dict:
    """What flask-openapi3 4.3 writes otherwise: the blueprint's bearer requirement appended
    to the public health check's own `[]`; bounds as floats (`1.0`); `"default": null` on
    optional fields (absent is not null); and one parameter per field of the lookup's query,
    which cannot say "exactly one of identity and user_id"."""
    doc["paths"]["/health"]["get"]["security"] = []
    # flask-openapi3's Schema model drops keywords it does not know (propertyNames among
    # them): the correction bodies, which use them, are written as pydantic writes them.
    for body in BODIES.values():
        schema = body.model_json_schema()
        doc["components"]["schemas"][schema["title"]] = schema
    lookup = doc["paths"]["/subjects/lookup"]["get"]
    lookup["parameters"] = [lookup_parameter()]
    return _one_schema_each(_tidy(doc))


def _one_schema_each(doc: dict) -> dict:
    """flask-openapi3 files a model whose title is not its class name twice (ErrorBody as
    "Error" and "ErrorBody"): two components of one title, which a client generator refuses.
    Keep the one named after the title and point every reference at it."""
    schemas = doc["components"]["schemas"]
    kept: dict[str, str] = {}
    for name in sorted(schemas, key=lambda n: n != schemas[n].get("title")):
        kept.setdefault(json.dumps(schemas[name], sort_keys=True), name)
    keep = set(kept.values())
    moved = {
        f"{REF}{name}": f"{REF}{kept[json.dumps(schema, sort_keys=True)]}"
        for name, schema in schemas.items()
        if name not in keep
    }
    doc["components"]["schemas"] = {n: s for n, s in schemas.items() if n in keep}
    return _renamed(doc, moved)


def _renamed(node, moved: dict[str, str]):
    if isinstance(node, dict):
        return {
            key: moved.get(value, value) if key == "$ref" else _renamed(value, moved)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_renamed(item, moved) for item in node]
    return node


def _tidy(node):
    if isinstance(node, dict):
        return {
            key: _whole(key, _tidy(value))
            for key, value in node.items()
            if not (key == "default" and value is None)
        }
    if isinstance(node, list):
        return [_tidy(item) for item in node]
    return node


def _whole(key: str, value):
    bound = key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
    if bound and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


@api.get("/openapi.json", doc_ui=False)
def openapi():
    """The API's OpenAPI description (public: it holds no data), written from its models."""
    return jsonify(document())
