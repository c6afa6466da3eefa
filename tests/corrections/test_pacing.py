"""Pacing under Heap's rate limits: waiting instead of failing, on an injected clock."""

from __future__ import annotations

import threading

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import sandbox_data

from webapp.corrections import service as corrections
from webapp.corrections.pacing import (
    EVENTS_PER_APP,
    EVENTS_PER_IDENTITY,
    REQUESTS_PER_IDENTITY,
    Claim,
    Pacer,
    claims_for,
)
from webapp.db import session_scope
from webapp.heap import HeapRateLimited
from webapp.sandbox.state import SandboxState

WINDOW = REQUESTS_PER_IDENTITY.window


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def pacer(clock) -> Pacer:
    return Pacer(clock=clock, sleep=clock.sleep)


def identify(identity: str) -> list[Claim]:
    return claims_for("identify", {"app_id": "1", "user_id": "1", "identity": identity})


def test_thirty_requests_pass_and_the_thirty_first_waits_for_the_window(pacer, clock):
    for _ in range(30):
        assert pacer.wait(identify("ann")) == 0
    assert pacer.wait(identify("ann")) == pytest.approx(WINDOW)
    assert clock.slept == [pytest.approx(WINDOW)]


def test_requests_spread_over_time_do_not_wait(pacer, clock):
    for _ in range(90):
        assert pacer.wait(identify("ann")) == 0
        clock.now += 1.1  # 30 requests take 33 s: always under the limit


def test_identities_and_app_ids_have_their_own_windows(pacer):
    for n in range(200):
        assert pacer.wait(identify(f"person-{n}")) == 0
    for _ in range(30):
        pacer.wait(identify("ann"))
    other_app = claims_for("identify", {"app_id": "2", "user_id": "1", "identity": "ann"})
    assert pacer.wait(other_app) == 0


def test_waiting_callers_queue_in_order(pacer, clock):
    delays = [pacer.reserve(identify("ann")) for _ in range(65)]
    assert delays[:30] == [0] * 30
    assert delays[30:60] == [pytest.approx(WINDOW)] * 30
    assert delays[60:] == [pytest.approx(2 * WINDOW)] * 5


def test_concurrent_senders_never_exceed_the_limit(pacer, clock):
    lock = threading.Lock()
    delays: list[float] = []

    def worker():
        for _ in range(10):
            delay = pacer.reserve(identify("ann"))
            with lock:
                delays.append(delay)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(delays) == [0] * 30 + [pytest.approx(WINDOW)] * 30


def test_bulk_track_counts_events_per_identity_and_per_app(pacer):
    events = [{"event": "E", "identity": "ann"}] * 600 + [{"event": "E", "user_id": "7"}] * 400
    claims = claims_for("bulk_track", {"app_id": "1", "events": events})
    costs = {(c.limit.name, c.cost) for c in claims}
    assert (EVENTS_PER_APP.name, 1000) in costs
    assert {(EVENTS_PER_IDENTITY.name, 600), (EVENTS_PER_IDENTITY.name, 400)} <= costs
    assert pacer.wait(claims) == 0
    # Another 600 events for ann would pass 1000 a minute: wait for the first ones to age out.
    assert pacer.wait(claims) == pytest.approx(EVENTS_PER_IDENTITY.window)


def test_account_properties_are_not_paced():
    assert claims_for("bulk_add_account_properties", {"app_id": "1", "accounts": []}) == []


def test_a_bulk_of_distinct_people_never_waits(pacer):
    users = [{"identity": f"u{n}", "properties": {"a": 1}} for n in range(1000)]
    body = {"app_id": "1", "users": users}
    for _ in range(5):
        assert pacer.wait(claims_for("bulk_add_user_properties", body)) == 0


def test_keys_do_not_hold_identities(pacer):
    pacer.wait(identify("ann@example.org"))
    assert not any("ann" in key for key in pacer._windows)


def test_same_semantics_as_the_sandbox_window():
    """Reserved slots fall exactly where the sandbox's limiter lets a request through."""
    clock = Clock()
    state = SandboxState(clock=clock)
    pacer = Pacer(clock=clock, sleep=clock.sleep)
    for _ in range(95):
        pacer.wait(identify("ann"))
        assert state.rate_limited("1", "identity:ann") is None


# ----- end to end: the officer never sees a 429 -----------------------------------------------
def test_the_sandbox_limiter_is_on(heap_client):
    for _ in range(30):
        heap_client.add_user_properties(identity="ann", properties={"n": 1})
    single_try = heap_client.__class__(
        app_id=heap_client.app_id,
        base_url=heap_client.hosts.ingestion,
        max_attempts=1,
        allowlist=["127.0.0.1"],
    )
    with single_try, pytest.raises(HeapRateLimited):
        single_try.add_user_properties(identity="ann", properties={"n": 1})


def test_thirty_one_corrections_for_one_identity_all_succeed(app, sandbox, heap_env, paced):
    with app.app_context():
        for n in range(31):
            with session_scope(write=True) as session:
                correction = corrections.send(
                    session,
                    actor="officer@example.org",
                    environment_id=heap_env,
                    family="user-properties",
                    data={"identity": "ann", "properties": {"n": n}},
                )
                assert correction.state == "succeeded", correction.heap_message
    statuses = [entry["status"] for entry in sandbox.state.snapshot()["requests"]]
    assert statuses == [200] * 31  # no 429 ever reached Heap's side, let alone the officer
    assert paced.waited == pytest.approx(WINDOW)
    user = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}["ann"]
    assert user["properties"] == {"n": 30}
