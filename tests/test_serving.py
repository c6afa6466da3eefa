"""`desk serve --workers N` as a real process: gunicorn workers, the scheduler in or out of them.

Each process test serves the test's own migrated database (SQLite, or PostgreSQL when the suite
runs on it) on a free loopback port and asks /api/v1/health what it sees (with an admin's token:
anyone else is told only "ok" or "degraded"). The deployment examples
in deploy/ are checked against the configuration they feed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
import requests
from assistant_helpers import answer, connect

from webapp.config import ConfigError, load_settings
from webapp.db import session_scope
from webapp.lease import LEASE_NAME
from webapp.models import SchedulerLease, utcnow

ROOT = Path(__file__).resolve().parent.parent
DESK = str(Path(sys.executable).parent / "desk")
START_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_pids(pid: int) -> set[int]:
    """The gunicorn master's child processes (its workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def wait_for(check: Callable[[], object], what: str, process, log: Path, timeout: float):
    """Poll `check` until it returns something truthy; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            result = check()
        except requests.ConnectionError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def stop(process: subprocess.Popen) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout=20)


@pytest.fixture
def start(desk_env, tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start a `desk` subcommand on the test's database; stopped at the end of the test."""
    started: list[subprocess.Popen] = []

    def run(*args: str, scheduler: str, log: str) -> subprocess.Popen:
        env = {**os.environ, "DESK_SCHEDULER": scheduler}
        process = subprocess.Popen(
            [DESK, *args],
            env=env,
            cwd=tmp_path,
            stdout=(tmp_path / log).open("w"),
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        stop(process)


@pytest.fixture
def health(api_token) -> Callable[[str], dict]:
    """GET a health URL with an admin's token: the details (anyone else gets the status only)."""
    headers = {"Authorization": f"Bearer {api_token('admin')}"}

    def get(url: str) -> dict:
        return requests.get(url, headers=headers, timeout=5).json()

    return get


def serve(start, tmp_path: Path, *, scheduler: str, workers: int = 2):
    """`desk serve --workers N`, once it answers: (process, health URL, its log)."""
    port = free_port()
    args = ("serve", "--workers", str(workers), "--threads", "2", "--host", "127.0.0.1")
    process = start(*args, "--port", str(port), scheduler=scheduler, log="serve.log")
    url = f"http://127.0.0.1:{port}/api/v1/health"
    log = tmp_path / "serve.log"
    wait_for(lambda: requests.get(url, timeout=2).ok, "no answer", process, log, START_TIMEOUT)

    def booted() -> bool:  # the first worker may answer before the others are forked
        return len(worker_pids(process.pid)) == workers

    wait_for(booted, f"{workers} workers not booted", process, log, START_TIMEOUT)
    return process, url, log


def lease_row(app) -> SchedulerLease | None:
    with app.app_context(), session_scope(write=False) as session:
        return session.get(SchedulerLease, LEASE_NAME)


@pytest.mark.slow
def test_web_workers_without_a_scheduler_serve_and_hold_no_lease(app, start, tmp_path, health):
    process, url, log = serve(start, tmp_path, scheduler="off")
    for _ in range(6):  # spread over the workers: each answers from the same database
        body = health(url)
        assert body["status"] == "ok" and body["database"]["at_head"]
    assert body["scheduler"]["mode"] == "off"
    assert body["scheduler"]["lease_holder"] is None
    assert body["scheduler"]["open_heap_requests"] == 0
    assert stop(process) == 0
    assert lease_row(app) is None  # no worker ever ran a job


@pytest.mark.slow
def test_inprocess_scheduler_one_worker_holds_the_lease_and_hands_it_back(
    app, start, tmp_path, health
):
    process, url, log = serve(start, tmp_path, scheduler="inprocess")
    workers = worker_pids(process.pid)

    def holder() -> str | None:
        return health(url)["scheduler"].get("lease_holder")

    held_by = wait_for(holder, "no worker took the lease", process, log, START_TIMEOUT)
    pid = int(held_by.split(":")[1])
    assert pid in workers and pid != process.pid
    body = health(url)
    assert "scheduler" in body, body
    scheduler = body["scheduler"]
    assert scheduler["mode"] == "inprocess" and scheduler["lease_valid"]
    assert stop(process) == 0
    assert lease_row(app).expires_at <= utcnow()  # released at shutdown: a successor starts now


@pytest.mark.slow
def test_a_separate_scheduler_process_works_for_web_workers(app, start, tmp_path, health):
    """The scaled layout: web workers with DESK_SCHEDULER=off and one `desk scheduler`."""
    scheduler = start("scheduler", scheduler="off", log="scheduler.log")
    process, url, log = serve(start, tmp_path, scheduler="off")

    def holder() -> str | None:
        return health(url)["scheduler"].get("lease_holder")

    held_by = wait_for(holder, "the scheduler never took the lease", scheduler, log, START_TIMEOUT)
    assert int(held_by.split(":")[1]) == scheduler.pid

    def ticked() -> str | None:
        # The lease is taken before the first round of jobs ends and records its tick.
        return health(url)["scheduler"].get("last_tick_at")

    assert wait_for(ticked, "the scheduler never ticked", scheduler, log, START_TIMEOUT)
    assert stop(scheduler) == 0
    assert stop(process) == 0


def example_environment() -> dict[str, str]:
    """deploy/desk.env.example as systemd's EnvironmentFile= reads it."""
    env = {}
    for line in (ROOT / "deploy" / "desk.env.example").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


@pytest.mark.slow
def test_mcp_is_served_by_the_same_workers_on_the_same_port(app, start, tmp_path, api_token):
    """`desk serve` carries /mcp too: the gthread workers, the SDK's ASGI app through a2wsgi."""
    process, url, log = serve(start, tmp_path, scheduler="off")
    mcp = url.replace("/api/v1/health", "/mcp")
    token = api_token("officer")

    async def run() -> list[dict]:
        answers = []
        for _ in range(4):  # a connection each: spread over both workers
            async with connect(mcp, token) as client:
                answers.append(answer(await client.call_tool("list_batches", {})))
        return answers

    assert [body["total"] for body in anyio.run(run)] == [0, 0, 0, 0]
    assert requests.post(mcp, json={}, timeout=5).status_code == 401
    assert stop(process) == 0  # each worker's MCP event loop stops with it
    access = log.read_text()
    assert '"POST /mcp" 200' in access and '"POST /mcp" 401' in access
    assert "Traceback" not in access


def test_the_example_environment_refuses_to_start_until_its_secrets_are_set(tmp_path):
    env = example_environment()
    assert "DESK_SCHEDULER" not in env  # the web unit's `DESK_SCHEDULER=off` must not be undone
    with pytest.raises(ConfigError, match="DESK_SECRET_KEY, DESK_ENCRYPTION_KEYS"):
        load_settings(tmp_path, env)
    filled = {
        **env,
        "DESK_SECRET_KEY": "k" * 48,
        "DESK_ENCRYPTION_KEYS": "uoFrYAP0Ns1yZt0uLt0w8nbETJF4vYc1HjGEQH3Fv0M=",
        "DESK_FINGERPRINT_KEY": "f" * 48,
        "DESK_SMTP_HOST": "smtp.example.org",
        "DESK_SMTP_FROM": "deletion-desk@example.org",
        "DESK_ALERT_RECIPIENTS": "dpo@example.org",
    }
    with pytest.raises(ConfigError, match="DESK_SMTP_USERNAME and DESK_SMTP_PASSWORD together"):
        load_settings(tmp_path, {**filled, "DESK_SMTP_USERNAME": "desk"})
    settings = load_settings(tmp_path, filled)
    assert settings["SESSION_COOKIE_SECURE"] and settings["DESK_PROXY_HOPS"] == 1
    assert settings["DESK_ALERTS_ENABLED"] and settings["DESK_SMTP_STARTTLS"]
    assert settings["DESK_PUBLIC_URL"] == "https://desk.example.org"


def test_the_example_units_run_web_workers_without_the_scheduler():
    web = (ROOT / "deploy" / "systemd" / "desk-web.service").read_text()
    scheduler = (ROOT / "deploy" / "systemd" / "desk-scheduler.service").read_text()
    procfile = (ROOT / "deploy" / "Procfile").read_text()
    assert (
        "ExecStart=/usr/bin/env DESK_SCHEDULER=off /opt/deletion-desk/.venv/bin/desk serve " in web
    )
    assert "ExecStart=/opt/deletion-desk/.venv/bin/desk scheduler" in scheduler
    assert "web: env DESK_SCHEDULER=off desk serve" in procfile
    assert "scheduler: desk scheduler" in procfile
    for unit in (web, scheduler):
        assert "EnvironmentFile=/etc/deletion-desk/desk.env" in unit
