"""Pace Heap ingestion calls so that Heap's rate limits are respected by waiting, not failing.

Heap allows 30 requests / 30 s per identity per app_id on track, identify and
add_user_properties, 1000 events a minute per identity and 15,000 a minute per app_id on track
(heap-api.md). Over a limit it answers 429 and the officer would see a failure; instead every
call first reserves a slot in a sliding window per (app_id, identity) and sleeps until the slot
is due. Reservations are first come, first served, so concurrent senders queue fairly.

The windows live in this process's memory (per worker): several workers sending for the same
identity at once can still meet a 429, which the Heap client then absorbs by honouring
Retry-After. Keys are hashes: raw identities are never held in long-lived memory.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Limit:
    """At most `amount` units in any `window` seconds."""

    name: str
    amount: int
    window: float


# Windows are a little longer than Heap's: a request reserved at t may reach Heap later than
# the one reserved after it, and Heap counts arrivals.
MARGIN = 0.5
REQUESTS_PER_IDENTITY = Limit("requests", 30, 30.0 + MARGIN)
EVENTS_PER_IDENTITY = Limit("events", 1000, 60.0 + MARGIN)
EVENTS_PER_APP = Limit("app_events", 15_000, 60.0 + MARGIN)

# Operations Heap rate-limits per identity (account properties are not tied to a person).
_PACED = {"identify", "track", "bulk_track", "add_user_properties", "bulk_add_user_properties"}
# Sweep idle windows when this many keys are held, so bulk files do not grow memory forever.
_SWEEP_AT = 10_000


@dataclass(frozen=True)
class Claim:
    """`cost` units of `limit` for one key (an identity of an app_id, or the app_id itself)."""

    key: str
    cost: int
    limit: Limit


def _key(app_id: str, limit: Limit, who: str) -> str:
    digest = hashlib.sha256(f"{app_id}\x00{who}".encode()).hexdigest()[:32]
    return f"{limit.name}:{digest}"


def _who(item: Mapping[str, Any]) -> str:
    """The person a call or an event counts against: its identity, else its user_id."""
    if item.get("identity") is not None:
        return f"identity:{item['identity']}"
    return f"user_id:{item.get('user_id')}"


def claims_for(operation: str, body: Mapping[str, Any]) -> list[Claim]:
    """What one Heap call costs against each limit (empty for calls Heap does not pace)."""
    if operation not in _PACED:
        return []
    app_id = str(body.get("app_id", ""))
    if operation == "bulk_add_user_properties":
        people = collections.Counter(_who(user) for user in body.get("users", []))
        return [
            Claim(_key(app_id, REQUESTS_PER_IDENTITY, w), 1, REQUESTS_PER_IDENTITY) for w in people
        ]
    if operation not in ("track", "bulk_track"):
        return [Claim(_key(app_id, REQUESTS_PER_IDENTITY, _who(body)), 1, REQUESTS_PER_IDENTITY)]
    events = body.get("events", [body]) if operation == "bulk_track" else [body]
    per_person = collections.Counter(_who(event) for event in events)
    claims = [Claim(_key(app_id, EVENTS_PER_APP, "app"), len(events), EVENTS_PER_APP)]
    for who, count in per_person.items():
        claims.append(Claim(_key(app_id, REQUESTS_PER_IDENTITY, who), 1, REQUESTS_PER_IDENTITY))
        claims.append(Claim(_key(app_id, EVENTS_PER_IDENTITY, who), count, EVENTS_PER_IDENTITY))
    return claims


class Pacer:
    """Sliding windows of reservations; `wait(claims)` blocks until every claim fits."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # key -> deque of (time, cost), times non-decreasing (reservations may lie ahead).
        self._windows: dict[str, collections.deque[tuple[float, int]]] = {}
        self.waited = 0.0  # total seconds slept, for tests and logs

    def reserve(self, claims: Iterable[Claim]) -> float:
        """Book the earliest moment every claim fits; return how long to wait until then."""
        claims = list(claims)
        if not claims:
            return 0.0
        with self._lock:
            now = self._clock()
            if len(self._windows) > _SWEEP_AT:
                self._sweep(now)
            due = now
            for claim in claims:
                due = max(due, self._earliest(claim, now))
            for claim in claims:
                self._windows.setdefault(claim.key, collections.deque()).append((due, claim.cost))
            return due - now

    def wait(self, claims: Iterable[Claim]) -> float:
        """Reserve and sleep until the reservation is due; return the seconds waited."""
        delay = self.reserve(claims)
        if delay > 0:
            self._sleep(delay)
            with self._lock:
                self.waited += delay
        return delay

    def _earliest(self, claim: Claim, now: float) -> float:
        """The first time >= now (and >= the key's last reservation) when `claim` fits."""
        limit = claim.limit
        if claim.cost > limit.amount:
            raise ValueError(f"a single call cannot cost more than {limit.amount} {limit.name}")
        hits = self._windows.get(claim.key)
        if not hits:
            return now
        while hits and hits[0][0] <= now - limit.window:
            hits.popleft()
        earliest = max(now, hits[-1][0]) if hits else now
        used = sum(cost for _, cost in hits)
        # Drop the oldest reservations, one by one, until the claim fits; the window must
        # then have moved past the last one dropped.
        for at, cost in hits:
            if used + claim.cost <= limit.amount:
                break
            used -= cost
            earliest = max(earliest, at + limit.window)
        return earliest

    def _sweep(self, now: float) -> None:
        """Forget windows whose every reservation has left its window."""
        longest = max(
            REQUESTS_PER_IDENTITY.window, EVENTS_PER_IDENTITY.window, EVENTS_PER_APP.window
        )
        for key in [
            k for k, hits in self._windows.items() if not hits or hits[-1][0] <= now - longest
        ]:
            del self._windows[key]
