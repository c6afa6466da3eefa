"""Hostile input in the pages' forms and query strings: over-long values, control characters,
NUL, markup, garbage filters and out-of-range ids.

Each is a form error (or a 4xx page), never a 500, and stores nothing; what is stored is shown
escaped. The API's side of the same inputs is tests/api/test_hostile_api.py.
"""

from __future__ import annotations

import html
import io
import re

import corrections_helpers
import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from conftest import PASSWORD
from sqlmodel import select

from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Correction, Environment, LoginAttempt, Subject

heap_env, paced = corrections_helpers.heap_env, corrections_helpers.paced
HUGE = "9" * 30
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@pytest.fixture
def stored(app):
    """Rows of every table a form could write to."""

    def count() -> tuple[int, ...]:
        models = (Batch, Subject, Correction, Environment, LoginAttempt, AuditEntry)
        with app.app_context(), session_scope(write=False) as session:
            return tuple(session.exec(select(sa.func.count()).select_from(m)).one() for m in models)

    return count


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _no_markup(body: str) -> None:
    """The hostile markup is shown as text, never as tags."""
    assert "<script>alert(1)" not in body and "<img src=x" not in body


@pytest.mark.parametrize(
    ("email", "password", "status", "message"),
    [
        ("a" * 10_000 + "@x.org", PASSWORD, 200, "Field cannot be longer than 254 characters."),
        (None, "p" * 10_240, 200, "Field cannot be longer than 256 characters."),
        ("ada\x00@x.org", PASSWORD, 400, "contains a NUL character"),
        (None, PASSWORD + "\x00", 400, "contains a NUL character"),
        (f"{SCRIPT}@x.org", SCRIPT, 200, "The e-mail address or password is wrong."),
    ],
    ids=["10kB-email", "10kB-password", "nul-email", "nul-password", "markup"],
)
def test_hostile_sign_in_is_a_form_error_and_signs_nobody_in(
    client, auth, make_user, stored, email, password, status, message
):
    known = make_user("officer")  # the desk is set up: /login is the sign-in form
    email = email or known
    before = stored()
    response = auth.login(email, password)
    assert response.status_code == status
    assert message in _text(response)
    _no_markup(response.get_data(as_text=True))
    assert client.get("/dashboard").status_code == 302  # still signed out
    if "wrong" not in message:  # a well-formed failed sign-in is counted (lockout) and audited
        assert stored() == before


@pytest.fixture
def officer(login_as, heap_env):
    return login_as("officer")


PAGE_CASES = [
    # (id, form, fields, status, message)
    (
        "identity-256",
        "identify",
        {"user_id": "7", "identity": "x" * 256},
        422,
        "Field cannot be longer than 255 characters.",
    ),
    (
        "property-value-1024",
        "user-properties",
        {"identity": "ann@x.org", "properties-0-key": "bio", "properties-0-value": "v" * 1024},
        422,
        "Field cannot be longer than 1023 characters.",
    ),
    (
        "event-1025",
        "track",
        {"event": "e" * 1025, "identity": "ann@x.org"},
        422,
        "Field cannot be longer than 1024 characters.",
    ),
    (
        "identity-bell",
        "user-properties",
        {"identity": "ann\x07@x.org", "properties-0-key": "a", "properties-0-value": "b"},
        422,
        "The identity contains control characters (a line break, tab or NUL).",
    ),
    (
        "property-name-control",
        "user-properties",
        {"identity": "ann@x.org", "properties-0-key": "pl\x01an", "properties-0-value": "pro"},
        422,
        "The property name contains control characters",
    ),
    (
        "event-escape-sequence",
        "track",
        {"event": "Refund\x1b[2J", "identity": "ann@x.org"},
        422,
        "The event name contains control characters",
    ),
    (
        "user-id-exponent",
        "track",
        {"event": "Refund", "user_id": "1e5"},
        422,
        "The user_id must be a whole number written with digits only.",
    ),
    (
        "identity-nul",
        "link-account",
        {"identity": "ann\x00@x.org", "account_id": "acme"},
        400,
        "contains a NUL character",
    ),
    (
        "bulk-nul",
        "user-properties/bulk",
        {"content": "identity,plan\nann@x.org,pro\x00\n", "format": "csv"},
        400,
        "contains a NUL character",
    ),
    (
        "bulk-1001-rows-last-bad",
        "track/bulk",
        {
            "content": "event,identity,user_id\n"
            + "".join(f"Refund,p{i}@x.org,\n" for i in range(1000))
            + "Refund,,\n",
            "format": "csv",
        },
        422,
        "Row 1001: give exactly one of identity or user_id",
    ),
    (
        "bulk-control-in-identity",
        "user-properties/bulk",
        {"content": '[{"identity": "ann\\u0008", "properties": {"a": 1}}]', "format": "json"},
        422,
        "Row 1: the identity contains control characters",
    ),
]


@pytest.mark.parametrize(
    ("form", "fields", "status", "message"),
    [c[1:] for c in PAGE_CASES],
    ids=[c[0] for c in PAGE_CASES],
)
def test_hostile_correction_forms_store_and_send_nothing(
    auth, officer, heap_env, sandbox, stored, form, fields, status, message
):
    before = stored()
    data = {"environment_id": heap_env, "step": "preview", **fields}
    response = auth.post(f"/corrections/{form}", data)
    assert response.status_code == status
    assert message in _text(response)
    assert stored() == before
    assert sandbox.state.request_paths() == []


def _send_from(client, page: str, path: str):
    """Press "Send to Heap" on a preview page, as a browser would."""
    data: dict[str, list[str]] = {"step": ["send"]}
    for name, value in HIDDEN.findall(page):
        data.setdefault(name, []).append(html.unescape(value))
    return client.post(path, data=data)


def test_markup_in_correction_properties_is_sent_literally_and_shown_escaped(
    app, client, auth, officer, heap_env, sandbox, make_user
):
    identity = f"{SCRIPT}@x.org"
    fields = {
        "environment_id": heap_env,
        "identity": identity,
        "properties-0-key": IMG,
        "properties-0-value": SCRIPT,
        "step": "preview",
    }
    shown = auth.post("/corrections/user-properties", fields)
    assert shown.status_code == 200
    _no_markup(shown.get_data(as_text=True))
    sent = _send_from(client, shown.get_data(as_text=True), "/corrections/user-properties")
    assert sent.status_code == 302, _text(sent)
    user = corrections_helpers.sandbox_data(sandbox)["users"][0]
    assert (user["identity"], user["properties"]) == (identity, {IMG: SCRIPT})
    for path in (sent.location, "/corrections"):
        body = client.get(path).get_data(as_text=True)
        _no_markup(body)
    detail = client.get(sent.location).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in detail  # the body sent, as text
    auth.logout()
    auth.login(make_user("auditor"))
    seen_by_auditor = client.get(sent.location).get_data(as_text=True)
    _no_markup(seen_by_auditor)
    assert "alert(1)" not in seen_by_auditor  # auditors see fingerprints, not values


def test_markup_in_upload_reference_rejection_and_extension_is_escaped(
    app, client, auth, make_user, env_id
):
    uploader, approver = make_user("officer"), make_user("officer")
    auth.login(uploader)
    data = {
        "environment_id": str(env_id),
        "file": (io.BytesIO(b"identity\nada@x.org\n"), "list.csv"),
        "reference": SCRIPT,
        "paste_kind": "identity",
    }
    created = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert created.status_code == 302
    path = created.location
    auth.logout()
    auth.login(approver)
    auth.post(f"{path}/reject", {"reason": IMG + SCRIPT}, form_page=path)
    with app.app_context(), session_scope(write=False) as session:
        subject = session.exec(select(Subject)).one()
        assert session.exec(select(Batch.rejection_reason)).one() == IMG + SCRIPT
    subject_path = f"/subjects/{subject.id}"
    auth.post(
        f"{subject_path}/extend",
        {"months": "1", "reason": SCRIPT, "subject_informed_on": subject.received_on.isoformat()},
        form_page=subject_path,
    )
    for page in (path, "/batches", subject_path, "/dashboard"):
        body = client.get(page).get_data(as_text=True)
        _no_markup(body)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(path).get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get(subject_path).get_data(
        as_text=True
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reference": "r" * 256}, "Field cannot be longer than 255 characters."),
        ({"paste_kind": SCRIPT, "pasted": "ada@x.org"}, "Not a valid choice."),
        ({"received_on": "2025-02-30"}, "Write the date as YYYY-MM-DD"),
        ({"environment_id": HUGE}, "Not a valid choice."),
        ({"environment_id": "1 OR 1=1"}, "Invalid Choice: could not coerce."),
    ],
    ids=["reference-256", "paste-kind-markup", "february-30", "huge-environment", "sql-id"],
)
def test_hostile_upload_form_fields_are_form_errors(
    auth, login_as, env_id, stored, fields, message
):
    login_as("officer")
    before = stored()
    data = {
        "environment_id": str(env_id),
        "file": (io.BytesIO(b"identity\nada@x.org\n"), "list.csv"),
        "paste_kind": "identity",
    }
    if "pasted" in fields:
        del data["file"]
    response = auth.post("/batches/new", data | fields, content_type="multipart/form-data")
    assert response.status_code == 400
    assert message in _text(response)
    _no_markup(response.get_data(as_text=True))
    assert stored() == before


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"base_url": "javascript:alert(1)"}, "Enter a full URL"),
        ({"base_url": "file:///etc/passwd"}, "Enter a full URL"),
        ({"base_url": "http://169.254.169.254/latest/"}, "host 169.254.169.254 is not Heap's"),
        ({"base_url": "https://heapanalytics.com@evil.example"}, "Enter a full URL"),
        ({"base_url": "http://127.0.0.1:1@evil.example"}, "Enter a full URL"),
        ({"base_url": "https://heapanalytics.com.evil.example"}, "is not Heap's, loopback"),
        ({"name": "n" * 101}, "Field cannot be longer than 100 characters."),
        ({"app_id": "1 OR 1=1"}, "The app_id is a number."),
        ({"name": "Main\x00"}, "contains a NUL character"),
    ],
    ids=[
        "javascript",
        "file",
        "metadata-ip",
        "userinfo",
        "userinfo-loopback",
        "lookalike-host",
        "long-name",
        "sql-app-id",
        "nul-name",
    ],
)
def test_hostile_environment_forms_store_nothing(auth, login_as, stored, fields, message):
    login_as("admin")
    before = stored()
    data = {"name": "Hostile", "app_id": "3000610572", "region": "us"} | fields
    response = auth.post("/environments/new", data)
    assert response.status_code in {200, 400}
    assert message in _text(response)
    assert stored() == before


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"kind": "identity", "value": ""}, "Type the identity or user_id."),
        ({"kind": "identity", "value": "x" * 256}, "Field cannot be longer than 255 characters."),
        ({"kind": "identity", "value": "x" * 10_000}, "Field cannot be longer than 255"),
        ({"kind": "user_id", "value": str(2**53)}, "larger than 9007199254740991"),
        ({"kind": "user_id", "value": "-1"}, "digits only"),
        ({"kind": "identity", "value": "ada\x00@x.org"}, "contains a NUL character"),
        ({"kind": "identity", "value": "a", "environment_id": HUGE}, "Not a valid choice"),
        ({"kind": SCRIPT, "value": "a"}, "Not a valid choice"),
    ],
    ids=["empty", "256", "10k", "2^53", "negative", "nul", "huge-environment", "bad-kind"],
)
def test_hostile_lookups_are_form_errors_and_not_audited(auth, login_as, stored, query, message):
    login_as("auditor")
    before = stored()
    response = auth.post("/lookup", query)
    assert response.status_code == 400
    assert message in _text(response)
    _no_markup(response.get_data(as_text=True))
    assert stored() == before


@pytest.mark.parametrize(
    "path",
    [
        f"/batches?state={SCRIPT}&environment_id={HUGE}&page=-5",
        f"/batches?environment_id=-1&page={HUGE}",
        f"/corrections?before={HUGE}&since=garbage&until=2020-13-45&actor={SCRIPT}",
        f"/corrections?operation={SCRIPT}&before=-1",
        f"/audit?since=garbage&after=abc&actor={SCRIPT}&target_id={IMG}",
        f"/audit?page={HUGE}&action=%27%3B%20DROP%20TABLE%20audit_entries%3B--",
        f"/batches/1?q={SCRIPT}&page={HUGE}&ppage=-3",
        "/dashboard?next=javascript:alert(1)",
    ],
)
def test_hostile_filters_never_fail_and_are_escaped(client, login_as, upload, make_user, path):
    upload(make_user("officer"), "identity\nada@x.org\n")
    login_as("officer")
    response = client.get(path)
    assert response.status_code in {200, 400}, response.status_code
    _no_markup(response.get_data(as_text=True))


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"/batches/{HUGE}"),
        ("GET", f"/batches/{2**31}"),
        ("GET", f"/subjects/{HUGE}"),
        ("GET", f"/corrections/{HUGE}"),
        ("GET", f"/environments/{HUGE}"),
        ("GET", f"/batches/{HUGE}/problems.csv"),
        ("GET", f"/batches/{HUGE}/report.csv"),
        ("GET", f"/batches/{HUGE}/certificate.pdf"),
        ("POST", f"/batches/{HUGE}/approve"),
        ("POST", f"/batches/{HUGE}/rows/1/exclude"),
        ("POST", f"/batches/1/rows/{HUGE}/correct"),
        ("POST", f"/subjects/{HUGE}/extend"),
        ("POST", f"/corrections/{HUGE}/retry"),
    ],
)
def test_out_of_range_ids_are_404_pages(client, auth, login_as, stored, method, path):
    login_as("admin")
    before = stored()
    if method == "POST":
        response = auth.post(path, {}, form_page="/batches/new")
    else:
        response = client.get(path)
    assert response.status_code == 404
    assert "There is nothing here." in _text(response)
    assert stored() == before


def test_date_boxes_say_and_take_yyyy_mm_dd(client, login_as):
    """The browser's date picker shows the viewer's locale (mm/dd/yyyy); the desk's boxes say
    YYYY-MM-DD like every page, file and export."""
    login_as("auditor")
    page = client.get("/audit").get_data(as_text=True)
    assert 'type="date"' not in page
    assert 'placeholder="YYYY-MM-DD"' in page and 'id="since"' in page
    assert client.get("/audit?since=2026-01-31&until= 2026-02-01 ").status_code == 200
    refused = client.get("/audit?since=01/31/2026").get_data(as_text=True)
    assert "Write the date as YYYY-MM-DD" in refused
