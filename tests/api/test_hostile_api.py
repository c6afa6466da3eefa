"""Hostile API input beyond uploads: wrong types, huge numbers, control characters, NUL,
deep nesting, hostile URLs, garbage filters and out-of-range ids.

Each is a clear 4xx in the {"error": {"code", "message"}} shape — never a 500 — and stores
nothing: no batch, subject, correction, environment or audit entry, and no call to Heap.
tests/corrections/test_service.py checks Heap's rules on the planner and
tests/api/test_corrections_api.py the options; these come over HTTP with the shapes an attacker
would send.
"""

from __future__ import annotations

import io

import corrections_helpers
import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Correction, Environment, Subject

# The sandbox environment of the corrections tests (their helpers also define a plain make_env).
heap_env, paced = corrections_helpers.heap_env, corrections_helpers.paced
HUGE = "9" * 30  # past any database integer
ENV = "<environment_id>"  # replaced by the sandbox environment's id


@pytest.fixture
def stored(app):
    """Rows of every table a request could write to, and Heap calls made."""

    def count() -> tuple[int, ...]:
        with app.app_context(), session_scope(write=False) as session:
            models = (Batch, Subject, Correction, Environment, AuditEntry)
            return tuple(session.exec(select(sa.func.count()).select_from(m)).one() for m in models)

    return count


@pytest.fixture
def caller(app, api_token):
    """caller(role, env=None) → call(method, path, **kw) with a bearer token of `role`;
    ENV in a JSON body (or b"%s" in a raw one) becomes `env`."""

    def make(role: str, env: int | None = None):
        headers = {"Authorization": f"Bearer {api_token(role)}"}
        client = app.test_client()

        def fill(value):
            if isinstance(value, dict):
                return {key: fill(item) for key, item in value.items()}
            if isinstance(value, list):
                return [fill(item) for item in value]
            return env if value == ENV else value

        def call(method: str, path: str, **kw):
            if "json" in kw:
                kw["json"] = fill(kw["json"])
            if isinstance(kw.get("data"), bytes):
                kw["data"] = kw["data"].replace(b"%s", str(env).encode())
            return client.open(f"/api/v1{path}", method=method, headers=headers, **kw)

        return call

    return make


def _props(**extra):
    return {"environment_id": ENV, "identity": "ann@x.org", "properties": {"plan": "pro"}} | extra


def _raw(text: str | bytes) -> dict:
    """A body sent as it is (b"%s" becomes the environment's id)."""
    data = text.encode() if isinstance(text, str) else text
    return {"data": data, "content_type": "application/json"}


NOT_AN_OBJECT = "The body is not a JSON object."
NOT_TEXT = "The identity must be text."
ENV_ID = "'environment_id' must be the environment's numeric id."
NUL = "must not contain NUL characters"
CONTROL = "contains control characters (a line break, tab or NUL)"
OFFICER_POST = [
    # (id, path, request keywords, message) — each answered 422 "invalid".
    ("array-body", "/corrections/user-properties", {"json": [1, 2]}, NOT_AN_OBJECT),
    ("string-body", "/corrections/identify", {"json": "identify me"}, NOT_AN_OBJECT),
    ("null-body", "/corrections/identify", _raw("null"), NOT_AN_OBJECT),
    ("broken-json", "/corrections/identify", _raw('{"user_id": '), "The body is not valid JSON."),
    ("5000-digit-number", "/corrections/identify", _raw("9" * 5000), "not valid JSON"),
    ("nested-100k-deep", "/corrections/events", _raw("[" * 100_000 + "]" * 100_000), "deeply"),
    ("latin1-body", "/corrections/identify", _raw(b'{"identity": "Jos\xe9"}'), "not valid JSON"),
    (
        "form-encoded",
        "/corrections/identify",
        {"data": {"user_id": "1", "identity": "a"}},
        "Send a JSON object with 'Content-Type: application/json'.",
    ),
    ("env-bool", "/corrections/user-properties", {"json": _props(environment_id=True)}, ENV_ID),
    ("env-2^70", "/corrections/user-properties", {"json": _props(environment_id=2**70)}, ENV_ID),
    ("env-negative", "/corrections/user-properties", {"json": _props(environment_id=-1)}, ENV_ID),
    # 1.0 is the whole number 1 in JSON Schema (taken); 1.5 is no id.
    ("env-float", "/corrections/user-properties", {"json": _props(environment_id=1.5)}, ENV_ID),
    (
        "confirm-as-text",
        "/corrections/user-properties",
        {"json": _props(confirm_warnings="yes")},
        "'confirm_warnings' and 'preview' must be true or false.",
    ),
    (
        "properties-array",
        "/corrections/user-properties",
        {"json": _props(properties=[{"plan": "pro"}])},
        "The properties must be an object.",
    ),
    (
        "property-nested-object",
        "/corrections/user-properties",
        {"json": _props(properties={"plan": {"tier": "pro"}})},
        "Property 'plan' must be text or a number.",
    ),
    (
        "property-list-value",
        "/corrections/account-properties",
        {"json": {"environment_id": ENV, "account_id": "acme", "properties": {"seats": [1]}}},
        "Property 'seats' must be text or a number.",
    ),
    ("identity-bool", "/corrections/user-properties", {"json": _props(identity=True)}, NOT_TEXT),
    (
        "identity-list",
        "/corrections/link-account",
        {"json": {"environment_id": ENV, "identity": ["a"], "account_id": "acme"}},
        NOT_TEXT,
    ),
    (
        "identity-object",
        "/corrections/identify",
        {"json": {"environment_id": ENV, "user_id": "7", "identity": {"$ne": None}}},
        NOT_TEXT,
    ),
    (
        "nulls",
        "/corrections/user-properties",
        {"json": _props(identity=None, properties=None)},
        "Enter the identity. The properties must be an object.",
    ),
    (
        "user-id-float",
        "/corrections/identify",
        {"json": {"environment_id": ENV, "user_id": 1e5 + 0.5, "identity": "ann@x.org"}},
        "The user_id must be a whole number.",
    ),
    (
        "events-user-id-float",
        "/corrections/events",
        {"json": {"environment_id": ENV, "event": "Visit", "user_id": 8807.5}},
        "The user_id must be a whole number.",
    ),
    (
        "user-id-2^53",
        "/corrections/identify",
        {"json": {"environment_id": ENV, "user_id": 2**53, "identity": "ann@x.org"}},
        "The user_id is larger than 9007199254740991 (2^53-1).",
    ),
    (
        "user-id-negative",
        "/corrections/events",
        {"json": {"environment_id": ENV, "event": "E", "user_id": -1}},
        "The user_id must not be negative.",
    ),
    (
        "property-huge-int",
        "/corrections/user-properties",
        {"json": _props(properties={"account_number": 10**20})},
        "Property “account_number” is a whole number beyond ±2^53-1",
    ),
    (
        "property-infinity",
        "/corrections/user-properties",
        _raw('{"environment_id": %s, "identity": "a", "properties": {"n": 1e999}}'),
        "Property 'n' must be a finite number.",
    ),
    (
        "property-nan",
        "/corrections/user-properties",
        _raw('{"environment_id": %s, "identity": "a", "properties": {"n": NaN}}'),
        "Property 'n' must be a finite number.",
    ),
    ("identity-nul", "/corrections/user-properties", {"json": _props(identity="a\x00b")}, NUL),
    (
        "identity-bell",
        "/corrections/user-properties",
        {"json": _props(identity="ann\x07@x.org")},
        f"The identity {CONTROL}",
    ),
    (
        "identity-line-break",
        "/corrections/identify",
        {"json": {"environment_id": ENV, "user_id": "7", "identity": "ann@x.org\r\n"}},
        f"The identity {CONTROL}",
    ),
    (
        "property-name-escape",
        "/corrections/user-properties",
        {"json": _props(properties={"plan\x1b[2J": "pro"})},
        f"The property name {CONTROL}",
    ),
    (
        "property-value-nul",
        "/corrections/user-properties",
        {"json": _props(properties={"plan": "pro\x00"})},
        NUL,
    ),
    (
        "property-key-nul",
        "/corrections/account-properties",
        {"json": {"environment_id": ENV, "account_id": "a", "properties": {"\x00": "x"}}},
        NUL,
    ),
    (
        "event-name-line-break",
        "/corrections/events",
        {"json": {"environment_id": ENV, "event": "Refund\n", "identity": "ann@x.org"}},
        f"The event name {CONTROL}",
    ),
    (
        "account-id-tab",
        "/corrections/link-account",
        {"json": {"environment_id": ENV, "identity": "ann@x.org", "account_id": "ac\tme"}},
        f"The account_id {CONTROL}",
    ),
    (
        "bulk-row-3-control",
        "/corrections/user-properties",
        {
            "json": {
                "environment_id": ENV,
                "users": [
                    {"identity": f"u{i}\x7f" if i == 3 else f"u{i}", "properties": {"a": 1}}
                    for i in range(1, 5)
                ],
            }
        },
        f"Row 3: the identity {CONTROL}",
    ),
    (
        "bulk-1001-last-invalid",
        "/corrections/events",
        {
            "json": {
                "environment_id": ENV,
                "events": [{"event": "E", "identity": f"p{i}"} for i in range(1000)]
                + [{"event": "E"}],
            }
        },
        "Row 1001: give exactly one of identity or user_id",
    ),
    (
        "bulk-not-a-list",
        "/corrections/events",
        {"json": {"environment_id": ENV, "events": {"event": "E"}}},
        "“events” must be a non-empty list.",
    ),
    (
        "bulk-of-strings",
        "/corrections/user-properties",
        {"json": {"environment_id": ENV, "users": ["ann@x.org"]}},
        "Row 1: each item must be an object.",
    ),
    (
        "override-10kb",
        "/corrections/user-properties",
        {"json": _props(override_reason="x" * 10_000)},
        "The override reason is over 2000 characters.",
    ),
    (
        "override-nul",
        "/corrections/user-properties",
        {"json": _props(override_reason="ticket\x00")},
        NUL,
    ),
]


@pytest.mark.parametrize(
    ("path", "kw", "message"), [c[1:] for c in OFFICER_POST], ids=[c[0] for c in OFFICER_POST]
)
def test_hostile_correction_bodies_are_422_and_send_nothing(
    caller, stored, sandbox, heap_env, path, kw, message
):
    call = caller("officer", heap_env)
    before = stored()
    response = call("POST", path, **kw)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid"
    assert message in response.json["error"]["message"]
    assert stored() == before
    assert sandbox.state.request_paths() == []


def test_a_1001_item_bulk_goes_in_two_requests(caller, sandbox, heap_env):
    events = [{"event": "Refund", "identity": f"p{i}@x.org"} for i in range(1001)]
    response = caller("officer", heap_env)(
        "POST", "/corrections/events", json={"environment_id": ENV, "events": events}
    )
    assert response.status_code == 201, response.json
    assert [c["items"] for c in response.json["calls"]] == [1000, 1]
    assert response.json["state"] == "succeeded"


URLS = [
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "https://heapanalytics.com@evil.example",
    "https://user:secret@heapanalytics.com",
    "http://127.0.0.1:80@evil.example/",
    "https://evil.example\\@heapanalytics.com",
    "https://heapanalytics.com/?next=https://evil.example",
    "http://heapanalytics.com",
    "gopher://127.0.0.1:6379/_FLUSHALL",
]
ENV_BODIES = [({"base_url": url}, "This base URL is not allowed (") for url in URLS] + [
    ({"name": "a\x00b"}, NUL),
    ({"name": "n" * 10_000}, "The name must be 1 to 100 characters."),
    ({"name": ["Main"]}, "'name' must be a string."),
    ({"app_id": 3000610572}, "'app_id' must be a string."),
    ({"app_id": "1; DROP TABLE environments"}, "The app_id must be the environment's numeric id"),
    ({"main_production": "true"}, "'main_production' must be true or false."),
    ({"api_key": "key\x00"}, NUL),
    ({"region": "<b>us</b>"}, "The region must be 'us' or 'eu'."),
    ({"account_property": "ID"}, "Heap forbids a property named 'id'."),
    # Found by schemathesis: a 256-character property was stored on SQLite (PostgreSQL: 500).
    ({"account_property": "0" * 256}, "The account property must be at most 255 characters."),
    (
        {"base_url": "https://heapanalytics.com/" + "a" * 480},
        "The base URL must be at most 500 characters.",
    ),
    ({"__proto__": {"admin": True}}, "Unknown field(s): __proto__."),
]


@pytest.mark.parametrize(
    ("fields", "message"), ENV_BODIES, ids=[str(i) for i in range(len(ENV_BODIES))]
)
def test_hostile_environments_are_refused(caller, stored, fields, message):
    call = caller("admin")
    before = stored()
    body = {"name": "Hostile", "app_id": "3000610572"} | fields
    response = call("POST", "/environments", json=body)
    assert response.status_code == 422, response.json
    assert response.json["error"]["code"] == "invalid"
    assert message in response.json["error"]["message"]
    assert stored() == before


def test_an_environment_named_like_a_script_is_stored_and_escaped(caller, client, login_as):
    name = '<script>alert(1)</script>"><img src=x onerror=alert(1)>'
    created = caller("admin")("POST", "/environments", json={"name": name, "app_id": "42"})
    assert created.status_code == 201 and created.json["name"] == name
    login_as("admin")
    pages = ("/environments", f"/environments/{created.json['id']}", "/corrections/identify")
    for path in pages:
        body = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)" not in body and "<img src=x" not in body, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body, path


QUERIES = [
    # (id, path, status, code, message)
    (
        "audit-since-garbage",
        "/audit?since=garbage",
        400,
        "bad_request",
        "'since' must be an ISO 8601",
    ),
    (
        "audit-until-month-13",
        "/audit?until=2020-13-45",
        400,
        "bad_request",
        "'until' must be an ISO",
    ),
    ("audit-since-naive", "/audit?since=2024-01-01T00:00", 400, "bad_request", "needs a time zone"),
    (
        "audit-limit-negative",
        "/audit?limit=-1",
        400,
        "bad_request",
        "'limit' must be a whole number",
    ),
    ("audit-limit-zero", "/audit?limit=0", 400, "bad_request", "'limit' must be a whole number"),
    ("audit-limit-text", "/audit?limit=ten", 400, "bad_request", "'limit' must be a whole number"),
    ("audit-after-text", "/audit?after=abc", 400, "bad_request", "'after' must be a whole number"),
    ("audit-after-negative", "/audit?after=-1", 400, "bad_request", "from 0 to 2147483647"),
    ("audit-after-huge", f"/audit?after={HUGE}", 400, "bad_request", "from 0 to 2147483647"),
    ("audit-actor-nul", "/audit?actor=a%00b", 400, "bad_request", "NUL character"),
    ("audit-target-nul", "/audit?target_id=%00", 400, "bad_request", "NUL character"),
    ("audit-csv-since", "/audit/export.csv?since=yesterday", 400, "bad_request", "ISO 8601"),
    ("audit-jsonl-until", "/audit/export.jsonl?until=-1", 400, "bad_request", "ISO 8601"),
    ("corrections-before-huge", f"/corrections?before={HUGE}", 422, "invalid", "'before'"),
    ("corrections-limit-neg", "/corrections?limit=-5", 422, "invalid", "'limit' must be a whole"),
    ("corrections-actor-nul", "/corrections?actor=%00", 400, "bad_request", "NUL character"),
    ("batches-env-huge", f"/batches?environment_id={HUGE}", 400, "bad_request", "'environment_id'"),
    ("batches-page-zero", "/batches?page=0", 400, "bad_request", "'page' must be a whole number"),
    ("batches-per-page-text", "/batches?per_page=all", 400, "bad_request", "'per_page'"),
    ("lookup-empty", "/subjects/lookup?identity=", 400, "invalid", "identity must not be empty"),
    ("lookup-256", "/subjects/lookup?identity=" + "x" * 256, 400, "invalid", "longer than 255"),
    ("lookup-10k", "/subjects/lookup?identity=" + "x" * 10_000, 400, "invalid", "longer than 255"),
    ("lookup-user-id-10k", "/subjects/lookup?user_id=" + "9" * 10_000, 400, "invalid", "digits"),
    ("lookup-user-id-empty", "/subjects/lookup?user_id=", 400, "invalid", "digits only"),
    ("lookup-user-id-2^53", f"/subjects/lookup?user_id={2**53}", 400, "invalid", "2^53-1"),
    ("lookup-both", "/subjects/lookup?identity=a&user_id=1", 400, "bad_request", "exactly one"),
    ("lookup-nul", "/subjects/lookup?identity=ada%00@x.org", 400, "bad_request", "NUL character"),
    (
        "lookup-env-huge",
        f"/subjects/lookup?identity=a&environment_id={HUGE}",
        400,
        "bad_request",
        "'environment_id' must be a whole number",
    ),
    ("batch-id-huge", f"/batches/{HUGE}", 404, "not_found", "There is nothing here."),
    ("subject-id-huge", f"/subjects/{HUGE}", 404, "not_found", "There is nothing here."),
    ("correction-id-huge", f"/corrections/{HUGE}", 404, "not_found", "There is nothing here."),
    ("report-id-huge", f"/batches/{2**31}/report.csv", 404, "not_found", "nothing here"),
]


@pytest.mark.parametrize(
    ("path", "status", "code", "message"), [q[1:] for q in QUERIES], ids=[q[0] for q in QUERIES]
)
def test_hostile_queries_are_clear_4xx_and_store_nothing(
    caller, stored, path, status, code, message
):
    call = caller("auditor")
    before = stored()
    response = call("GET", path)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.json["error"]["code"] == code
    assert message in response.json["error"]["message"]
    assert stored() == before  # a refused lookup is not audited either


WORKFLOW = [
    # (id, path, request keywords, status, message)
    (
        "extend-months-text",
        "/subjects/{subject}/extend",
        {"json": {"months": "1"}},
        400,
        "'months' must be 1 or 2.",
    ),
    (
        "extend-months-bool",
        "/subjects/{subject}/extend",
        {"json": {"months": True}},
        400,
        "'months'",
    ),
    (
        "extend-reason-list",
        "/subjects/{subject}/extend",
        {"json": {"months": 1, "reason": ["complex"]}},
        400,
        "'reason' must be a string.",
    ),
    (
        "extend-reason-nul",
        "/subjects/{subject}/extend",
        {"json": {"months": 1, "reason": "x\x00", "subject_informed_on": "2025-01-01"}},
        400,
        NUL,
    ),
    (
        "extend-date-garbage",
        "/subjects/{subject}/extend",
        {"json": {"months": 1, "reason": "complex", "subject_informed_on": "99999-01-01"}},
        400,
        "'subject_informed_on' must be a date in the form YYYY-MM-DD.",
    ),
    (
        "approve-sha-list",
        "/batches/{batch}/approve",
        {"json": {"sha256": ["0"]}},
        400,
        "'sha256' must be a string.",
    ),
    ("approve-array", "/batches/{batch}/approve", {"json": []}, 400, NOT_AN_OBJECT),
    (
        "reject-reason-object",
        "/batches/{batch}/reject",
        {"json": {"reason": {}}},
        400,
        "'reason' must be a string.",
    ),
    ("approve-id-huge", f"/batches/{HUGE}/approve", {"json": {}}, 404, "There is nothing here."),
    ("extend-id-huge", f"/subjects/{HUGE}/extend", {"json": {}}, 404, "There is nothing here."),
    ("retry-correction-huge", f"/corrections/{HUGE}/retry", {}, 404, "There is nothing here."),
]


@pytest.mark.parametrize(
    ("path", "kw", "status", "message"), [w[1:] for w in WORKFLOW], ids=[w[0] for w in WORKFLOW]
)
def test_hostile_workflow_bodies_change_nothing(
    app, caller, stored, upload, make_user, path, kw, status, message
):
    batch_id = upload(make_user("officer"), "identity\nada@x.org\n")
    with app.app_context(), session_scope(write=False) as session:
        subject_id = session.exec(select(Subject.id)).one()
    path = path.replace("{batch}", str(batch_id)).replace("{subject}", str(subject_id))
    call = caller("officer")
    before = stored()
    response = call("POST", path, **kw)
    assert response.status_code == status, response.json
    assert message in response.json["error"]["message"]
    assert set(response.json["error"]) == {"code", "message"}
    assert stored() == before


UPLOAD_FIELDS = [
    ({"environment_id": HUGE}, "Send 'environment_id', the id of the Heap environment."),
    ({"environment_id": "-1"}, "Send 'environment_id'"),
    ({"environment_id": "1e3"}, "Send 'environment_id'"),
    ({"reference": "r" * 256}, "The reference must be at most 255 characters."),
    ({"reference": "T-1\x00"}, "NUL character"),
    ({"received_on": "2025-02-30"}, "'received_on' must be a date in the form YYYY-MM-DD."),
    ({"received_on": "0000-01-01"}, "YYYY-MM-DD"),
]


@pytest.mark.parametrize(
    ("fields", "message"), UPLOAD_FIELDS, ids=[str(i) for i in range(len(UPLOAD_FIELDS))]
)
def test_hostile_upload_fields_store_nothing(caller, stored, env_id, fields, message):
    call = caller("officer")
    before = stored()
    form = {"environment_id": str(env_id), "file": (io.BytesIO(b"identity\nbob@x.org\n"), "l.csv")}
    response = call("POST", "/batches", data=form | fields, content_type="multipart/form-data")
    assert response.status_code == 400, response.json
    assert message in response.json["error"]["message"]
    assert stored() == before
