"""The API document says exactly what the desk does: what it states about a request is what
the desk accepts and refuses (the lookup's "exactly one", the upload's CSV, lengths counted as
sent, no unknown fields), and the details a client generator or a fuzzer reads are right
(public health check, whole-number bounds, no null defaults, one schema a title, links)."""

from __future__ import annotations

import io
import json
import re

import pytest
from batch_fixtures import *  # noqa: F401,F403


@pytest.fixture
def document(client) -> dict:
    return client.get("/api/v1/openapi.json").json


@pytest.fixture
def officer(api_token) -> dict:
    return {"Authorization": f"Bearer {api_token('officer')}"}


def _walk(node):
    yield node
    children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
    for child in children:
        yield from _walk(child)


def test_the_health_check_is_public_and_everything_else_needs_a_token(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            expected = [] if path == "/health" else [{"bearer": []}]
            assert operation["security"] == expected, (method, path)


def test_bounds_are_whole_numbers_and_no_field_defaults_to_null(document):
    for node in _walk(document):
        if isinstance(node, dict):
            assert not ("default" in node and node["default"] is None), node
            for bound in ("minimum", "maximum"):
                assert not isinstance(node.get(bound), float), node


def test_each_schema_is_filed_once(document):
    titles = [
        schema.get("title", name) for name, schema in document["components"]["schemas"].items()
    ]
    assert len(titles) == len(set(titles))
    names = set(document["components"]["schemas"])
    refs = {node["$ref"] for node in _walk(document) if isinstance(node, dict) and "$ref" in node}
    assert {ref.removeprefix("#/components/schemas/") for ref in refs} <= names


def test_links_lead_to_the_two_retries(document):
    links = [node for node in _walk(document) if isinstance(node, dict) and "operationId" in node]
    targets = {link["operationId"] for link in links if "parameters" in link}
    assert {"retry_batch", "retry_correction"} <= targets


def test_the_lookup_states_exactly_one_of_identity_and_user_id(document, client, officer, env_id):
    (parameter,) = document["paths"]["/subjects/lookup"]["get"]["parameters"]
    assert (parameter["in"], parameter["style"], parameter["explode"]) == ("query", "form", True)
    schema = parameter["schema"]
    assert set(schema["properties"]) == {"environment_id", "identity", "user_id"}
    assert schema["allOf"] == [{"oneOf": [{"required": ["identity"]}, {"required": ["user_id"]}]}]
    for query, status in (
        ("identity=ann@example.org", 200),
        ("user_id=12", 200),
        ("identity=ann@example.org&user_id=12", 400),
        (f"environment_id={env_id}", 400),
        # schemathesis' stateful phase: a stray `user_id[…]` beside an identity is refused,
        # not read as a lookup by identity alone.
        ("identity=ann@example.org&user_id%5Bx%5D=null", 400),
    ):
        response = client.get(f"/api/v1/subjects/lookup?{query}", headers=officer)
        assert response.status_code == status, (query, response.json)


def _upload_text(client, headers, env_id, text: str, **fields):
    """The list sent as a text part, as a generated client sends a string field."""
    form = {"environment_id": str(env_id), "file": text, **fields}
    return client.post(
        "/api/v1/batches", data=form, content_type="multipart/form-data", headers=headers
    )


@pytest.mark.parametrize(
    "text",
    [
        "email\nann@example.org\n",
        "\ufeffidentity\r\nann@example.org\r\n\r\nbob\r\n",
        'user_id\n12\nnot a number, "quoted" inside\n',
    ],
)
def test_a_csv_the_document_describes_is_taken_as_a_file_or_as_text(
    document, client, officer, env_id, text
):
    pattern = document["components"]["schemas"]["UploadForm"]["properties"]["file"]["pattern"]
    assert re.fullmatch(pattern, text)
    assert _upload_text(client, officer, env_id, text).status_code == 201
    form = {"environment_id": str(env_id), "file": (io.BytesIO(text.encode()), "list.csv")}
    response = client.post(
        "/api/v1/batches", data=form, content_type="multipart/form-data", headers=officer
    )
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name\nann@example.org\n", "must name the identifier column"),
        ("email\n", "no subjects"),
        ("email\nb\ufffdb@example.org\n", "not UTF-8 text"),
    ],
)
def test_text_the_document_does_not_describe_is_refused(
    document, client, officer, env_id, text, message
):
    pattern = document["components"]["schemas"]["UploadForm"]["properties"]["file"]["pattern"]
    assert not re.fullmatch(pattern, text)
    response = _upload_text(client, officer, env_id, text)
    assert response.status_code == 400 and message in response.json["error"]["message"]


def test_an_unknown_form_field_is_refused_by_name(client, officer, env_id):
    response = _upload_text(client, officer, env_id, "email\na@b.org\n", colour="blue")
    assert response.status_code == 400
    assert response.json["error"]["message"] == "Unknown field(s): colour."


def test_lengths_are_counted_as_sent_and_unknown_fields_refused(
    client, officer, api_token, env_id, upload, make_user
):
    batch_id = upload(make_user("officer"), "email\nann@example.org\n")
    path = f"/api/v1/batches/{batch_id}/reject"
    # The service strips spaces; the document's maxLength (2000) counts them.
    long = {"reason": "x" * 2000 + " "}
    response = client.post(path, json=long, headers=officer)
    assert response.status_code == 400
    assert response.json["error"]["message"] == (
        "Give the reason for rejecting (1 to 2000 characters)."
    )
    response = client.post(path, json={"reason": "Wrong list", "note": "x"}, headers=officer)
    assert response.status_code == 400
    assert response.json["error"]["message"] == "Unknown field(s): note."
    response = client.post(path, json={"reason": "x" * 2000}, headers=officer)
    assert response.status_code == 200 and response.json["state"] == "rejected"


def test_a_name_another_environment_has_is_a_conflict(client, api_token):
    admin = {"Authorization": f"Bearer {api_token('admin')}"}
    body = {"name": "Staging", "app_id": "42"}
    assert client.post("/api/v1/environments", json=body, headers=admin).status_code == 201
    again = client.post("/api/v1/environments", json=body, headers=admin)
    assert again.status_code == 409 and again.json["error"]["code"] == "conflict"
    assert again.json["error"]["message"] == "Another environment already has this name."


def test_the_document_is_json_a_generator_reads(document):
    assert json.loads(json.dumps(document)) == document


def test_ids_written_as_whole_floats_are_the_whole_numbers(client, officer, sandbox, make_env):
    # JSON Schema's integer includes 12.0: a client or fuzzer may send an id so.
    env_id = make_env(
        "Main Production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )
    body = {"environment_id": float(env_id), "user_id": 12.0, "identity": "ann", "preview": True}
    response = client.post("/api/v1/corrections/identify", json=body, headers=officer)
    assert response.status_code == 200, response.json
    assert response.json["calls"][0]["body"]["user_id"] == "12"  # as for 12
