"""The load run's surroundings: a throwaway database, fresh secrets, `desk` processes."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import requests
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

DESK = str(Path(sys.executable).parent / "desk")
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(url: str, process: subprocess.Popen, log: Path) -> None:
    """Wait for `url` to answer 200; fail with the log's tail if the process dies first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path, ready_url: str) -> Iterator[None]:
    """Run `desk <args>` until the block ends (SIGTERM, then SIGKILL after 20 s)."""
    with log.open("w") as out:
        child = subprocess.Popen([DESK, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until(ready_url, child, log)
        yield
    finally:
        child.terminate()
        try:
            child.wait(timeout=20)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=10)


@contextlib.contextmanager
def database(server_url: str | None, folder: Path) -> Iterator[str]:
    """A fresh migrated database: throwaway on the PostgreSQL server named, else SQLite."""
    from webapp import migrations

    if not (server_url or "").startswith("postgresql"):
        url = f"sqlite:///{folder / 'load.db'}"
        migrations.upgrade(url)
        yield url
        return
    name = f"desk_load_{uuid.uuid4().hex[:10]}"
    admin = make_url(server_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        url = make_url(server_url).set(database=name).render_as_string(False)
        migrations.upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def desk_settings(database_url: str) -> dict[str, str]:
    """The DESK_* environment the server and the seeding share (fresh secrets)."""
    return {
        "DESK_DATABASE_URL": database_url,
        "DESK_SECRET_KEY": secrets.token_urlsafe(48),
        "DESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DESK_FINGERPRINT_KEY": secrets.token_urlsafe(48),
        "DESK_SIGNING_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "DESK_SCHEDULER": "off",
        "DESK_HEAP_URL_ALLOWLIST": "127.0.0.1",  # the local sandbox stands in for Heap
        "DESK_2FA_REQUIRED_ROLES": "",  # the load accounts sign in with a password only
    }


@contextlib.contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """Set DESK_* for this process (the seeding app) and put the old values back after."""
    saved = {key: os.environ.pop(key) for key in list(os.environ) if key.startswith("DESK_")}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key in settings:
            os.environ.pop(key, None)
        os.environ.update(saved)
