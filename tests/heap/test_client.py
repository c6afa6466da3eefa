"""The Heap client against the sandbox over loopback HTTP: every operation, every error path."""

from __future__ import annotations

import json
import logging
import time
from email.utils import format_datetime

import pytest
import requests
from urllib3.exceptions import (
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from webapp.heap import (
    HeapAuthError,
    HeapBadRequest,
    HeapNotFound,
    HeapOutcomeUnknown,
    HeapRateLimited,
    HeapUnavailable,
    HeapURLNotAllowed,
    parse_error_message,
)
from webapp.heap.backoff import full_jitter, parse_retry_after, request_was_sent

DELETION = "/api/public/v0/user_deletion"
STATUS = "/api/public/v0/deletion_status/"
TOKEN = "/api/public/v0/auth_token"


def logged(sandbox, path_part: str = "") -> list[dict]:
    """Requests the sandbox received whose path contains `path_part`."""
    return [r for r in sandbox.state.snapshot()["requests"] if path_part in r["path"]]


def deletions(sandbox) -> list[dict]:
    return sandbox.state.snapshot()["deletion_requests"]


def wait_until(predicate, timeout: float = 2.0) -> None:
    """Poll for something a server thread does after the client has given up."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for the sandbox"
        time.sleep(0.02)


# ----- tokens -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _sandbox_plays_heap(sandbox_as_heap):
    """These tests read Heap's answers: the sandbox stands for Heap's own host here.

    `test_a_host_that_is_not_heaps_is_reduced_to_its_status` shows the default.
    """


def test_fetch_token_uses_basic_auth_and_caches(sandbox, heap_client):
    token = heap_client.fetch_token()
    assert token and isinstance(token, str)
    assert heap_client.test_connection() is True
    [first, second] = logged(sandbox, TOKEN)
    assert first["auth_scheme"] == "basic" and first["status"] == 200
    assert "Authorization" not in first["headers"]
    heap_client.deletion_status(heap_client.delete_users([{"user_id": 1}]).deletion_request_id)
    assert len(logged(sandbox, TOKEN)) == 2, "the cached token was reused"


def test_wrong_credentials_are_an_auth_error(sandbox, make_heap_client):
    client = make_heap_client(api_key="not-the-key")
    with pytest.raises(HeapAuthError) as info:
        client.test_connection()
    assert info.value.status == 401
    assert "Invalid app_id or api_key" in info.value.message
    assert "not-the-key" not in str(info.value)
    assert len(logged(sandbox, TOKEN)) == 1, "a 401 on the token call is not retried"


def test_other_environment_id_is_refused(make_heap_client):
    with pytest.raises(HeapAuthError):
        make_heap_client(app_id="1234567").fetch_token()


def test_no_api_key_fails_without_sending(sandbox, make_heap_client):
    with pytest.raises(HeapAuthError, match="no api_key"):
        make_heap_client(api_key=None).delete_users([{"user_id": 1}])
    assert logged(sandbox) == []


def test_token_is_refreshed_before_it_expires(sandbox, make_heap_client):
    now = [0.0]
    client = make_heap_client(clock=lambda: now[0])
    client.deletion_status(client.delete_users([{"user_id": 1}]).deletion_request_id)
    now[0] = 269.0
    client.deletion_status(client.delete_users([{"user_id": 2}]).deletion_request_id)
    assert len(logged(sandbox, TOKEN)) == 1
    now[0] = 271.0  # within 30 s of Heap's 300 s lifetime
    client.deletion_status(client.delete_users([{"user_id": 3}]).deletion_request_id)
    assert len(logged(sandbox, TOKEN)) == 2


def test_token_expiring_mid_sequence_is_refreshed_once(sandbox, sandbox_clock, heap_client):
    sandbox.configure(token_ttl=1)
    accepted = heap_client.delete_users([{"identity": "a@example.com"}])
    sandbox_clock.advance(2)  # the sandbox's token died; the client still trusts it
    status = heap_client.deletion_status(accepted.deletion_request_id)
    assert status.status in ("pending", "complete")
    assert [r["status"] for r in logged(sandbox, STATUS)] == [401, 200]
    assert len(logged(sandbox, TOKEN)) == 2


def test_401_on_deletion_post_repeats_it_once_with_a_fresh_token(sandbox, heap_client):
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "expire_token", "path": DELETION})
    accepted = heap_client.delete_users([{"identity": "a@example.com"}])
    assert [r["status"] for r in logged(sandbox, DELETION)] == [401, 201]
    assert [d["deletion_request_id"] for d in deletions(sandbox)] == [accepted.deletion_request_id]


def test_second_401_is_an_auth_error(sandbox, heap_client):
    sandbox.add_faults({"kind": "expire_token", "path": DELETION, "times": 2})
    with pytest.raises(HeapAuthError) as info:
        heap_client.delete_users([{"identity": "a@example.com"}])
    assert info.value.status == 401
    assert "invalid or expired token" in info.value.message
    assert len(logged(sandbox, DELETION)) == 2
    assert deletions(sandbox) == []


# ----- deletion API -------------------------------------------------------------------------
def test_delete_users_and_poll_until_complete(sandbox, heap_client):
    sandbox.configure(complete_after_polls=2)
    accepted = heap_client.delete_users([{"user_id": "42"}, {"identity": "b@example.com"}])
    assert accepted.status == "pending"
    assert accepted.location == f"{sandbox.url}{STATUS}{accepted.deletion_request_id}"
    [sent] = logged(sandbox, DELETION)
    assert sent["body"] == {"users": [{"user_id": 42}, {"identity": "b@example.com"}]}
    statuses = [heap_client.deletion_status(accepted.deletion_request_id) for _ in range(3)]
    assert [s.status for s in statuses] == ["pending", "pending", "complete"]
    assert statuses[0].deletion_request_id == accepted.deletion_request_id


def test_unknown_deletion_request_is_not_found(heap_client):
    with pytest.raises(HeapNotFound) as info:
        heap_client.deletion_status("00000000-0000-4000-8000-000000000000")
    assert info.value.status == 404
    assert "Deletion request not found" in info.value.message


def test_deleted_users_are_gone_from_heap(sandbox, heap_client):
    sandbox.configure(complete_after=None)
    heap_client.track(event="Login", user_id=7)
    heap_client.identify(user_id=7, identity="alice@example.com")
    heap_client.add_user_properties(identity="alice@example.com", properties={"plan": "pro"})
    heap_client.track(event="Login", identity="bob@example.com")
    heap_client.track(event="Visit", user_id=99)
    accepted = heap_client.delete_users([{"identity": "alice@example.com"}, {"user_id": 99}])
    assert "alice@example.com" in sandbox.state.users(), "erased only when Heap completes"
    sandbox.state.complete([accepted.deletion_request_id])
    env = sandbox.state.snapshot()["environments"][sandbox.app_id]
    assert [u["identity"] for u in env["users"]] == ["bob@example.com"]
    assert env["anonymous_users"] == []
    assert deletions(sandbox)[0]["users_erased"] == 2
    assert heap_client.deletion_status(accepted.deletion_request_id).status == "complete"
    # The link went too: the old user_id now starts a fresh anonymous user.
    heap_client.track(event="Back", user_id=7)
    assert "alice@example.com" not in sandbox.state.users()


def test_deleting_by_user_id_erases_the_identified_user(sandbox, heap_client):
    heap_client.identify(user_id=5, identity="carol@example.com")
    heap_client.delete_users([{"user_id": 5}])
    assert sandbox.state.users() == {}


# ----- ingestion ----------------------------------------------------------------------------
def test_ingestion_operations_land_in_heap(sandbox, heap_client):
    result = heap_client.track(
        event="Signup",
        identity="a@example.com",
        properties={"plan": "pro"},
        timestamp="2024-05-01T10:00:00Z",
        session_id="s1",
        idempotency_key="k1",
    )
    assert (result.operation, result.status_code) == ("track", 200)
    heap_client.bulk_track(
        [
            {"event": "A", "identity": "a@example.com", "idempotency_key": "k2"},
            {"event": "B", "user_id": 3},
        ]
    )
    heap_client.add_user_properties(identity="a@example.com", properties={"email": "a@x.org"})
    heap_client.bulk_add_user_properties(
        [{"identity": "b@example.com", "properties": {"seats": 4}}]
    )
    account = heap_client.add_account_properties(account_id="acme", properties={"tier": "gold"})
    assert account.body == "OK"
    heap_client.bulk_add_account_properties([{"account_id": 77, "properties": {"tier": "free"}}])
    env = sandbox.state.snapshot()["environments"][sandbox.app_id]
    users = {u["identity"]: u for u in env["users"]}
    assert [e["event"] for e in users["a@example.com"]["events"]] == ["Signup", "A"]
    assert users["a@example.com"]["properties"] == {"email": "a@x.org"}
    assert users["b@example.com"]["properties"] == {"seats": 4}
    assert env["anonymous_users"][0]["user_ids"] == ["3"]
    assert {a["account_id"]: a["properties"] for a in env["accounts"]} == {
        "acme": {"tier": "gold"},
        "77": {"tier": "free"},
    }


def test_preview_is_exactly_what_is_sent(sandbox, heap_client):
    kwargs = {"identity": "a@example.com", "properties": {"plan": "pro", "seats": 2}}
    preview = heap_client.build_request("add_user_properties", **kwargs)
    heap_client.add_user_properties(**kwargs)
    [sent] = logged(sandbox, "/api/add_user_properties")
    assert sent["body"] == preview.json_body
    assert sandbox.url + sent["path"] == preview.url


def test_identify_integrity_rules_are_silent(sandbox, sandbox_clock, heap_client):
    heap_client.track(event="Visit", user_id=1)
    heap_client.identify(user_id=1, identity="alice@example.com")
    heap_client.identify(user_id=1, identity="mallory@example.com")  # 200, but ignored
    users = sandbox.state.users()
    assert set(users) == {"alice@example.com"}
    assert users["alice@example.com"]["user_ids"] == ["1"]
    assert [e["event"] for e in users["alice@example.com"]["events"]] == ["Visit"]
    for user_id in range(2, 12):  # user_ids 2..11: the 11th of this identity is ignored
        heap_client.identify(user_id=user_id, identity="alice@example.com")
    assert len(sandbox.state.users()["alice@example.com"]["user_ids"]) == 10
    notes = [n for r in logged(sandbox, "identify") for n in r["notes"]]
    assert any("another identity" in n for n in notes)
    assert any("10 user_ids" in n for n in notes)
    sandbox_clock.advance(31 * 24 * 3600)
    heap_client.identify(user_id=11, identity="alice@example.com")
    assert "11" in sandbox.state.users()["alice@example.com"]["user_ids"]


# ----- retries ------------------------------------------------------------------------------
def test_429_with_retry_after_on_a_safe_call_is_honoured(sandbox, make_heap_client):
    slept: list[float] = []
    client = make_heap_client(sleep=slept.append)
    request_id = client.delete_users([{"user_id": 1}]).deletion_request_id
    sandbox.add_faults({"kind": "429", "retry_after": 1, "path": STATUS})
    assert client.deletion_status(request_id).status == "complete"
    assert slept == [1.0]
    assert [r["status"] for r in logged(sandbox, STATUS)] == [429, 200]


def test_429_without_retry_after_backs_off_with_jitter(sandbox, make_heap_client):
    slept: list[float] = []
    client = make_heap_client(sleep=slept.append, backoff_base=0.2)
    sandbox.add_faults({"kind": "429", "path": "identify", "times": 2})
    client.identify(user_id=1, identity="a@example.com")
    assert len(slept) == 2
    assert 0 <= slept[0] <= 0.2 and 0 <= slept[1] <= 0.4
    assert [r["status"] for r in logged(sandbox, "identify")] == [429, 429, 200]


def test_long_retry_after_raises_instead_of_blocking(sandbox, make_heap_client):
    slept: list[float] = []
    client = make_heap_client(sleep=slept.append, backoff_max=5)
    sandbox.add_faults({"kind": "429", "retry_after": 120, "path": "add_user_properties"})
    with pytest.raises(HeapRateLimited) as info:
        client.add_user_properties(identity="a@example.com", properties={"p": 1})
    assert info.value.retry_after == 120.0
    assert slept == [] and len(logged(sandbox, "add_user")) == 1


@pytest.mark.parametrize(("retry_after", "expected"), [(2, 2.0), (None, None)])
def test_429_on_the_deletion_post_is_not_retried(sandbox, heap_client, retry_after, expected):
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "429", "retry_after": retry_after, "path": DELETION})
    with pytest.raises(HeapRateLimited) as info:
        heap_client.delete_users([{"identity": "a@example.com"}])
    assert info.value.retry_after == expected and info.value.status == 429
    assert len(logged(sandbox, DELETION)) == 1 and deletions(sandbox) == []


def test_5xx_bursts_are_retried_on_safe_calls(sandbox, heap_client):
    sandbox.add_faults(
        {"kind": "500", "path": TOKEN}, {"kind": "503", "path": TOKEN}, {"kind": "502"}
    )
    assert heap_client.fetch_token()
    assert [r["status"] for r in logged(sandbox, TOKEN)] == [500, 503, 502, 200]


def test_5xx_exhausting_attempts_is_unavailable(sandbox, heap_client):
    sandbox.add_faults({"kind": "503", "path": "add_account", "times": 4})
    with pytest.raises(HeapUnavailable) as info:
        heap_client.add_account_properties(account_id="a", properties={"p": 1})
    assert info.value.status == 503 and len(logged(sandbox, "add_account")) == 4


def test_5xx_on_the_deletion_post_is_not_retried(sandbox, heap_client):
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "503", "path": DELETION})
    with pytest.raises(HeapUnavailable) as info:
        heap_client.delete_users([{"identity": "a@example.com"}])
    assert info.value.status == 503 and len(logged(sandbox, DELETION)) == 1


def test_unkeyed_track_retries_429_but_not_5xx(sandbox, heap_client):
    sandbox.add_faults({"kind": "429", "path": "track"})
    heap_client.track(event="E", identity="a@example.com")
    assert [r["status"] for r in logged(sandbox, "track")] == [429, 200]
    sandbox.add_faults({"kind": "503", "path": "track"})
    with pytest.raises(HeapUnavailable):
        heap_client.track(event="E", identity="a@example.com")
    assert len(logged(sandbox, "track")) == 3, "a 503 may come after Heap stored the event"
    sandbox.add_faults({"kind": "503", "path": "track"})
    heap_client.track(event="E", identity="a@example.com", idempotency_key="k")
    assert [r["status"] for r in logged(sandbox, "track")][-2:] == [503, 200]


# ----- lost answers -------------------------------------------------------------------------
def test_dropped_connection_on_a_safe_call_is_retried(sandbox, heap_client):
    sandbox.add_faults({"kind": "drop", "path": "identify"})
    heap_client.identify(user_id=1, identity="a@example.com")
    assert [r["fault"] for r in logged(sandbox, "identify")] == ["drop", None]


def test_drop_before_processing_on_deletion_post_is_outcome_unknown(sandbox, heap_client):
    # The client cannot tell a drop before processing from one after: both are "unknown".
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "drop", "path": DELETION})
    with pytest.raises(HeapOutcomeUnknown):
        heap_client.delete_users([{"identity": "a@example.com"}])
    assert len(logged(sandbox, DELETION)) == 1
    assert deletions(sandbox) == []


def test_drop_after_processing_is_unknown_and_resubmission_gets_a_second_id(sandbox, heap_client):
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "drop_after", "path": DELETION})
    with pytest.raises(HeapOutcomeUnknown):
        heap_client.delete_users([{"identity": "a@example.com"}])
    assert len(logged(sandbox, DELETION)) == 1, "never repeated automatically"
    [held] = deletions(sandbox)
    again = heap_client.delete_users([{"identity": "a@example.com"}])
    assert again.deletion_request_id != held["deletion_request_id"]
    assert len(deletions(sandbox)) == 2


def test_slow_answer_on_deletion_post_is_outcome_unknown(sandbox, make_heap_client):
    client = make_heap_client(timeout=(1, 0.3))
    client.fetch_token()
    sandbox.add_faults({"kind": "slow_after", "seconds": 0.6, "path": DELETION})
    with pytest.raises(HeapOutcomeUnknown, match="timed out"):
        client.delete_users([{"identity": "a@example.com"}])
    assert len(deletions(sandbox)) == 1
    sandbox.add_faults({"kind": "slow", "seconds": 0.6, "path": DELETION})
    with pytest.raises(HeapOutcomeUnknown):
        client.delete_users([{"identity": "b@example.com"}])
    wait_until(lambda: len(deletions(sandbox)) == 2)  # processed after the client gave up
    assert len(logged(sandbox, DELETION)) == 2


def test_slow_answer_on_a_safe_call_is_retried(sandbox, make_heap_client):
    client = make_heap_client(timeout=(1, 0.3))
    sandbox.add_faults({"kind": "slow", "seconds": 0.5, "path": TOKEN})
    assert client.fetch_token()
    assert len(logged(sandbox, TOKEN)) == 2


def test_connection_refused_is_unavailable_not_unknown(sandbox, heap_client):
    heap_client.fetch_token()
    sandbox.stop()
    with pytest.raises(HeapUnavailable, match="could not be reached"):
        heap_client.delete_users([{"identity": "a@example.com"}])


# ----- error bodies and redirects -----------------------------------------------------------
@pytest.mark.parametrize("shape", ["err", "error", "error_object", "message", "text"])
def test_400_messages_surface_from_every_shape(sandbox, heap_client, shape):
    heap_client.fetch_token()
    sandbox.add_faults(
        {"kind": "400", "shape": shape, "message": "users[0] is odd", "path": DELETION}
    )
    with pytest.raises(HeapBadRequest) as info:
        heap_client.delete_users([{"user_id": 1}])
    assert info.value.status == 400
    assert info.value.message == "Heap delete_users was rejected: users[0] is odd"


def test_accepted_deletion_without_an_id_is_outcome_unknown(sandbox, heap_client):
    heap_client.fetch_token()
    sandbox.add_faults({"kind": "respond", "status": 201, "body": "{}", "path": DELETION})
    with pytest.raises(HeapOutcomeUnknown, match="no deletion_request_id") as info:
        heap_client.delete_users([{"user_id": 1}])
    assert info.value.status == 201


def test_unknown_status_values_are_passed_through(sandbox, heap_client):
    sandbox.configure(complete_after=None)
    request_id = heap_client.delete_users([{"user_id": 1}]).deletion_request_id
    sandbox.state.deletions[request_id].status = "processing"
    assert heap_client.deletion_status(request_id).status == "processing"
    body = '{"status": "Queued For Review"}'
    sandbox.add_faults({"kind": "respond", "body": body, "path": STATUS})
    status = heap_client.deletion_status(request_id)
    assert (status.deletion_request_id, status.status) == (request_id, "Queued For Review")
    sandbox.add_faults({"kind": "respond", "body": "<html>ok</html>", "path": STATUS})
    with pytest.raises(HeapUnavailable, match="no status"):
        heap_client.deletion_status(request_id)


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "message"),
    [
        (418, "I'm a teapot", "text/plain", HeapUnavailable, "(HTTP 418): I'm a teapot"),
        (502, "<html><h1>Bad Gateway</h1></html>", "text/html", HeapUnavailable, "HTTP 502"),
        (403, '{"message": "forbidden"}', "application/json", HeapAuthError, "forbidden"),
        (200, "not json", "text/plain", HeapUnavailable, "no access_token"),
    ],
)
def test_unexpected_answers_map_to_typed_errors(
    sandbox, make_heap_client, status, body, content_type, error, message
):
    client = make_heap_client(max_attempts=1)
    sandbox.add_faults(
        {"kind": "respond", "status": status, "body": body, "content_type": content_type}
    )
    with pytest.raises(error) as info:
        client.fetch_token()
    assert message in info.value.message and info.value.status == status


def test_a_host_that_is_not_heaps_is_reduced_to_its_status(sandbox, make_heap_client, monkeypatch):
    from webapp.heap import hosts

    monkeypatch.setattr(hosts, "HEAP_HOSTNAMES", frozenset({"heapanalytics.com"}))
    client = make_heap_client(api_key="not-the-key", max_attempts=1)
    assert client.answers_are_heaps is False
    with pytest.raises(HeapAuthError) as info:
        client.fetch_token()
    assert (
        info.value.message == "Heap auth_token was refused (HTTP 401): the server answered HTTP 401"
    )
    assert info.value.status == 401
    sandbox.add_faults({"kind": "respond", "body": "SOMEONE ELSE'S TEXT", "path": "identify"})
    assert make_heap_client().identify(user_id=1, identity="a@example.com").body == ""


def test_answers_shaped_unlike_heaps_ids_are_not_taken(sandbox, heap_client):
    body = '{"deletion_request_id": "José García", "status": "pending"}'
    sandbox.add_faults({"kind": "respond", "status": 201, "body": body, "path": "user_deletion"})
    with pytest.raises(HeapOutcomeUnknown, match="not shaped like one"):
        heap_client.delete_users([{"user_id": 1}])
    body = json.dumps(
        {"deletion_request_id": "abc-1", "status": "<b>José</b>", "deletion_request_location": "x"}
    )
    sandbox.add_faults({"kind": "respond", "status": 201, "body": body, "path": "user_deletion"})
    accepted = heap_client.delete_users([{"user_id": 1}])
    assert (accepted.status, accepted.location) == ("pending", None)


def test_every_connection_goes_through_the_address_guard(make_heap_client, monkeypatch):
    import socket

    asked = []
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        asked.append((host, port))
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    client = make_heap_client()
    client.fetch_token()
    assert asked and asked[0][0] == "127.0.0.1"
    with pytest.raises(HeapURLNotAllowed, match="loopback"):
        make_heap_client(allowlist=["127.0.0.1:1"])  # the sandbox's port is not listed


def test_redirects_are_not_followed(sandbox, heap_client):
    target = f"{sandbox.url}/api/public/v0/auth_token"
    sandbox.add_faults({"kind": "redirect", "location": target, "path": "identify"})
    with pytest.raises(HeapUnavailable, match="redirect"):
        heap_client.identify(user_id=1, identity="a@example.com")
    assert [r["path"] for r in logged(sandbox)] == ["/api/v1/identify"]


def test_sandbox_rate_limit_reaches_the_client(sandbox, sandbox_clock, heap_client):
    for _ in range(30):
        heap_client.track(event="E", identity="busy@example.com")
    with pytest.raises(HeapRateLimited) as info:
        heap_client.track(event="E", identity="busy@example.com")
    assert info.value.retry_after == 30.0
    heap_client.track(event="E", identity="calm@example.com")
    sandbox_clock.advance(30)
    heap_client.track(event="E", identity="busy@example.com")


# ----- logs ---------------------------------------------------------------------------------
def test_logs_never_hold_secrets_or_personal_data(
    sandbox, sandbox_clock, heap_client, make_heap_client, caplog
):
    identity, user_id = "zoe.secret@example.com", 987654321123
    caplog.set_level(logging.DEBUG)
    token = heap_client.fetch_token()
    heap_client.track(event="E", identity=identity, properties={"name": "Zoe"})
    heap_client.identify(user_id=user_id, identity=identity)
    heap_client.add_user_properties(identity=identity, properties={"email": identity})
    sandbox.add_faults({"kind": "503", "path": STATUS}, {"kind": "drop", "path": "identify"})
    accepted = heap_client.delete_users([{"identity": identity}, {"user_id": user_id}])
    heap_client.deletion_status(accepted.deletion_request_id)
    heap_client.identify(user_id=user_id, identity=identity)
    sandbox_clock.advance(400)
    heap_client.deletion_status(accepted.deletion_request_id)  # 401, then a new token
    with pytest.raises(HeapAuthError) as info:
        make_heap_client(api_key="wrong-key-123").fetch_token()
    assert caplog.records, "the client does log"
    text = caplog.text + str(info.value)
    for secret in (token, sandbox.api_key, "wrong-key-123", identity, str(user_id), "Zoe"):
        assert secret not in text


# ----- units: parsing and classification ----------------------------------------------------
@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        ('{"err": {"message": "bad users"}}', "application/json", "bad users"),
        ('{"error": "bad users"}', "application/json", "bad users"),
        ('{"error": {"message": "bad users"}}', "application/json", "bad users"),
        ('{"message": "bad users"}', "application/json", "bad users"),
        ('{"err": "bad users"}', "application/json", "bad users"),
        ("identity is too long\n", "text/plain", "identity is too long"),
        ("<html><h1>502 Bad Gateway</h1></html>", "text/html", "HTTP 502"),
        ("", "", "HTTP 502"),
        ('{"unexpected": 1}', "application/json", "HTTP 502"),
        ("[1, 2]", "application/json", "HTTP 502"),
    ],
)
def test_parse_error_message(body, content_type, expected):
    assert parse_error_message(body, status=502, content_type=content_type) == expected


def test_parse_error_message_is_short():
    message = parse_error_message("x" * 5000, status=400)
    assert len(message) == 500 and message.endswith("…")


def test_parse_retry_after():
    now = parse_retry_after("0")
    assert now == 0.0
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    for junk in (None, "", "soon", "-3", "nan", "inf"):
        assert parse_retry_after(junk) is None
    from datetime import UTC, datetime, timedelta

    base = datetime(2025, 1, 1, tzinfo=UTC)
    header = format_datetime(base + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=base) == 90.0
    assert parse_retry_after(format_datetime(base, usegmt=True), now=base + timedelta(1)) == 0.0


def test_full_jitter_stays_within_the_cap():
    import random

    rng = random.Random(1)
    delays = [full_jitter(n, base=0.5, cap=4, rng=rng) for n in range(1, 12) for _ in range(20)]
    assert all(0 <= d <= 4 for d in delays) and max(delays) > 2


@pytest.mark.parametrize(
    ("exc", "sent"),
    [
        (requests.ConnectTimeout("connect"), False),
        (requests.ConnectionError(MaxRetryError(None, "/", NewConnectionError(None, "x"))), False),
        (requests.ReadTimeout("read"), True),
        (requests.ConnectionError(ReadTimeoutError(None, "/", "read timed out")), True),
        (requests.ConnectionError(ProtocolError("aborted", ConnectionResetError())), True),
        (requests.exceptions.ChunkedEncodingError("cut"), True),
        (requests.exceptions.SSLError("handshake"), False),
    ],
)  # fmt: skip
def test_request_was_sent(exc, sent):
    assert request_was_sent(exc) is sent
