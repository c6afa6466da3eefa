"""What the load's users find when they sign in: accounts, an environment, batches in progress.

Everything goes through the desk's own services (uploads validated, approvals four-eyes,
submission and polling against the sandbox process), so pages and reports show real data.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask


@dataclass(frozen=True)
class Seeded:
    """The accounts and data a load run works with."""

    officers: tuple[str, ...]
    auditors: tuple[str, ...]
    environment_id: int
    batch_ids: tuple[int, ...]
    complete_ids: tuple[int, ...]
    lookups: tuple[str, ...]


def seed_csv(batch: int, rows: int) -> bytes:
    """A 1,000-row list like the officers' own (every fifth subject a Heap user_id)."""
    lines = ["user_id,identity,received_on,reference"]
    for n in range(rows):
        number = batch * rows + n
        if n % 5 == 0:
            lines.append(f"{40_000_000 + number},,2025-02-{1 + n % 28:02d},SEED-{batch}")
        else:
            lines.append(f",seed.{number}@example.org,2025-02-{1 + n % 28:02d},SEED-{batch}")
    return ("\r\n".join(lines) + "\r\n").encode()


def seed(
    app: Flask,
    *,
    heap_url: str,
    users: int,
    password: str,
    complete: int,
    waiting: int,
    rows: int,
) -> Seeded:
    """Create `users` accounts (half officers), Main Production on the sandbox, and batches."""
    from webapp import environments
    from webapp.accounts import users as accounts
    from webapp.db import session_scope
    from webapp.erasure import batches, polling, submission
    from webapp.models import Batch
    from webapp.sandbox import DEFAULT_API_KEY, DEFAULT_APP_ID

    officers = tuple(f"load-officer-{n:02d}@example.org" for n in range((users + 1) // 2))
    auditors = tuple(f"load-auditor-{n:02d}@example.org" for n in range(users // 2))
    with app.app_context(), session_scope(write=True) as session:
        for role, emails in (("officer", officers), ("auditor", auditors)):
            for email in emails:
                accounts.create_user(
                    session, actor="load", email=email, password=password, role=role
                )
        session.commit()
        env = environments.create_environment(
            session,
            actor="load",
            data=environments.EnvironmentInput(
                name="Main Production (sandbox)",
                app_id=DEFAULT_APP_ID,
                base_url=heap_url,
                main_production=True,
                api_key=DEFAULT_API_KEY,
            ),
        )
        env_id = env.id
    batch_ids = []
    for number in range(complete + waiting):
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session,
                actor=officers[0],
                environment_id=env_id,
                data=seed_csv(number, rows),
                filename=f"seed-{number}.csv",
            )
            batch_ids.append(batch.id)
    for batch_id in batch_ids[:complete]:
        with app.app_context(), session_scope(write=True) as session:
            batches.approve(session, actor=officers[1 % len(officers)], batch_id=batch_id)
    submission.submit_due(app)
    polling.poll_due(app)  # the sandbox completes every request at once
    with app.app_context(), session_scope(write=False) as session:
        states = {b: session.get(Batch, b).state for b in batch_ids[:complete]}
    if set(states.values()) != {"complete"}:
        raise RuntimeError(f"seeding did not complete its batches: {states}")
    lookups = tuple(
        f"seed.{batch * rows + n}@example.org"
        for batch in range(complete + waiting)
        for n in range(1, rows, 97)
    )
    return Seeded(
        officers, auditors, env_id, tuple(batch_ids), tuple(batch_ids[:complete]), lookups
    )
