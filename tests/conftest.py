"""Shared pytest fixtures: a migrated database per test, app, client, runner, auth, sandbox.

The suite runs on SQLite by default and on PostgreSQL when DESK_DATABASE_URL points at one
(.ci/run starts a throwaway cluster). Migrations run once into a template; every test then gets
its own copy (a file copy on SQLite, CREATE DATABASE ... TEMPLATE on PostgreSQL).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import uuid
from pathlib import Path

import psycopg
import pytest
from cryptography.fernet import Fernet
from sandbox_fixtures import *  # noqa: F401,F403  (the Heap sandbox fixtures)
from sandbox_fixtures import SANDBOX_ALLOWLIST
from sqlalchemy.engine import make_url

from webapp import create_app, migrations
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.db import session_scope

PASSWORD = "correct horse battery staple"
BASE_URL = os.environ.get("DESK_DATABASE_URL", "")
ON_POSTGRES = BASE_URL.startswith("postgresql")
FAST_ARGON2 = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}


def pytest_collection_modifyitems(config, items):
    """Skip PostgreSQL-only tests on SQLite runs (CI runs the suite on both)."""
    if ON_POSTGRES:
        return
    skip = pytest.mark.skip(
        reason="needs PostgreSQL: run with DESK_DATABASE_URL=postgresql+psycopg://…"
    )
    for item in items:
        if "postgres_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch):
    """Tests may talk to loopback only (indico's pattern: any other connection fails)."""
    real_connect = socket.socket.connect

    def guarded(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in {"::1", "localhost"} or host.startswith("/")
        ):
            raise OSError(f"tests may not connect to {host!r}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def _pg_url(dbname: str, driver: str = "postgresql+psycopg") -> str:
    """The test server's URL with another database (and driver) name."""
    url = make_url(BASE_URL).set(drivername=driver, database=dbname)
    return url.render_as_string(hide_password=False)


def _pg_exec(sql: str) -> None:
    with psycopg.connect(_pg_url("postgres", driver="postgresql"), autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture(scope="session")
def template_database(tmp_path_factory):
    """Migrate once; every test copies the result."""
    if ON_POSTGRES:
        name = f"desk_tpl_{uuid.uuid4().hex[:10]}"
        _pg_exec(f'CREATE DATABASE "{name}"')
        migrations.upgrade(_pg_url(name))
        yield name
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrations.upgrade(f"sqlite:///{path}")
        yield path


@pytest.fixture
def database_url(template_database, tmp_path):
    """A freshly migrated database of the test's own."""
    if ON_POSTGRES:
        name = f"desk_t_{uuid.uuid4().hex[:12]}"
        _pg_exec(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield _pg_url(name)
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        target = tmp_path / "desk.db"
        shutil.copy(template_database, target)
        yield f"sqlite:///{target}"


@pytest.fixture
def empty_database_url(tmp_path):
    """An empty database (for migration tests)."""
    if ON_POSTGRES:
        name = f"desk_e_{uuid.uuid4().hex[:12]}"
        _pg_exec(f'CREATE DATABASE "{name}"')
        yield _pg_url(name)
        _pg_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    else:
        yield f"sqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture
def desk_env(database_url, tmp_path, monkeypatch) -> dict:
    """The DESK_* environment of a test desk: its own database and secrets."""
    env = {
        "DESK_DATABASE_URL": database_url,
        "DESK_SECRET_KEY": "test-secret-key-" + uuid.uuid4().hex,
        "DESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DESK_FINGERPRINT_KEY": "test-fingerprint-key-" + uuid.uuid4().hex,
        "DESK_SCHEDULER": "off",
        # Subprocesses (schedulers, crash tests) read it here; `app` sets it for in-process.
        "DESK_HEAP_URL_ALLOWLIST": ",".join(SANDBOX_ALLOWLIST),
    }
    for key in list(os.environ):
        if key.startswith("DESK_") and key not in env:
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def app(desk_env, tmp_path):
    """The desk, configured for tests (fast password hashing, its own instance folder)."""
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "ARGON2_PARAMS": FAST_ARGON2,
            "DESK_HEAP_TIMEOUT": (2.0, 3.0),
            # The sandboxes listen on 127.0.0.1 (a new port each): a loopback base URL is
            # accepted only when listed. tests/security/test_base_urls.py narrows it.
            "DESK_HEAP_URL_ALLOWLIST": list(SANDBOX_ALLOWLIST),
            "DESK_2FA_REQUIRED_ROLES": "",  # tests/accounts/test_two_factor.py turns it on
        }
    )
    yield app
    engine = app.extensions.get("desk_engine")
    if engine is not None:
        engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def make_user(app):
    """Create an account: make_user('officer') → its e-mail address."""
    counter = iter(range(1, 10_000))

    def make(role: str = "officer", email: str | None = None, password: str = PASSWORD) -> str:
        email = email or f"{role}{next(counter)}@example.org"
        with app.app_context(), session_scope(write=True) as session:
            accounts.create_user(session, actor="test", email=email, password=password, role=role)
            session.commit()
        return email

    return make


class AuthActions:
    """Sign in and out through the real forms (CSRF tokens included)."""

    def __init__(self, client):
        self.client = client

    def csrf(self, path: str = "/login") -> str:
        if not self.client.application.config.get("WTF_CSRF_ENABLED", True):
            return ""
        page = self.client.get(path).get_data(as_text=True)
        match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
            r'name="csrf_token" value="([^"]+)"', page
        )
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def login(self, email: str, password: str = PASSWORD):
        token = self.csrf("/login")
        return self.client.post(
            "/login", data={"email": email, "password": password, "csrf_token": token}
        )

    def logout(self):
        token = self.csrf("/dashboard")
        return self.client.post("/logout", data={"csrf_token": token})

    def post(self, path: str, data: dict | None = None, form_page: str | None = None, **kwargs):
        """POST a form with a CSRF token taken from `form_page` (default: the same path)."""
        token = self.csrf(form_page or path)
        return self.client.post(path, data={**(data or {}), "csrf_token": token}, **kwargs)


@pytest.fixture
def auth(client):
    return AuthActions(client)


@pytest.fixture
def login_as(make_user, auth):
    """Create an account of `role` and sign the test client in as it; returns the e-mail."""

    def login(role: str = "officer") -> str:
        email = make_user(role)
        response = auth.login(email)
        assert response.status_code == 302, response.get_data(as_text=True)
        return email

    return login


@pytest.fixture
def api_token(app, make_user):
    """An API token for a new account of `role`: api_token('auditor') → 'desk_…'."""

    def make(role: str = "officer") -> str:
        email = make_user(role)
        with app.app_context(), session_scope(write=True) as session:
            user = accounts.find_user(session, email)
            return api_tokens.create_api_token(session, actor="test", user=user, name="test")

    return make


@pytest.fixture
def artifacts_dir() -> Path:
    """Where browser tests keep their screenshots."""
    path = Path(__file__).resolve().parent.parent / "test-artifacts"
    path.mkdir(exist_ok=True)
    return path


# --- browser tests ------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
def live_server(app):
    """The desk served over real HTTP on a free loopback port, in a thread."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def sign_in_page(page, server: str, email: str) -> None:
    """Sign a browser page in with the password (two-factor off) and land on the dashboard."""
    page.goto(server + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/dashboard")


@pytest.fixture
def browser():
    """Debian's chromium through Playwright, for tests that open several contexts."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(artifacts_dir):
    """A Playwright page in Debian's chromium (never `playwright install`)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()
