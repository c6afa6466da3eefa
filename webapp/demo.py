"""`make demo`: a desk with three accounts and an environment pointed at the local Heap sandbox."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlmodel import Session

from webapp.accounts import users as accounts
from webapp.environments import (
    EnvironmentInput,
    EnvironmentInputError,
    create_environment,
    list_environments,
    update_environment,
)
from webapp.sandbox import DEFAULT_API_KEY, DEFAULT_APP_ID

DEMO_PASSWORD = "demo desk passphrase 7319"  # noqa: S105 (printed for the demo, never production)
DEMO_ACCOUNTS = [
    ("admin@demo.example", "admin"),
    ("ada.officer@demo.example", "officer"),
    ("ben.officer@demo.example", "officer"),
    ("cleo.auditor@demo.example", "auditor"),
]


class DemoError(RuntimeError):
    """The demo cannot be seeded (for instance, the database already has accounts)."""


def sample_csv(today: datetime | None = None) -> str:
    """A list of subjects with the usual problems: what an officer receives in practice.

    Seven rows, as the README's tour shows them: four to send (two identities differ only in
    letter case, flagged for a check), a duplicate, a user_id that is not a number, and a row
    that fills both user_id and identity.
    """
    today = (today or datetime.now(UTC)).date()
    rows = [
        ("user_id", "identity", "received_on", "reference"),
        ("7364029184", "", (today - timedelta(days=3)).isoformat(), "DSR-101"),
        ("", "ada@example.com", (today - timedelta(days=26)).isoformat(), "DSR-102"),
        ("", "Ada@Example.com", (today - timedelta(days=26)).isoformat(), "DSR-102"),
        ("", "bob@example.org", today.isoformat(), "DSR-103"),
        ("", "bob@example.org", today.isoformat(), "DSR-103"),
        ("12ab34", "", today.isoformat(), "DSR-104"),
        ("5550001", "cy@example.org", (today - timedelta(days=10)).isoformat(), "DSR-105"),
    ]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


ENVIRONMENT_NAME = "Main Production (sandbox)"


def repoint(session: Session, *, sandbox_url: str) -> bool:
    """On a seeded demo database, point the demo environment at `sandbox_url` (the sandbox may
    run on another port this time); True when it was changed. Other databases: DemoError."""
    if accounts.find_user(session, DEMO_ACCOUNTS[0][0]) is None:
        raise DemoError("This database already has accounts: the demo seeds an empty one only.")
    env = next((e for e in list_environments(session) if e.name == ENVIRONMENT_NAME), None)
    if env is None:
        raise DemoError(f"The demo environment “{ENVIRONMENT_NAME}” is gone: run make demo-reset.")
    if env.base_url == sandbox_url:
        return False
    data = EnvironmentInput(
        name=env.name,
        app_id=env.app_id,
        region=env.region,
        base_url=sandbox_url,
        main_production=env.main_production,
        api_key="",
        account_property=env.account_property,
    )
    try:
        update_environment(session, actor="demo", environment_id=env.id, data=data)
    except EnvironmentInputError as error:
        session.rollback()
        raise DemoError(str(error)) from None
    return True


def seed(session: Session, *, sandbox_url: str, csv_path: Path) -> list[str]:
    """Create the demo accounts and environment; write a sample upload; commit."""
    if accounts.user_count(session):
        raise DemoError("This database already has accounts: the demo seeds an empty one only.")
    for email, role in DEMO_ACCOUNTS:
        accounts.create_user(session, actor="demo", email=email, password=DEMO_PASSWORD, role=role)
    data = EnvironmentInput(
        name=ENVIRONMENT_NAME,
        app_id=DEFAULT_APP_ID,
        base_url=sandbox_url,
        main_production=True,
        api_key=DEFAULT_API_KEY,
        account_property="account_id",
    )
    try:
        # A loopback base URL is accepted only when listed: `make demo` lists the sandbox.
        create_environment(session, actor="demo", data=data)
    except EnvironmentInputError as error:
        session.rollback()
        raise DemoError(
            f"{error} `make demo` sets DESK_HEAP_URL_ALLOWLIST to the sandbox's host:port."
        ) from None
    session.commit()
    csv_path.write_text(sample_csv(), encoding="utf-8")
    return [email for email, _ in DEMO_ACCOUNTS]
