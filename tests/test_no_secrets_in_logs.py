"""No raw identifier, API key, Heap token, desk token, password or session cookie in the logs.

An end-to-end slice runs with every logger at DEBUG — SQLAlchemy's statements and their
parameters, urllib3, the Heap client, the sandbox's access log, the desk's own modules — and
the captured text is searched for every secret the slice handled. The production access log
(gunicorn, webapp/serving.py) is rendered for a lookup to show it keeps no query string.
"""

from __future__ import annotations

import io
import logging
import re
from datetime import timedelta
from types import SimpleNamespace

import pytest
from conftest import PASSWORD
from gunicorn.config import Config
from gunicorn.glogging import Logger

from webapp import serving
from webapp.erasure import lookup, polling, submission
from webapp.models import utcnow

API_KEY = "heap-deletion-key-7e1f0c2a9b"  # noqa: S105 - the test's own fake key
WRONG_PASSWORD = "not-the-password-5d2c81"  # noqa: S105
SUBJECT = "log.alpha.subject@example.org"
USER_ID = "7301234567891"
MALFORMED = "log.bravo.subject@example.org"
LOOKED_UP = "log.charlie.never.uploaded@example.org"
CORRECTED = "log.delta.corrected@example.org"
PROPERTY = "loyalty-card-4929-1234-5678"
DRAFTED = "log.echo.drafted.by.assistant@example.org"


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class Secrets:
    """Every secret the slice handles, gathered as it goes."""

    def __init__(self, app) -> None:
        config = app.config
        self.values = {
            "password": PASSWORD,
            "wrong password": WRONG_PASSWORD,
            "api key": API_KEY,
            "secret key": config["SECRET_KEY"],
            "fingerprint key": config["DESK_FINGERPRINT_KEY"],
            **{f"encryption key {i}": k for i, k in enumerate(config["DESK_ENCRYPTION_KEYS"])},
            "uploaded identity": SUBJECT,
            "uploaded user_id": USER_ID,
            "malformed row's identity": MALFORMED,
            "looked-up identity": LOOKED_UP,
            "corrected identity": CORRECTED,
            "property value": PROPERTY,
            "identity an assistant drafted": DRAFTED,
        }
        self.app = app

    def add(self, name: str, value: str) -> None:
        self.values[name] = value

    def session_of(self, client, who: str) -> None:
        """The signed cookie and the server-side session token inside it."""
        cookie = client.get_cookie("desk_session").value
        serializer = self.app.session_interface.get_signing_serializer(self.app)
        self.add(f"{who} session cookie", cookie)
        self.add(f"{who} session token", serializer.loads(cookie)["_user_id"])


@pytest.fixture
def heap_tokens(sandbox, monkeypatch) -> list[str]:
    """Every access token the sandbox issues (kept even after it expires)."""
    issued: list[str] = []
    issue = sandbox.state.issue_token

    def recording(app_id: str, api_key: str) -> str | None:
        token = issue(app_id, api_key)
        if token:
            issued.append(token)
        return token

    monkeypatch.setattr(sandbox.state, "issue_token", recording)
    return issued


def test_an_end_to_end_slice_logs_no_secret(
    app, client, auth, make_user, api_token, sandbox, heap_tokens, caplog, monkeypatch
):
    # Every logger at DEBUG: the root, and those that set their own level (SQLAlchemy's WARN).
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        caplog.set_level(logging.DEBUG, logger=name)
    secrets = Secrets(app)
    sandbox.configure(api_key=API_KEY)
    admin, uploader = make_user("admin"), make_user("officer")
    tokens = {role: api_token(role) for role in ("admin", "officer", "auditor")}
    for role, token in tokens.items():
        secrets.add(f"{role} API token", token)

    # An admin registers Main Production (API key) over the API and tests it on its page.
    created = client.post(
        "/api/v1/environments",
        json={
            "name": "Main Production",
            "app_id": sandbox.app_id,
            "base_url": sandbox.url,
            "main_production": True,
            "api_key": API_KEY,
            "account_property": "account_id",
        },
        headers=_bearer(tokens["admin"]),
    )
    env_id = created.json["id"]
    auth.login(admin)
    secrets.session_of(client, "admin")
    auth.post(f"/environments/{env_id}/test", form_page="/environments")
    auth.logout()

    # A wrong password, a password typed into the e-mail box, a data subject's e-mail.
    auth.login(uploader, WRONG_PASSWORD)
    auth.login(WRONG_PASSWORD, WRONG_PASSWORD)
    auth.login(SUBJECT, PASSWORD)

    # An officer uploads on the page (a valid, a duplicate and a malformed row) and looks up.
    auth.login(uploader)
    secrets.session_of(client, "officer")
    csv_text = f"identity,user_id\n{SUBJECT},\n,{USER_ID}\n{SUBJECT},\n{MALFORMED},42\n"
    form = {
        "environment_id": str(env_id),
        "file": (io.BytesIO(csv_text.encode()), "subjects.csv"),
        "paste_kind": "identity",
    }
    uploaded = auth.post("/batches/new", form, content_type="multipart/form-data")
    batch_id = int(re.fullmatch(r"/batches/(\d+)", uploaded.location).group(1))
    client.get(uploaded.location)
    client.get("/lookup", query_string={"kind": "identity", "value": LOOKED_UP})
    auth.logout()

    # Another officer approves over the API; the jobs submit (a 429 first) and poll to complete.
    approved = client.post(
        f"/api/v1/batches/{batch_id}/approve", headers=_bearer(tokens["officer"])
    )
    assert approved.status_code == 200, approved.json
    sandbox.add_faults({"kind": "429", "path": "/user_deletion", "retry_after": 0})
    assert submission.submit_due(app) == 0  # Heap said 429: the batch waits to retry
    assert submission.submit_due(app, now=utcnow() + timedelta(hours=1)) == 1
    sandbox.state.complete()
    assert polling.poll_due(app, now=utcnow() + timedelta(days=1)) == 1

    # Lookups, a correction, the report, and a crash on a lookup carrying an identifier.
    auditor = _bearer(tokens["auditor"])
    for query in ({"identity": SUBJECT}, {"user_id": USER_ID}):
        found = client.get("/api/v1/subjects/lookup", query_string=query, headers=auditor)
        assert found.json["deleted"] is True
    corrected = client.post(
        "/api/v1/corrections/user-properties",
        json={"environment_id": env_id, "identity": CORRECTED, "properties": {"card": PROPERTY}},
        headers=_bearer(tokens["officer"]),
    )
    assert corrected.status_code == 201, corrected.json
    report = client.get(f"/api/v1/batches/{batch_id}/report.csv", headers=auditor)
    assert SUBJECT in report.get_data(as_text=True)

    # An assistant over MCP (/mcp, JSON-RPC as the SDK sends it) drafts and looks someone up.
    for number, (tool, arguments) in enumerate(
        [
            ("draft_deletion_batch", {"environment_id": env_id, "identities": [DRAFTED]}),
            ("lookup_subject", {"environment_id": env_id, "identity": DRAFTED}),
        ]
    ):
        call = {"name": tool, "arguments": arguments}
        answered = client.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": number, "method": "tools/call", "params": call},
            headers={**_bearer(tokens["officer"]), "Accept": "application/json, text/event-stream"},
        )
        assert answered.json["result"]["isError"] is False, answered.json
    app.extensions["desk_mcp"].close()

    def crash(*_args, **_kwargs):
        raise RuntimeError("lookup failed")

    monkeypatch.setattr(lookup, "lookup", crash)
    failed = client.get(
        "/api/v1/subjects/lookup", query_string={"identity": SUBJECT}, headers=auditor
    )
    assert failed.status_code == 500

    assert len(heap_tokens) >= 3  # connection test, submission, polling, correction
    for number, token in enumerate(heap_tokens):
        secrets.add(f"Heap access token {number}", token)
    logged = caplog.text + "\n".join(str(record.args) for record in caplog.records if record.args)
    # The slice did log — SQL with its parameters, Heap calls, jobs and the crash — ...
    for expected in (
        "INSERT INTO subjects",
        "heap delete_users: HTTP 429",
        "heap delete_users: HTTP 201",
        "polled 1 Heap deletion request(s)",
        "unhandled error on GET /api/v1/subjects/lookup",
        "sandbox info",
    ):
        assert expected in logged, expected
    # ... and none of it carries a secret.
    leaked = {name for name, value in secrets.values.items() if value in logged}
    assert leaked == set()


def test_the_access_log_keeps_paths_not_query_strings_or_credentials(app, monkeypatch):
    options = {}

    class Server:
        def __init__(self, _app, given: dict) -> None:
            options.update(given)

        def run(self) -> None:
            """Not served: the options are what this test reads."""

    monkeypatch.setattr(serving, "DeskServer", Server)
    serving.run_gunicorn(app, bind="127.0.0.1:0", workers=1, threads=1)
    logger = Logger(Config())
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/api/v1/subjects/lookup?identity={SUBJECT}",
        "PATH_INFO": "/api/v1/subjects/lookup",
        "QUERY_STRING": f"identity={SUBJECT}",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_REFERER": f"http://127.0.0.1:8000/lookup?value={SUBJECT}",
    }
    request = SimpleNamespace(
        headers=[("AUTHORIZATION", "Bearer desk_secret"), ("COOKIE", "desk_session=secret")]
    )
    response = SimpleNamespace(status="200 OK", sent=512, headers=[])
    atoms = logger.atoms(response, request, environ, timedelta(milliseconds=12))
    line = options["access_log_format"] % logger.atoms_wrapper_class(atoms)
    assert line == '127.0.0.1 "GET /api/v1/subjects/lookup" 200 512 12ms'
    assert SUBJECT not in line and "secret" not in line
