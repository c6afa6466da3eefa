"""The batch and subject endpoints of /api/v1: upload, list, detail, workflow, lookup, extend."""

from __future__ import annotations

import io

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.models import Subject


@pytest.fixture
def api(app):
    """Call the API with a bearer token: api(token).post(path, ...)."""

    class Caller:
        def __init__(self, token: str | None):
            self.client = app.test_client()
            self.headers = {"Authorization": f"Bearer {token}"} if token else {}

        def get(self, path, **kw):
            return self.client.get(f"/api/v1{path}", headers=self.headers, **kw)

        def post(self, path, **kw):
            return self.client.post(f"/api/v1{path}", headers=self.headers, **kw)

    return Caller


def _upload(caller, env_id, text: str | bytes, **fields):
    data = text.encode() if isinstance(text, str) else text
    form = {"environment_id": str(env_id), "file": (io.BytesIO(data), "list.csv"), **fields}
    return caller.post("/batches", data=form, content_type="multipart/form-data")


def test_upload_answers_201_with_counts_and_problems(app, api, api_token, env_id):
    officer = api(api_token("officer"))
    text = "user_id,identity\n1,\nabc,\n1,\n,Ada@x.org\n,ada@x.org\n"
    response = _upload(officer, env_id, text, received_on="2025-01-31", reference="T-9")
    assert response.status_code == 201, response.json
    body = response.json
    assert body["state"] == "awaiting_approval"
    assert body["counts"] == {
        "rows": 5,
        "valid": 3,
        "malformed": 1,
        "duplicate": 1,
        "already_requested": 0,
        "excluded": 0,
    }
    assert body["problems"] == [
        {"row": 2, "classification": "malformed", "reason": body["problems"][0]["reason"]},
        {"row": 3, "classification": "duplicate", "reason": "the same user_id as row 1"},
    ]
    assert "whole number" in body["problems"][0]["reason"]
    assert [w["row"] for w in body["warnings"]] == [4, 5]
    assert len(body["sha256"]) == 64 and body["received_on"] == "2025-01-31"
    assert (body["source"], body["reference"]) == ("api", "T-9")


@pytest.mark.parametrize(
    ("fields", "text", "status", "code", "message"),
    [
        ({"environment_id": "x"}, "user_id\n1\n", 400, "invalid", "environment_id"),
        # No such environment: 404; a date after today: 409, the same list is taken later.
        ({"environment_id": "999"}, "user_id\n1\n", 404, "not_found", "Choose the Heap"),
        ({"received_on": "31/01/2025"}, "user_id\n1\n", 400, "invalid", "YYYY-MM-DD"),
        ({"received_on": "2999-01-01"}, "user_id\n1\n", 409, "conflict", "in the future"),
        ({}, "nothing,here\n1,2\n", 400, "invalid", "must name the identifier column"),
        ({}, b"\x00\x01binary", 400, "invalid", "NUL bytes"),
    ],
)
def test_refused_uploads(
    app, api, api_token, env_id, table_counts, fields, text, status, code, message
):
    officer = api(api_token("officer"))
    before = table_counts()
    response = _upload(officer, env_id, text, **fields)
    assert response.status_code == status
    assert response.json["error"]["code"] == code
    assert message in response.json["error"]["message"]
    assert table_counts() == before


def test_upload_without_a_file(app, api, api_token, env_id):
    response = api(api_token("officer")).post(
        "/batches", data={"environment_id": str(env_id)}, content_type="multipart/form-data"
    )
    assert response.status_code == 400 and "'file'" in response.json["error"]["message"]


def test_upload_over_the_request_limit_is_413(app, api, api_token, env_id):
    app.config["MAX_CONTENT_LENGTH"] = 2048
    response = _upload(api(api_token("officer")), env_id, b"user_id\n" + b"1\n" * 2000)
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"


def test_roles_and_anonymous(app, api, api_token, env_id, upload, make_user):
    auditor = api(api_token("auditor"))
    assert _upload(auditor, env_id, "user_id\n1\n").status_code == 403
    batch_id = upload(make_user("officer"), "user_id\n1\n")
    assert auditor.post(f"/batches/{batch_id}/approve").status_code == 403
    assert auditor.get(f"/batches/{batch_id}").status_code == 200
    anonymous = api(None)
    assert anonymous.get("/batches").status_code == 401
    assert _upload(anonymous, env_id, "user_id\n1\n").status_code == 401


def test_four_eyes_over_the_api(app, api, api_token, env_id):
    uploader, approver = api(api_token("officer")), api(api_token("officer"))
    created = _upload(uploader, env_id, "identity\nada@x.org\n").json
    batch_id = created["id"]
    response = uploader.post(f"/batches/{batch_id}/approve")
    assert response.status_code == 409
    assert response.json["error"]["code"] == "self_approval"
    assert "four-eyes" in response.json["error"]["message"]
    response = approver.post(f"/batches/{batch_id}/approve", json={"sha256": "ab" * 32})
    assert response.status_code == 409 and "SHA-256" in response.json["error"]["message"]
    response = approver.post(f"/batches/{batch_id}/approve", json={"sha256": created["sha256"]})
    assert response.status_code == 200 and response.json["state"] == "approved"
    assert response.json["people"]["approved_by"] != response.json["people"]["uploaded_by"]
    response = approver.post(f"/batches/{batch_id}/approve")
    assert response.status_code == 409 and response.json["error"]["code"] == "conflict"


def test_reject_cancel_retry_over_the_api(app, api, api_token, env_id):
    uploader, reviewer = api(api_token("officer")), api(api_token("admin"))
    first = _upload(uploader, env_id, "user_id\n1\n").json["id"]
    second = _upload(uploader, env_id, "user_id\n2\n").json["id"]
    response = reviewer.post(f"/batches/{first}/reject", json={})
    assert response.status_code == 400 and "reason" in response.json["error"]["message"]
    response = reviewer.post(f"/batches/{first}/reject", json={"reason": 5})
    assert response.status_code == 400
    response = reviewer.post(f"/batches/{first}/reject", json={"reason": "duplicate ticket"})
    assert (response.status_code, response.json["state"]) == (200, "rejected")
    assert response.json["rejection_reason"] == "duplicate ticket"
    response = uploader.post(f"/batches/{second}/cancel")
    assert response.status_code == 400 and "reason" in response.json["error"]["message"]
    response = uploader.post(f"/batches/{second}/cancel", json={"reason": "sent twice"})
    assert (response.status_code, response.json["state"]) == (200, "cancelled")
    assert response.json["cancel_reason"] == "sent twice"
    response = uploader.post(f"/batches/{second}/retry")
    assert response.status_code == 409
    assert reviewer.post("/batches/999/approve").status_code == 404


def test_list_filters_and_pages(app, api, api_token, env_id, make_env):
    officer = api(api_token("officer"))
    other = make_env("Other Production")
    ids = [_upload(officer, env_id, f"user_id\n{i}\n").json["id"] for i in range(3)]
    elsewhere = _upload(officer, other, "user_id\n9\n").json["id"]
    reader = api(api_token("auditor"))
    body = reader.get("/batches?per_page=2").json
    assert [b["id"] for b in body["batches"]] == [elsewhere, ids[2]]
    assert (body["page"], body["pages"], body["total"]) == (1, 2, 4)
    body = reader.get(f"/batches?environment_id={other}").json
    assert [b["id"] for b in body["batches"]] == [elsewhere]
    assert reader.get("/batches?state=complete").json["batches"] == []
    assert reader.get("/batches?state=nonsense").status_code == 400
    assert reader.get("/batches?page=x").status_code == 400


def test_detail_shows_progress_deadlines_and_every_deletion_id(
    app, api, api_token, env_id, upload, make_user, complete_batch
):
    batch_id = upload(make_user("officer"), "user_id,received_on\n1,2025-01-31\n2,2025-01-31\n")
    complete_batch(batch_id, deletion_request_id="11111111-2222-4333-8444-555555555555")
    body = api(api_token("auditor")).get(f"/batches/{batch_id}").json
    assert body["state"] == "complete"
    assert body["progress"] == {"complete": 2, "total": 2}
    assert body["deadlines"]["earliest_due_on"] is None  # nothing owed any more
    (chunk,) = body["heap_requests"]
    assert chunk["deletion_request_ids"] == ["11111111-2222-4333-8444-555555555555"]
    assert (chunk["status"], chunk["chunk_index"], chunk["subjects"]) == ("complete", 1, 2)
    assert api(api_token("auditor")).get("/batches/424242").status_code == 404


def test_lookup_and_extend_over_the_api(app, api, api_token, env_id, upload, make_user):
    batch_id = upload(make_user("officer"), "user_id,identity\n0042,\n,Ada@x.org\n")
    reader = api(api_token("auditor"))
    body = reader.get(f"/subjects/lookup?environment_id={env_id}&user_id=42").json
    assert body["deleted"] is False
    (hit,) = body["results"]
    assert (hit["batch_id"], hit["row"], hit["state"]) == (batch_id, 1, "pending")
    assert reader.get("/subjects/lookup?identity=ada@x.org").json["results"] == []
    assert len(reader.get("/subjects/lookup?identity=Ada@x.org").json["results"]) == 1
    assert reader.get("/subjects/lookup?identity=a&user_id=1").status_code == 400
    assert reader.get("/subjects/lookup").status_code == 400
    assert reader.get("/subjects/lookup?user_id=abc").status_code == 400
    assert reader.get(f"/subjects/{hit['subject_id']}").json["row"] == 1

    with app.app_context(), session_scope(write=False) as session:
        subject = session.exec(select(Subject).where(Subject.id == hit["subject_id"])).one()
    officer = api(api_token("officer"))
    path = f"/subjects/{subject.id}/extend"
    informed = subject.received_on.isoformat()
    assert reader.post(path, json={}).status_code == 403
    response = officer.post(
        path, json={"months": 3, "reason": "x", "subject_informed_on": informed}
    )
    assert response.status_code == 400 and "1 or 2" in response.json["error"]["message"]
    response = officer.post(path, json={"months": 1, "reason": "x", "subject_informed_on": "soon"})
    assert response.status_code == 400
    response = officer.post(
        path, json={"months": 1, "reason": "Backlog", "subject_informed_on": informed}
    )
    assert response.status_code == 200 and response.json["extension_months"] == 1
    response = officer.post(
        "/subjects/9999/extend", json={"months": 1, "reason": "x", "subject_informed_on": informed}
    )
    assert response.status_code == 404


def test_openapi_documents_the_batch_and_subject_paths(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for path in (
        "/batches",
        "/batches/{batch_id}",
        "/batches/{batch_id}/approve",
        "/batches/{batch_id}/reject",
        "/batches/{batch_id}/cancel",
        "/batches/{batch_id}/retry",
        "/subjects/lookup",
        "/subjects/{subject_id}/extend",
    ):
        assert path in paths, path
    assert "multipart/form-data" in paths["/batches"]["post"]["requestBody"]["content"]
