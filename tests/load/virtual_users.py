"""The load's virtual users: officers and auditors working in the desk over real HTTP.

Each user has its own `requests.Session` (its cookie jar), signs in through the login form with
its CSRF token, then works until the deadline: a think time, then a weighted random action.
Every request's latency (to the last byte) and outcome is recorded.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import requests

CSRF_PATTERNS = (
    re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"'),
    re.compile(r'name="csrf_token" value="([^"]+)"'),
)
REQUEST_TIMEOUT = 30.0
# Page types: HTML a person waits for while working. Signing in (its own phase), uploads and
# downloads are reported apart.
PAGES = ("dashboard", "batch list", "batch detail", "lookup", "upload form")
LOGIN_FORM, SIGN_IN = "sign-in form", "sign-in (argon2)"
UPLOAD, REPORT = "upload 1k rows", "report.csv"


@dataclass(frozen=True)
class Sample:
    """One request: what it was, how long it took (ms), whether it went as expected."""

    kind: str
    ms: float
    ok: bool
    detail: str = ""
    at: float = field(default_factory=time.monotonic)  # when it ended


@dataclass
class Recorder:
    """Samples from every thread."""

    samples: list[Sample] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


@dataclass(frozen=True)
class Plan:
    """What the users work on, and for how long."""

    base_url: str
    password: str
    environment_id: int
    batch_ids: tuple[int, ...]  # every seeded batch (detail pages)
    complete_ids: tuple[int, ...]  # completed batches (reports worth downloading)
    lookups: tuple[str, ...]  # identities the seeded batches hold
    think: tuple[float, float]  # seconds between two actions, uniform
    rows_per_upload: int = 1000


def csrf_token(html: str) -> str | None:
    """The CSRF token of a page's form, if it has one."""
    for pattern in CSRF_PATTERNS:
        match = pattern.search(html)
        if match:
            return match.group(1)
    return None


def upload_csv(user: int, upload: int, rows: int) -> bytes:
    """A list as officers upload it: identities and user_ids, recent dates, a ticket reference.

    Requests arrived over the last four weeks, as in a desk that keeps up: a few are due
    within the week, none overdue (the dashboard lists those at risk).
    """
    today = datetime.now(UTC).date()
    lines = ["user_id,identity,received_on,reference"]
    for n in range(rows):
        number = (user * 1000 + upload) * rows + n
        received = (today - timedelta(days=n % 28)).isoformat()
        if n % 5 == 0:
            lines.append(f"{50_000_000 + number},,{received},LOAD-{user}-{upload}")
        else:
            lines.append(f",load.{number}@example.org,{received},LOAD-{user}-{upload}")
    return ("\r\n".join(lines) + "\r\n").encode()


class VirtualUser:
    """One signed-in officer or auditor."""

    def __init__(self, number: int, email: str, role: str, plan: Plan, recorder: Recorder):
        self.number = number
        self.email = email
        self.role = role
        self.plan = plan
        self.recorder = recorder
        self.rng = random.Random(number)  # noqa: S311 - a reproducible mix of actions
        self.http = requests.Session()
        # One connection per request, as nginx forwards to gunicorn in the documented set-up;
        # it also keeps gunicorn's 2 s keep-alive from racing the users' think time.
        self.http.headers["Connection"] = "close"
        self.uploads = 0
        actions: list[tuple[Callable[[], None], int]] = [
            (self.dashboard, 3),
            (self.batch_list, 2),
            (self.batch_detail, 3),
            (self.lookup, 2),
            (self.report, 1 if role == "officer" else 2),
        ]
        if role == "officer":
            actions.append((self.upload, 1))
        self.actions = [action for action, _ in actions]
        self.weights = [weight for _, weight in actions]

    # --- the loop ---------------------------------------------------------------------------
    def work(self, deadline: float) -> None:
        """Act and think until the deadline (a first think spreads the users' starts)."""
        try:
            while self._think(deadline):
                self.rng.choices(self.actions, self.weights)[0]()
        finally:
            self.http.close()

    def _think(self, deadline: float) -> bool:
        pause = self.rng.uniform(*self.plan.think)
        time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
        return time.monotonic() < deadline

    def request(
        self, kind: str, method: str, path: str, expect: int = 200, **kwargs
    ) -> requests.Response | None:
        """Send one request, read the whole body, record it; the response if it was `expect`."""
        started = time.perf_counter()
        try:
            response = self.http.request(
                method,
                self.plan.base_url + path,
                allow_redirects=False,
                timeout=REQUEST_TIMEOUT,
                **kwargs,
            )
            response.content  # noqa: B018 - the last byte is part of the latency
        except requests.RequestException as error:
            ms = (time.perf_counter() - started) * 1000
            detail = f"{type(error).__name__} {method} {path}: {error}"[:300]
            self.recorder.add(Sample(kind, ms, False, detail))
            return None
        ms = (time.perf_counter() - started) * 1000
        ok = response.status_code == expect
        detail = "" if ok else f"HTTP {response.status_code} {path}"
        self.recorder.add(Sample(kind, ms, ok, detail))
        return response if ok else None

    def form_token(self, kind: str, path: str) -> str | None:
        """GET a form page and return its CSRF token (a page without one is an error)."""
        page = self.request(kind, "GET", path)
        token = csrf_token(page.text) if page is not None else None
        if page is not None and token is None:
            self.recorder.add(Sample(kind, 0.0, False, f"no CSRF token on {path}"))
        return token

    # --- actions ----------------------------------------------------------------------------
    def sign_in(self) -> bool:
        """The real login form: GET it for the CSRF token, POST e-mail and password."""
        token = self.form_token(LOGIN_FORM, "/login")
        if token is None:
            return False
        data = {"email": self.email, "password": self.plan.password, "csrf_token": token}
        answer = self.request(SIGN_IN, "POST", "/login", expect=302, data=data)
        location = answer.headers.get("Location", "") if answer is not None else ""
        if answer is not None and not location.endswith("/dashboard"):
            # E.g. a second factor asked for: this user cannot work, which is an error too.
            self.recorder.add(Sample(SIGN_IN, 0.0, False, f"signed in to {location!r}"))
        return location.endswith("/dashboard")

    def dashboard(self) -> None:
        self.request("dashboard", "GET", "/dashboard")

    def batch_list(self) -> None:
        query = self.rng.choice(["", "?page=2", "?state=complete", "?state=awaiting_approval"])
        self.request("batch list", "GET", "/batches" + query)

    def batch_detail(self, batch_id: int | None = None) -> None:
        batch_id = batch_id or self.rng.choice(self.plan.batch_ids)
        self.request("batch detail", "GET", f"/batches/{batch_id}")

    def lookup(self) -> None:
        """The lookup form, then the lookup itself: POSTed, so the identity is in no URL."""
        token = self.form_token("lookup", "/lookup")
        if token is None:
            return
        data = {
            "environment_id": str(self.plan.environment_id),
            "kind": "identity",
            "value": self.rng.choice(self.plan.lookups),
            "csrf_token": token,
        }
        self.request("lookup", "POST", "/lookup", data=data)

    def report(self) -> None:
        batch_id = self.rng.choice(self.plan.complete_ids)
        self.request(REPORT, "GET", f"/batches/{batch_id}/report.csv")

    def upload(self) -> None:
        """The upload form, a 1,000-row CSV posted with its CSRF token, then the new batch."""
        token = self.form_token("upload form", "/batches/new")
        if token is None:
            return
        self.uploads += 1
        data = {
            "csrf_token": token,
            "environment_id": str(self.plan.environment_id),
            "paste_kind": "identity",
            "reference": f"LOAD-{self.number}-{self.uploads}",
        }
        body = upload_csv(self.number, self.uploads, self.plan.rows_per_upload)
        files = {"file": (f"list-{self.number}-{self.uploads}.csv", body, "text/csv")}
        answer = self.request(UPLOAD, "POST", "/batches/new", expect=302, data=data, files=files)
        location = answer.headers.get("Location", "") if answer is not None else ""
        match = re.search(r"/batches/(\d+)$", location)
        if match:
            self.batch_detail(int(match.group(1)))
        elif answer is not None:
            self.recorder.add(Sample(UPLOAD, 0.0, False, f"redirected to {location!r}"))
