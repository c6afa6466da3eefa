"""The sandbox itself, spoken to with plain HTTP: is it faithful to heap-api.md?"""

from __future__ import annotations

import json
import time

import pytest
import requests
from click.testing import CliRunner

from webapp.sandbox import DEFAULT_API_KEY, DEFAULT_APP_ID, start_sandbox
from webapp.sandbox.cli import sandbox_command

APP_ID = DEFAULT_APP_ID


@pytest.fixture
def heap(sandbox):
    """POST/GET helpers against the sandbox."""

    class Heap:
        url = sandbox.url

        def post(self, path: str, body=None, **kwargs) -> requests.Response:
            if body is not None and not isinstance(body, bytes | str):
                kwargs["json"] = body
            elif body is not None:
                kwargs["data"] = body
            return requests.post(sandbox.url + path, timeout=5, **kwargs)

        def get(self, path: str, **kwargs) -> requests.Response:
            return requests.get(sandbox.url + path, timeout=5, **kwargs)

        def token(self) -> str:
            response = self.post("/api/public/v0/auth_token", auth=(APP_ID, DEFAULT_API_KEY))
            return response.json()["access_token"]

        def bearer(self) -> dict[str, str]:
            return {"Authorization": f"Bearer {self.token()}"}

    return Heap()


# ----- ingestion rules ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/api/track", {"event": "e", "identity": "a"}, "app_id is required"),
        ("/api/track", {"app_id": "abc", "event": "e", "identity": "a"}, "string of digits"),
        ("/api/track", {"app_id": 3000610572, "event": "e", "identity": "a"}, "string of digits"),
        ("/api/track", b"{not json", "Invalid JSON body"),
        ("/api/track", {"app_id": APP_ID, "event": "e"}, "exactly one of identity or user_id"),
        ("/api/track", {"app_id": APP_ID, "event": "e", "identity": "a", "user_id": "1"},
         "exactly one"),
        ("/api/track", {"app_id": APP_ID, "event": "e", "identity": "x" * 256}, "longer than 255"),
        ("/api/track", {"app_id": APP_ID, "event": "", "identity": "a"}, "event is required"),
        ("/api/track", {"app_id": APP_ID, "event": "e" * 1025, "identity": "a"},
         "longer than 1024"),
        ("/api/track", {"app_id": APP_ID, "event": "e", "user_id": "-3"}, "between 0 and 2^53-1"),
        ("/api/track", {"app_id": APP_ID, "event": "e", "user_id": 2**53}, "between 0 and 2^53-1"),
        ("/api/track", {"app_id": APP_ID, "events": [{"event": "e", "identity": "a"}] * 1001},
         "maximum is 1000"),
        ("/api/track",
         {"app_id": APP_ID, "events": [{"event": "e", "identity": "a"}, {"event": "e"}]},
         "events[1]: send exactly one"),
        ("/api/add_user_properties", {"app_id": APP_ID, "identity": "a", "properties": {"ID": 1}},
         "'ID' is not allowed"),
        ("/api/add_user_properties", {"app_id": APP_ID, "identity": "a", "properties": {"p": True}},
         "string or a number"),
        ("/api/add_user_properties", {"app_id": APP_ID, "users": [{"identity": "a"}] * 1001},
         "maximum is 1000"),
        ("/api/add_account_properties",
         {"app_id": APP_ID, "account_id": "c", "properties": {"p": 1},
          "accounts": [{"account_id": "d", "properties": {"p": 1}}]},
         "either account_id or accounts, not both"),
        ("/api/add_account_properties", {"app_id": APP_ID, "properties": {"p": 1}},
         "account_id is required"),
        ("/api/v1/identify", {"app_id": APP_ID, "identity": "a"},
         "needs both user_id and identity"),
    ],
)  # fmt: skip
def test_ingestion_rule_violations_are_400_text(heap, sandbox, path, body, message):
    response = heap.post(path, body)
    assert response.status_code == 400
    assert response.headers["Content-Type"].startswith("text/plain")
    assert message in response.text
    assert sandbox.state.snapshot()["environments"] == {}, "nothing was stored"


def test_ingestion_success_bodies(heap):
    track = heap.post("/api/track", {"app_id": "42", "event": "e", "identity": "a"})
    assert (track.status_code, track.text) == (200, "")
    identify = heap.post("/api/v1/identify", {"app_id": "42", "user_id": "1", "identity": "a"})
    assert (identify.status_code, identify.json()) == (200, {})
    account = heap.post(
        "/api/add_account_properties",
        {"app_id": "42", "account_id": "c", "properties": {"p": 1}},
    )
    assert (account.status_code, account.text) == (200, "OK")
    assert account.headers["Content-Type"].startswith("text/plain")


def test_any_numeric_app_id_is_accepted_and_kept_apart(heap, sandbox):
    heap.post("/api/track", {"app_id": "1", "event": "e", "identity": "a"})
    heap.post("/api/track", {"app_id": "2", "event": "e", "identity": "b"})
    assert set(sandbox.state.snapshot()["environments"]) == {"1", "2"}


def test_arrays_are_joined_and_long_values_cut(heap, sandbox):
    heap.post(
        "/api/add_user_properties",
        {"app_id": APP_ID, "identity": "a", "properties": {"tags": ["x", 2], "bio": "b" * 2000}},
    )
    properties = sandbox.state.users()["a"]["properties"]
    assert properties["tags"] == "x||2" and len(properties["bio"]) == 1024


def test_idempotency_key_first_write_wins(heap, sandbox):
    for name in ("first", "second"):
        body = {"app_id": APP_ID, "event": name, "identity": "a", "idempotency_key": "k"}
        assert heap.post("/api/track", body).status_code == 200
    assert [e["event"] for e in sandbox.state.users()["a"]["events"]] == ["first"]
    assert "idempotency_key already seen" in sandbox.state.snapshot()["requests"][-1]["notes"][0]


@pytest.mark.parametrize(
    "path,body",
    [
        ("/api/track", {"app_id": APP_ID, "event": "e", "identity": "a"}),
        ("/api/v1/identify", {"app_id": APP_ID, "user_id": "1", "identity": "a"}),
        ("/api/add_user_properties", {"app_id": APP_ID, "identity": "a", "properties": {"p": 1}}),
    ],
)
def test_rate_limit_30_per_30_seconds_per_identity(heap, sandbox, sandbox_clock, path, body):
    statuses = [heap.post(path, body).status_code for _ in range(31)]
    assert statuses == [200] * 30 + [429]
    limited = heap.post(path, body)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "30"
    other = {**body, "identity": "b"}
    assert heap.post(path, other).status_code == 200, "counted per identity"
    sandbox_clock.advance(30)
    assert heap.post(path, body).status_code == 200
    sandbox.configure(rate_limit=False)
    assert all(heap.post(path, body).status_code == 200 for _ in range(40))


# ----- deletion API -------------------------------------------------------------------------
def test_auth_token_shapes(heap):
    good = heap.post("/api/public/v0/auth_token", auth=(APP_ID, DEFAULT_API_KEY))
    assert good.status_code == 200 and len(good.json()["access_token"]) >= 32
    other = heap.post("/api/public/v0/auth_token", auth=(APP_ID, DEFAULT_API_KEY))
    assert other.json()["access_token"] != good.json()["access_token"]
    for auth in ((APP_ID, "wrong"), ("1", DEFAULT_API_KEY), None):
        bad = heap.post("/api/public/v0/auth_token", auth=auth)
        assert bad.status_code == 401
        assert bad.json() == {"err": {"message": "Invalid app_id or api_key"}}


def test_deletion_endpoints_refuse_missing_or_bad_tokens(heap):
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        post = heap.post(
            "/api/public/v0/user_deletion", {"users": [{"user_id": 1}]}, headers=headers
        )
        assert post.status_code == 401 and "message" in post.json()["err"]
        get = heap.get("/api/public/v0/deletion_status/x", headers=headers)
        assert get.status_code == 401 and "message" in get.json()


def test_tokens_expire_after_token_ttl(heap, sandbox, sandbox_clock):
    headers = heap.bearer()
    sandbox_clock.advance(299)
    assert heap.get("/api/public/v0/deletion_status/x", headers=headers).status_code == 404
    sandbox_clock.advance(1)
    assert heap.get("/api/public/v0/deletion_status/x", headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"users": [{"user_id": 1}] * 10_001}, "at most 10000"),
        ({"users": []}, "non-empty array"),
        ({"users": [{"user_id": 1, "identity": "a"}]}, "users[0]: each user needs exactly one"),
        ({"users": [{"identity": "a"}, {}]}, "users[1]: each user needs exactly one"),
        ({"users": [{"user_id": 1.5}]}, "user_id must be an integer"),
        ({"users": [{"identity": "x" * 256}]}, "longer than 255"),
        (b"[", "Invalid JSON body"),
    ],
)
def test_deletion_rule_violations(heap, sandbox, body, message):
    response = heap.post("/api/public/v0/user_deletion", body, headers=heap.bearer())
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert sandbox.state.snapshot()["deletion_requests"] == []


def test_deletion_lifecycle(heap, sandbox, sandbox_clock):
    sandbox.configure(complete_after=60)
    headers = heap.bearer()
    users = {"users": [{"user_id": "12"}, {"identity": "a@example.com"}]}
    created = heap.post("/api/public/v0/user_deletion", users, headers=headers)
    assert created.status_code == 201
    body = created.json()
    assert body["status"] == "pending"
    request_id = body["deletion_request_id"]
    assert body["deletion_request_location"] == (
        f"{sandbox.url}/api/public/v0/deletion_status/{request_id}"
    )
    status_path = f"/api/public/v0/deletion_status/{request_id}"
    assert heap.get(status_path, headers=headers).json() == {
        "deletion_request_id": request_id,
        "status": "pending",
    }
    sandbox_clock.advance(60)
    assert heap.get(status_path, headers=headers).json()["status"] == "complete"
    [record] = sandbox.state.snapshot()["deletion_requests"]
    assert record["users"] == [{"user_id": 12}, {"identity": "a@example.com"}]
    missing = heap.get("/api/public/v0/deletion_status/unknown", headers=headers)
    assert missing.status_code == 404 and missing.json() == {
        "message": "Deletion request not found"
    }


def test_a_repeated_submission_is_a_second_request(heap, sandbox):
    headers = heap.bearer()
    ids = {
        heap.post(
            "/api/public/v0/user_deletion", {"users": [{"user_id": 1}]}, headers=headers
        ).json()["deletion_request_id"]
        for _ in range(2)
    }
    assert len(ids) == 2


def test_one_deletion_erases_the_user_in_every_environment(heap, sandbox):
    for app_id in ("111", "222"):
        heap.post("/api/track", {"app_id": app_id, "event": "e", "identity": "gone@example.com"})
    heap.post("/api/public/v0/user_deletion", {"users": [{"identity": "gone@example.com"}]},
              headers=heap.bearer())  # fmt: skip
    environments = sandbox.state.snapshot()["environments"]
    assert all(env["users"] == [] for env in environments.values())


# ----- admin endpoints ----------------------------------------------------------------------
def test_admin_config(heap, sandbox):
    response = heap.post("/_sandbox/config", {"token_ttl": 5, "complete_after_polls": 1})
    assert response.status_code == 200
    assert response.json()["config"]["token_ttl"] == 5.0
    assert "api_key" not in response.json()["config"]
    for bad in ({"token_ttl": "soon"}, {"warp": 9}, {"fault_kinds": ["explode"]}, [1]):
        failed = heap.post("/_sandbox/config", bad)
        assert failed.status_code == 400 and failed.json()["error"]
    assert sandbox.state.config.token_ttl == 5.0


def test_admin_faults_queue_in_order_and_match_path_and_method(heap, sandbox):
    queued = heap.post(
        "/_sandbox/faults",
        {"faults": [{"kind": "503", "path": "identify"}, {"kind": "500", "method": "GET"}]},
    )
    assert [f["kind"] for f in queued.json()["faults_pending"]] == ["503", "500"]
    track = {"app_id": APP_ID, "event": "e", "identity": "a"}
    assert heap.post("/api/track", track).status_code == 200, "fault was for identify only"
    assert heap.get("/api/public/v0/deletion_status/x").status_code == 500
    assert heap.post("/api/v1/identify", {**track, "user_id": "1"}).status_code == 503
    assert sandbox.state.snapshot()["faults_pending"] == []
    replaced = heap.post("/_sandbox/faults", {"faults": [{"kind": "drop"}], "replace": True})
    assert len(replaced.json()["faults_pending"]) == 1
    assert heap.post("/_sandbox/faults", {"kind": "boom"}).status_code == 400
    assert heap.post("/_sandbox/faults", {"kind": "429", "times": 0}).status_code == 400


def test_drop_closes_the_connection_without_an_answer(heap, sandbox):
    sandbox.add_faults({"kind": "drop"})
    with pytest.raises(requests.ConnectionError):
        heap.post("/api/track", {"app_id": APP_ID, "event": "e", "identity": "a"})
    assert sandbox.state.users() == {}
    sandbox.add_faults({"kind": "drop_after"})
    with pytest.raises(requests.ConnectionError):
        heap.post("/api/track", {"app_id": APP_ID, "event": "e", "identity": "a"})
    assert "a" in sandbox.state.users(), "drop_after processes first"
    assert heap.post("/api/track", {"app_id": APP_ID, "event": "e", "identity": "b"}).ok


def test_status_faults_and_retry_after_header(heap, sandbox):
    sandbox.add_faults(
        {"kind": "429", "retry_after": 3},
        {"kind": "429"},
        {"kind": "503", "retry_after": "Wed, 21 Oct 2015 07:28:00 GMT"},
        {"kind": "400", "shape": "error_object", "message": "nope"},
    )
    first = heap.get("/api/public/v0/deletion_status/x")
    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    second = heap.get("/api/public/v0/deletion_status/x")
    assert second.status_code == 429 and "Retry-After" not in second.headers
    third = heap.get("/api/public/v0/deletion_status/x")
    assert third.headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"
    assert heap.get("/api/public/v0/deletion_status/x").json() == {"error": {"message": "nope"}}


def test_a_400_can_echo_the_users_it_refuses(heap, sandbox):
    users = [{"identity": "José  García@example.com"}, {"user_id": 7000123}]
    sandbox.add_faults(
        {"kind": "400", "path": "/user_deletion", "shape": "error", "echo": True},
        {"kind": "400", "path": "/api/track", "message": "bad", "echo": True},
    )
    refused = heap.post("/api/public/v0/user_deletion", {"users": users}, headers=heap.bearer())
    assert refused.status_code == 400
    # As an API would: the users as JSON, non-ASCII escaped (so the wire carries `\\u00e9`).
    assert refused.json() == {"error": f"Sandbox fault: {json.dumps(users)}"}
    assert "Jos\\\\u00e9  Garc\\\\u00eda" in refused.text
    event = {"app_id": APP_ID, "event": "e", "identity": "ann"}
    assert heap.post("/api/track", event).text == 'bad: {"event": "e", "identity": "ann"}'
    bad = heap.post("/_sandbox/faults", {"kind": "400", "echo": "yes"})
    assert bad.status_code == 400 and "echo must be true or false" in bad.text


def test_latency_knob(heap, sandbox):
    sandbox.configure(latency_ms=200)
    started = time.monotonic()
    heap.post("/api/track", {"app_id": APP_ID, "event": "e", "identity": "a"})
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    heap.get("/_sandbox/state")
    assert time.monotonic() - started < 0.2, "admin endpoints are never slowed"


def test_random_faults_follow_the_seed(heap, sandbox):
    def run() -> list[int]:
        sandbox.configure(fault_rate=0.5, fault_kinds=["500", "503"], seed=7)
        return [heap.get("/api/public/v0/deletion_status/x").status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert {500, 503} <= set(first) and 401 in first


def test_complete_endpoint(heap, sandbox):
    sandbox.configure(complete_after=None)
    headers = heap.bearer()
    ids = [
        heap.post(
            "/api/public/v0/user_deletion", {"users": [{"user_id": n}]}, headers=headers
        ).json()["deletion_request_id"]
        for n in (1, 2, 3)
    ]
    assert heap.post("/_sandbox/complete", {"ids": [ids[0], "unknown"]}).json() == {
        "completed": [ids[0]]
    }
    assert heap.post("/_sandbox/complete").json() == {"completed": ids[1:]}
    assert heap.post("/_sandbox/complete", {"ids": "all"}).status_code == 400


def test_state_and_reset(heap, sandbox):
    token = heap.token()
    heap.post("/api/public/v0/user_deletion", {"users": [{"user_id": 1}]},
              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    state = heap.get("/_sandbox/state").json()
    dumped = json.dumps(state)
    assert token not in dumped and DEFAULT_API_KEY not in dumped
    assert [r["auth_scheme"] for r in state["requests"]] == ["basic", "bearer"]
    assert state["tokens_issued"] == 1 and len(state["deletion_requests"]) == 1
    assert heap.post("/_sandbox/reset").json() == {"reset": True}
    state = heap.get("/_sandbox/state").json()
    assert state["requests"] == [] and state["deletion_requests"] == []
    assert heap.get("/api/public/v0/deletion_status/x",
                    headers={"Authorization": f"Bearer {token}"}).status_code == 401  # fmt: skip


def test_inspection_page_escapes_everything(heap, sandbox):
    sandbox.configure(complete_after=None)
    evil = "<script>alert(1)</script>"
    heap.post("/api/track", {"app_id": APP_ID, "event": evil, "identity": evil})
    heap.post("/api/add_user_properties",
              {"app_id": APP_ID, "identity": evil, "properties": {evil: evil}})  # fmt: skip
    heap.post("/api/public/v0/user_deletion", {"users": [{"identity": evil}]},
              headers=heap.bearer())  # fmt: skip
    page = heap.get("/_sandbox/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "pending" in page.text and "/api/public/v0/user_deletion" in page.text


# ----- server and CLI -----------------------------------------------------------------------
def test_start_and_stop_frees_the_port():
    with start_sandbox(app_id="123", api_key="k") as server:
        assert server.url.startswith("http://127.0.0.1:")
        assert (server.app_id, server.api_key) == ("123", "k")
        assert requests.get(server.url + "/_sandbox/state", timeout=5).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/_sandbox/state", timeout=5)
    server.stop()  # idempotent


def test_cli_help_and_bad_flags():
    runner = CliRunner()
    result = runner.invoke(sandbox_command, ["--help"])
    assert result.exit_code == 0
    for flag in (
        "--port",
        "--app-id",
        "--api-key",
        "--token-ttl",
        "--complete-after",
        "--complete-after-polls",
        "--latency",
        "--fault-rate",
        "--fault-kinds",
        "--seed",
    ):
        assert flag in result.output  # fmt: skip
    bad = runner.invoke(sandbox_command, ["--port", "0", "--fault-kinds", "explode"])
    assert bad.exit_code == 2 and "fault_kinds" in bad.output
