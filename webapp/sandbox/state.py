"""Everything the sandbox holds, behind one lock.

Deletions erase users at *completion*, as Heap does days later: until a request completes its
users' data is still there, so a test can tell "submitted" from "done". Completion is checked
lazily, on every request to the sandbox and on every state read.
"""

from __future__ import annotations

import collections
import hmac
import random
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from webapp.sandbox.config import SandboxConfig
from webapp.sandbox.environment import Environment
from webapp.sandbox.faults import Fault

REQUEST_LOG_SIZE = 500


@dataclass
class DeletionRecord:
    """A deletion request as Heap would track it."""

    deletion_request_id: str
    app_id: str
    users: list[dict[str, Any]]
    created_at: float
    status: str = "pending"
    polls: int = 0
    completed_at: float | None = None
    users_erased: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the request for the admin state endpoint."""
        return {
            "deletion_request_id": self.deletion_request_id,
            "app_id": self.app_id,
            "status": self.status,
            "users": [dict(user) for user in self.users],
            "created_at": self.created_at,
            "completed_at": self.completed_at,
            "polls": self.polls,
            "users_erased": self.users_erased,
        }


@dataclass
class Token:
    """An issued access token; tokens are kept in memory only, like everything here."""

    app_id: str
    issued_at: float
    revoked: bool = False


class SandboxState:
    """The in-memory fake Heap: data, tokens, deletions, faults and the request log."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config or SandboxConfig()
        # Injectable so tests can expire tokens and rate windows without waiting.
        self.clock = clock
        self.sleep = sleep
        self.lock = threading.RLock()
        self._rng = random.Random(self.config.seed)  # noqa: S311 - fault dice, not secrets
        self.reset()

    def reset(self) -> None:
        """Forget all data, tokens, deletions, queued faults and the request log."""
        with self.lock:
            self.environments: dict[str, Environment] = {}
            self.tokens: dict[str, Token] = {}
            self.tokens_issued = 0
            self.deletions: dict[str, DeletionRecord] = {}
            self.faults: list[Fault] = []
            self.requests: collections.deque[dict[str, Any]] = collections.deque(
                maxlen=REQUEST_LOG_SIZE
            )
            self._request_seq = 0
            self._rate: dict[tuple[str, str], collections.deque[float]] = {}

    def configure(self, changes: dict[str, Any]) -> SandboxConfig:
        """Change knobs at run time (POST /_sandbox/config)."""
        with self.lock:
            self.config.update(changes)
            if "seed" in changes:
                self._rng = random.Random(self.config.seed)  # noqa: S311
            return self.config

    def environment(self, app_id: str) -> Environment:
        """Return the data of one app_id (created on first use: any numeric id is accepted)."""
        with self.lock:
            return self.environments.setdefault(app_id, Environment(app_id))

    # ----- tokens ---------------------------------------------------------------------
    def issue_token(self, app_id: str, api_key: str) -> str | None:
        """Return a new token for the right (app_id, api_key) pair, else None."""
        with self.lock:
            right_id = hmac.compare_digest(app_id.encode(), self.config.app_id.encode())
            right_key = hmac.compare_digest(api_key.encode(), self.config.api_key.encode())
            if not (right_id and right_key):
                return None
            now = self.clock()
            # Dead tokens answer 401 whether kept or not; dropping them bounds the memory.
            for dead in [t for t, e in self.tokens.items() if self._dead(e, now)]:
                del self.tokens[dead]
            token = secrets.token_urlsafe(32)
            self.tokens[token] = Token(app_id=app_id, issued_at=now)
            self.tokens_issued += 1
            return token

    def token_app_id(self, token: str | None) -> str | None:
        """Return the app_id a live token belongs to, or None if unknown/expired/revoked."""
        with self.lock:
            entry = self.tokens.get(token or "")
            if entry is None or self._dead(entry, self.clock()):
                return None
            return entry.app_id

    def _dead(self, entry: Token, now: float) -> bool:
        return entry.revoked or now - entry.issued_at >= self.config.token_ttl

    def expire_tokens(self) -> None:
        """Make every issued token invalid (the expire_token fault)."""
        with self.lock:
            for entry in self.tokens.values():
                entry.revoked = True

    # ----- rate limit -----------------------------------------------------------------
    def rate_limited(self, app_id: str, who: str) -> float | None:
        """Count one request of `who`; return seconds to wait if over 30 per 30 s, else None."""
        with self.lock:
            if not self.config.rate_limit:
                return None
            now, window = self.clock(), self.config.rate_limit_window
            hits = self._rate.setdefault((app_id, who), collections.deque())
            while hits and now - hits[0] >= window:
                hits.popleft()
            if len(hits) >= self.config.rate_limit_requests:
                return max(0.0, window - (now - hits[0]))
            hits.append(now)
            return None

    # ----- deletions ------------------------------------------------------------------
    def add_people(self, app_id: str, people: list[dict[str, str]]) -> int:
        """Make people exist in `app_id` from the start (a demo's users): each gets one
        "Signed up" event, and a user_id with an identity is identified with it."""
        with self.lock:
            environment, now = self.environment(app_id), self.clock()
            for person in people:
                identity, user_id = person.get("identity"), person.get("user_id")
                if identity and user_id:
                    environment.identify(user_id, identity, now)
                environment.track(
                    {"event": "Signed up", "identity": identity, "user_id": user_id}, now
                )
            return len(environment.users) + len(environment.anonymous)

    def create_deletion(self, app_id: str, users: list[dict[str, Any]]) -> DeletionRecord:
        """Record a new deletion request (every submission is a new one: no idempotency)."""
        with self.lock:
            record = DeletionRecord(str(uuid.uuid4()), app_id, users, created_at=self.clock())
            self.deletions[record.deletion_request_id] = record
            return record

    def poll_deletion(self, deletion_request_id: str) -> DeletionRecord | None:
        """Return a request for a status poll (counting the poll), or None if unknown."""
        with self.lock:
            record = self.deletions.get(deletion_request_id)
            if record is None:
                return None
            self._complete_if_due(record)
            record.polls += 1
            return record

    def advance(self) -> None:
        """Complete every request that is due (called on each request and state read)."""
        with self.lock:
            for record in list(self.deletions.values()):
                self._complete_if_due(record)

    def complete(self, ids: Iterable[str] | None = None) -> list[str]:
        """Force requests (all pending ones if `ids` is None) to complete now."""
        with self.lock:
            chosen = list(self.deletions) if ids is None else list(ids)
            done = []
            for request_id in chosen:
                record = self.deletions.get(request_id)
                if record is not None and record.status != "complete":
                    self._finish(record)
                    done.append(request_id)
            return done

    def _complete_if_due(self, record: DeletionRecord) -> None:
        if record.status == "complete" or self.config.complete_after is None:
            return
        waited = self.clock() - record.created_at >= self.config.complete_after
        polls = self.config.complete_after_polls
        if waited and (polls is None or record.polls >= polls):
            self._finish(record)

    def _finish(self, record: DeletionRecord) -> None:
        """Erase the request's users in every environment (one deletion covers them all)."""
        erased = 0
        for environment in self.environments.values():
            for user in record.users:
                erased += environment.erase(user)
                if "identity" in user:
                    self._rate.pop((environment.app_id, f"identity:{user['identity']}"), None)
        record.status, record.completed_at, record.users_erased = "complete", self.clock(), erased

    # ----- faults and the request log --------------------------------------------------
    def add_faults(self, faults: list[Fault], *, replace: bool = False) -> None:
        """Queue scripted faults (consumed in order by the requests they match)."""
        with self.lock:
            if replace:
                self.faults.clear()
            self.faults.extend(faults)

    def take_fault(self, method: str, path: str) -> Fault | None:
        """Return the fault for this request: the first matching scripted one, else dice."""
        with self.lock:
            for index, fault in enumerate(self.faults):
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        del self.faults[index]
                    return fault
            rate = self.config.fault_rate
            if rate and self._rng.random() < rate:
                return Fault(kind=self._rng.choice(self.config.fault_kinds), message="Random")
            return None

    def log_request(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Append a request to the log (the caller fills in its status later)."""
        with self.lock:
            self._request_seq += 1
            entry = {"seq": self._request_seq, "t": self.clock(), "notes": [], **entry}
            self.requests.append(entry)
            return entry

    def snapshot(self) -> dict[str, Any]:
        """Return everything held and received, as JSON-ready data (GET /_sandbox/state)."""
        with self.lock:
            self.advance()
            return {
                "config": self.config.to_json(),
                "environments": {
                    app_id: env.to_json() for app_id, env in sorted(self.environments.items())
                },
                "deletion_requests": [record.to_json() for record in self.deletions.values()],
                "requests": [{**entry, "notes": list(entry["notes"])} for entry in self.requests],
                "faults_pending": [fault.to_json() for fault in self.faults],
                "tokens_issued": self.tokens_issued,
            }

    def users(self, app_id: str | None = None) -> dict[str, Any]:
        """Return identified users by identity (of one app_id, default the configured one)."""
        with self.lock:
            self.advance()
            env = self.environments.get(app_id or self.config.app_id)
            return {} if env is None else {k: v.to_json() for k, v in env.users.items()}

    def request_paths(self) -> list[str]:
        """Return 'METHOD /path' of every logged request, oldest first (for tests)."""
        with self.lock:
            return [f"{entry['method']} {entry['path']}" for entry in self.requests]
