"""`desk demo-seed` (make demo): accounts, a sandbox environment and a sample list."""

from __future__ import annotations

from webapp import demo
from webapp.accounts import users as accounts
from webapp.cli import demo_seed
from webapp.db import session_scope
from webapp.environments import list_environments
from webapp.erasure import intake


def test_demo_seed_prepares_an_empty_desk(app, runner, tmp_path):
    result = runner.invoke(demo_seed, ["--sandbox-url", "http://127.0.0.1:8765"])
    assert result.exit_code == 0, result.output
    assert demo.DEMO_PASSWORD in result.output
    with app.app_context(), session_scope(write=False) as session:
        roles = {email: accounts.find_user(session, email).role for email, _ in demo.DEMO_ACCOUNTS}
        [env] = list_environments(session)
    assert sorted(roles.values()) == ["admin", "auditor", "officer", "officer"]
    assert env.main_production and env.base_url == "http://127.0.0.1:8765"
    again = runner.invoke(demo_seed, [])
    assert again.exit_code != 0 and "already has accounts" in again.output


def test_the_sample_list_shows_every_kind_of_row():
    from datetime import UTC, datetime

    today = datetime.now(UTC).date()
    upload = intake.read_csv(
        demo.sample_csv().encode("utf-8"),
        fingerprint_key="k" * 32,
        received_on=today,
        today=today,
        max_bytes=1_000_000,
    )
    classes = [row.classification for row in upload.rows]
    assert classes.count("valid") == 5
    assert {"duplicate", "malformed"} <= set(classes)
    assert any(row.warning for row in upload.rows)  # the case-only near-duplicate
