"""Poll 1,000 open Heap deletion requests against the sandbox at 50 ms latency: ≤ 15 s.

One polling run, 4 calls at a time (the default), on SQLite, with the sandbox in its own
process (`desk sandbox`), as Heap is: first while Heap still answers `pending` for every
request (the daily case), then after Heap completed them all (every chunk, subject and batch
is recorded complete, and audited, in the same run). The baseline is the same 1,000 GETs
from 4 threads with bare `requests` and no desk at all: 12.5 s of latency plus what HTTP
itself costs on the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import requests

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from workflow_factories import make_accepted_chunks, make_environment  # noqa: E402

from webapp import create_app, migrations  # noqa: E402
from webapp.erasure import polling  # noqa: E402
from webapp.heap import HeapClient  # noqa: E402
from webapp.models import utcnow  # noqa: E402
from webapp.sandbox import DEFAULT_API_KEY, DEFAULT_APP_ID  # noqa: E402

REQUESTS = 1000
BATCHES = 100
LATENCY_MS = 50
LIMIT_SECONDS = 15.0


def _app(folder: Path):
    """A desk on a fresh SQLite database with its own generated secrets."""
    url = f"sqlite:///{folder / 'bench.db'}"
    migrations.upgrade(url)
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("DESK_")}
    try:
        return create_app(
            {
                "INSTANCE_PATH": str(folder / "instance"),
                "DATABASE_URL": url,
                "DESK_HEAP_URL_ALLOWLIST": ["127.0.0.1"],  # the local sandbox stands in for Heap
            }
        )
    finally:
        os.environ.update(saved)


def _start_sandbox() -> tuple[subprocess.Popen, SimpleNamespace]:
    """`desk sandbox` on a free port; returns the process and where it listens."""
    desk = str(Path(sys.executable).parent / "desk")
    process = subprocess.Popen(
        [desk, "sandbox", "--port", "0", "--no-rate-limit"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    first_line = process.stdout.readline()  # "Heap sandbox listening on http://127.0.0.1:P"
    url = first_line.strip().rsplit(" ", 1)[-1]
    return process, SimpleNamespace(url=url, app_id=DEFAULT_APP_ID, api_key=DEFAULT_API_KEY)


def _baseline(heap: SimpleNamespace, ids: list[str]) -> float:
    """Seconds for the same GETs from 4 threads with bare `requests` (one session each)."""
    token = requests.post(
        f"{heap.url}/api/public/v0/auth_token", auth=(heap.app_id, heap.api_key), timeout=5
    ).json()["access_token"]
    local = threading.local()

    def get(request_id: str) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        url = f"{heap.url}/api/public/v0/deletion_status/{request_id}"
        headers = {"Authorization": f"Bearer {token}"}
        return local.session.get(url, headers=headers, timeout=5).status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = set(pool.map(get, ids))
    assert statuses == {200}, statuses
    return time.perf_counter() - started


def _timed_poll(app, name: str, now, baseline: float) -> dict:
    started = time.perf_counter()
    polled = polling.poll_due(app, now=now)
    seconds = time.perf_counter() - started
    return {
        "name": name,
        "value": seconds,
        "unit": "s",
        "limit": LIMIT_SECONDS,
        "ok": seconds <= LIMIT_SECONDS and polled == REQUESTS,
        "baseline": baseline,
        "note": (
            f"{polled} polled, {LATENCY_MS} ms latency, 4 at a time, SQLite; "
            f"bare HTTP baseline {baseline:.2f} s"
        ),
    }


def run() -> list[dict]:
    """Time one polling run over 1,000 open requests, pending and then complete."""
    with tempfile.TemporaryDirectory() as folder:
        app = _app(Path(folder))
        process, heap = _start_sandbox()
        admin = requests.Session()
        try:
            admin.post(f"{heap.url}/_sandbox/config", json={"complete_after": None}, timeout=5)
            env_id = make_environment(app, heap)
            ids: list[str] = []

            def create(users: list[dict]) -> str:
                ids.append(client.delete_users(users).deletion_request_id)
                return ids[-1]

            with HeapClient(
                app_id=heap.app_id,
                api_key=heap.api_key,
                base_url=heap.url,
                allowlist=["127.0.0.1"],  # the local sandbox (DESK_HEAP_URL_ALLOWLIST)
            ) as client:
                per_batch = REQUESTS // BATCHES
                for number in range(BATCHES):
                    make_accepted_chunks(
                        app, None, env_id, chunks=per_batch, start=number * per_batch, create=create
                    )
            admin.post(f"{heap.url}/_sandbox/config", json={"latency_ms": LATENCY_MS}, timeout=5)
            baseline = _baseline(heap, ids)
            now = utcnow()
            pending = _timed_poll(app, "poll 1,000 open requests (all pending)", now, baseline)
            admin.post(f"{heap.url}/_sandbox/complete", json={}, timeout=5)
            interval = polling.setting(app, "DESK_POLL_INTERVAL_SECONDS")
            later = now + timedelta(seconds=interval)
            done = _timed_poll(app, "poll 1,000 open requests (all complete)", later, baseline)
        finally:
            admin.close()
            process.terminate()
            process.wait(timeout=10)
            engine = app.extensions.get("desk_engine")
            if engine is not None:
                engine.dispose()
    return [pending, done]


if __name__ == "__main__":
    for figure in run():
        print(figure)
