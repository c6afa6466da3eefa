"""Issue 12, finding 7: malformed input is a 4xx, never a 500.

Replayed as found: lone UTF-16 surrogates in JSON bodies (`{"reason": "\\ud800 x"}`) on the
batch, environment and correction endpoints, and `GET /audit?before=99999999999999999999999` on
the page. Then a sweep: every GET route, with a huge integer and a surrogate in each query
parameter it reads, answers something other than a 500.
"""

from __future__ import annotations

import html
import re
from datetime import date

import corrections_helpers
import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from evidence_fixtures import signing_key_env  # noqa: F401
from flask import Request
from sqlmodel import select
from werkzeug.datastructures import ImmutableMultiDict

from webapp import forms
from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Correction, Environment, Subject

heap_env, paced = corrections_helpers.heap_env, corrections_helpers.paced
HUGE = "99999999999999999999999"  # the finding's number: past any 64-bit integer
SURROGATE_JSON = '"\\ud800 x"'  # a lone high surrogate, as JSON escapes it
# What a client sends for a surrogate in a URL: its WTF-8 bytes, which are not UTF-8.
SURROGATE_URL = "%ED%A0%80"


@pytest.fixture
def stored(app):
    """Rows of every table a request could write to."""

    def count() -> tuple[int, ...]:
        models = (Batch, Subject, Correction, Environment, AuditEntry)
        with app.app_context(), session_scope(write=False) as session:
            return tuple(session.exec(select(sa.func.count()).select_from(m)).one() for m in models)

    return count


def _bearer(api_token, role: str) -> dict:
    return {"Authorization": f"Bearer {api_token(role)}", "Content-Type": "application/json"}


@pytest.fixture
def awaiting(app, make_user, upload) -> int:
    """A batch awaiting approval, uploaded by another officer."""
    return upload(make_user("officer"), "identity\nada@example.org\n")


def _body(template: str) -> bytes:
    return template.replace("@S", SURROGATE_JSON).encode()


SURROGATE_BODIES = [
    # (id, path, raw JSON body; @S is the lone surrogate, @E the environment's id)
    ("reject-reason", "/batches/@B/reject", '{"reason": @S}'),
    ("environment-name", "/environments", '{"name": @S, "app_id": "42"}'),
    ("surrogate-as-a-key", "/environments", '{@S: 1, "name": "x", "app_id": "42"}'),
    ("identify", "/corrections/identify", '{"environment_id": @E, "user_id": "7", "identity": @S}'),
    (
        "user-properties",
        "/corrections/user-properties",
        '{"environment_id": @E, "identity": "ann@x.org", "properties": {"plan": @S}}',
    ),
    (
        "account-properties",
        "/corrections/account-properties",
        '{"environment_id": @E, "account_id": @S, "properties": {"plan": "pro"}}',
    ),
    (
        "link-account",
        "/corrections/link-account",
        '{"environment_id": @E, "identity": "ann@x.org", "account_id": @S}',
    ),
    ("events", "/corrections/events", '{"environment_id": @E, "event": @S, "identity": "a@x.org"}'),
    (
        "nested-deep-in-a-list",
        "/corrections/events",
        '{"environment_id": @E, "events": [{"event": "E", "identity": "a"}, '
        '{"event": "E", "identity": "b", "properties": {"k": [@S]}}]}',
    ),
]


@pytest.mark.parametrize(
    ("path", "template"), [c[1:] for c in SURROGATE_BODIES], ids=[c[0] for c in SURROGATE_BODIES]
)
def test_a_lone_surrogate_in_json_is_refused_and_stores_nothing(
    app, api_token, stored, awaiting, sandbox, heap_env, path, template
):
    role = "admin" if path == "/environments" else "officer"
    headers = _bearer(api_token, role)
    path = path.replace("@B", str(awaiting))
    data = _body(template).replace(b"@E", str(heap_env).encode())
    before = stored()
    response = app.test_client().post(f"/api/v1{path}", data=data, headers=headers)
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)
    message = response.json["error"]["message"]
    assert "lone UTF-16 surrogate (\\ud800)" in message
    assert stored() == before
    assert sandbox.state.request_paths() == []


def test_a_lone_surrogate_in_an_extension_is_refused(app, api_token, stored, upload, make_user):
    batch_id = upload(make_user("officer"), "identity\nada@example.org\n")
    with app.app_context(), session_scope(write=False) as session:
        subject_id = session.exec(select(Subject.id).where(Subject.batch_id == batch_id)).one()
    headers = _bearer(api_token, "officer")
    before = stored()
    body = (
        '{"months": 1, "reason": "\\udfff complex case", '
        f'"subject_informed_on": "{date.today().isoformat()}"}}'
    )
    response = app.test_client().post(
        f"/api/v1/subjects/{subject_id}/extend",
        data=body.encode(),
        headers=headers,
    )
    assert response.status_code == 400
    assert "lone UTF-16 surrogate (\\udfff)" in response.json["error"]["message"]
    assert stored() == before


def test_nul_is_refused_with_one_message_for_forms_and_json(app, client, login_as, api_token):
    """One checker: the form hook and the JSON bodies say the same thing about the same text."""
    login_as("officer")
    page = client.get("/lookup?kind=identity&value=ada%00")
    assert page.status_code == 400
    headers = _bearer(api_token, "admin")
    api = client.post(
        "/api/v1/environments", json={"name": "a\x00", "app_id": "4"}, headers=headers
    )
    assert api.status_code == 422
    expected = forms.unstorable_text("a\x00")
    assert expected and "NUL character" in expected
    assert expected in page.get_data(as_text=True)
    assert expected in api.json["error"]["message"]


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("plain text, accents é, emoji 🙂", None),
        ("a\x00b", "a NUL character (\\u0000)"),
        ("\ud800 x", "a lone UTF-16 surrogate (\\ud800)"),
        ({"k": ["ok", {"deep": "\udc00"}]}, "a lone UTF-16 surrogate (\\udc00)"),
        ({"\ud83d": "key"}, "a lone UTF-16 surrogate (\\ud83d)"),
        (["fine", 1, None, 2.5, True], None),
    ],
)
def test_the_one_checker_names_the_problem(value, named):
    found = forms.unstorable_text(value)
    if named is None:
        assert found is None
    else:
        assert named in found


def test_the_audit_page_with_a_huge_before_is_a_400(client, login_as):
    login_as("auditor")
    response = client.get(f"/audit?before={HUGE}")
    assert response.status_code == 400
    assert "'before' must be a whole number" in html.unescape(response.get_data(as_text=True))


# --- the sweep -----------------------------------------------------------------------------

READ: set[str] = set()


class _Recording(ImmutableMultiDict):
    """Query arguments that remember which names a view asked for."""

    def get(self, key, default=None, type=None):  # noqa: A002 (werkzeug's signature)
        READ.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):  # noqa: A002
        READ.add(key)
        return super().getlist(key, type)

    def __getitem__(self, key):
        READ.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        READ.add(key)
        return super().__contains__(key)


class _ProbeRequest(Request):
    parameter_storage_class = _Recording


# Parameters a route reads only once another is present (a search with a value, say).
PROBE = {"value": "x", "kind": "identity", "q": "x"}
PATH_VALUES = {"fmt": "jsonl"}


def _path(rule, ids: dict) -> str:
    path = rule.rule
    for name in rule.arguments:
        value = PATH_VALUES.get(name, str(ids.get(name, 1)))
        path = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, path)
    return path


def _query(args: dict) -> str:
    """A query string kept as written: the surrogate's bytes stay percent-encoded."""
    return "&".join(f"{name}={value}" for name, value in args.items())


def _get_routes(app):
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        yield rule


@pytest.fixture
def swept_desk(app, make_user, upload, complete_batch):
    """A desk with one of everything a page can show: a complete batch and its subjects."""
    batch_id = upload(make_user("officer"), "identity\nada@example.org\nbob@example.org\n")
    complete_batch(batch_id)
    with app.app_context(), session_scope(write=False) as session:
        subject_id = session.exec(select(Subject.id).where(Subject.batch_id == batch_id)).first()
    return {"batch_id": batch_id, "subject_id": subject_id}


def test_no_get_route_answers_500_to_a_huge_number_or_a_surrogate(
    app,
    auth,
    make_user,
    api_token,
    swept_desk,
    signing_key_env,  # noqa: F811 - after `app`: PostgreSQL installs must set a key (else 503)
):
    """Every page and API GET, with each query parameter it reads set to a huge integer and
    to a surrogate's bytes: a page, a redirect or a 4xx — never a 500."""
    app.request_class = _ProbeRequest
    admin = make_user("admin")
    assert auth.login(admin).status_code == 302
    client = auth.client
    token = {"Authorization": f"Bearer {api_token('admin')}"}
    failures, swept = [], 0
    for rule in _get_routes(app):
        path = _path(rule, swept_desk)
        headers = token if path.startswith("/api/") else {}
        READ.clear()
        first = client.get(f"{path}?{_query(PROBE)}", headers=headers)
        if first.status_code >= 500:
            failures.append((path, "probe", first.status_code))
        for name in sorted(READ):
            for bad in (HUGE, SURROGATE_URL, f"-{HUGE}", "1" + SURROGATE_URL):
                response = client.get(f"{path}?{_query(PROBE | {name: bad})}", headers=headers)
                swept += 1
                if response.status_code >= 500:
                    failures.append((path, f"{name}={bad}", response.status_code))
    assert swept > 50  # the probe found the parameters: the sweep is not empty
    assert failures == []
