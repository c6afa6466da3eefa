"""Row fixes and the approval's confirmation over /api/v1 (issue 15)."""

from __future__ import annotations

import io

import pytest
from batch_fixtures import *  # noqa: F401,F403

CSV = "identity\nada@example.org\nbob@example.org\nnull\n"
BIG = "user_id\n" + "\n".join(str(n) for n in range(1, 1002)) + "\n"


@pytest.fixture
def call(app):
    """call(token, path, json=...) → the response of a POST (GET without json)."""

    def run(token: str, path: str, **kw):
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        if "json" in kw or "data" in kw:
            return client.post(f"/api/v1{path}", headers=headers, **kw)
        return client.get(f"/api/v1{path}", headers=headers)

    return run


@pytest.fixture
def uploaded(call, env_id):
    """uploaded(token, text) → the new batch's JSON."""

    def run(token: str, text: str) -> dict:
        form = {"environment_id": str(env_id), "file": (io.BytesIO(text.encode()), "l.csv")}
        response = call(token, "/batches", data=form, content_type="multipart/form-data")
        assert response.status_code == 201, response.json
        return response.json

    return run


def test_exclude_and_correct_rows_then_approve_the_new_manifest(call, uploaded, api_token):
    uploader, approver = api_token("officer"), api_token("officer")
    batch = uploaded(uploader, CSV)
    path = f"/batches/{batch['id']}"

    response = call(uploader, f"{path}/rows/2/exclude", json={"reason": "withdrawn"})
    assert response.status_code == 200, response.json
    assert response.json["counts"]["excluded"] == 1 and response.json["counts"]["valid"] == 1
    response = call(uploader, f"{path}/rows/3/correct", json={"kind": "user_id", "value": "007"})
    assert response.status_code == 200, response.json
    body = response.json
    assert (body["counts"]["valid"], body["counts"]["malformed"]) == (2, 0)
    assert body["manifest"]["count"] == 2
    assert body["manifest"]["sha256"] != batch["manifest"]["sha256"]

    stale = call(approver, f"{path}/approve", json={"manifest_sha256": batch["manifest"]["sha256"]})
    assert stale.status_code == 409
    done = call(approver, f"{path}/approve", json={"manifest_sha256": body["manifest"]["sha256"]})
    assert done.status_code == 200 and done.json["state"] == "approved"
    late = call(uploader, f"{path}/rows/1/exclude", json={"reason": "late"})
    assert late.status_code == 409


@pytest.mark.parametrize(
    ("row", "action", "body", "status", "message"),
    [
        (2, "exclude", {}, 400, "reason"),
        (2, "exclude", {"reason": 5}, 400, "'reason' must be a string."),
        (2, "exclude", {"reason": "   "}, 400, "Give the reason for excluding row 2"),
        (3, "exclude", {"reason": "x"}, 409, "Row 3 is malformed"),
        (9, "exclude", {"reason": "x"}, 404, "has no row 9"),
        (3, "correct", {"kind": "email", "value": "a@b.c"}, 400, "'kind' must be"),
        (3, "correct", {"kind": "identity", "value": "undefined"}, 400, "placeholder"),
        (3, "correct", {"kind": "identity", "value": "x" * 1001}, 400, "longer than any"),
        (1, "correct", {"kind": "identity", "value": "x@y.z"}, 409, "Row 1 is not malformed"),
    ],
)
def test_bad_fixes_are_refused_with_a_plain_message(
    call, uploaded, api_token, table_counts, row, action, body, status, message
):
    uploader = api_token("officer")
    batch = uploaded(uploader, CSV)
    before = table_counts()
    response = call(uploader, f"/batches/{batch['id']}/rows/{row}/{action}", json=body)
    assert response.status_code == status, response.json
    assert message in response.json["error"]["message"]
    assert table_counts() == before


def test_only_the_uploader_or_an_admin_fixes_rows(call, uploaded, api_token):
    batch = uploaded(api_token("officer"), CSV)
    path = f"/batches/{batch['id']}/rows/1/exclude"
    assert call(api_token("officer"), path, json={"reason": "x"}).status_code == 403
    assert call(api_token("auditor"), path, json={"reason": "x"}).status_code == 403
    assert call(api_token("admin"), path, json={"reason": "x"}).status_code == 200


def test_approving_more_than_1000_subjects_needs_checked_preview(call, uploaded, api_token):
    batch = uploaded(api_token("officer"), BIG)
    approver = api_token("officer")
    path = f"/batches/{batch['id']}/approve"
    refused = call(approver, path, json={})
    assert refused.status_code == 400
    assert "checked_preview" in refused.json["error"]["message"]
    assert call(approver, path, json={"checked_preview": "yes"}).status_code == 400
    assert call(approver, path, json={"checked_preview": False}).status_code == 400
    done = call(approver, path, json={"checked_preview": True})
    assert done.status_code == 200 and done.json["state"] == "approved"
