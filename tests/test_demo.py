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
    assert again.exit_code == 0 and "seeded already" in again.output


def test_demo_seed_points_a_seeded_demo_at_the_sandboxs_new_port(app, runner):
    assert runner.invoke(demo_seed, ["--sandbox-url", "http://127.0.0.1:8765"]).exit_code == 0
    moved = runner.invoke(demo_seed, ["--sandbox-url", "http://127.0.0.1:9876"])
    assert moved.exit_code == 0, moved.output
    assert "now points at http://127.0.0.1:9876" in moved.output
    assert demo.DEMO_ACCOUNTS[1][0] in moved.output
    with app.app_context(), session_scope(write=False) as session:
        [env] = list_environments(session)
    assert env.base_url == "http://127.0.0.1:9876"


def test_demo_seed_leaves_a_database_that_is_not_the_demos_alone(app, runner, make_user):
    make_user("admin", email="someone@example.org")
    refused = runner.invoke(demo_seed, ["--sandbox-url", "http://127.0.0.1:8765"])
    assert refused.exit_code != 0 and "already has accounts" in refused.output
    with app.app_context(), session_scope(write=False) as session:
        assert list_environments(session) == []


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
    # The README's tour: seven rows, four to send, two malformed, one duplicate.
    assert len(classes) == 7
    assert (classes.count("valid"), classes.count("malformed"), classes.count("duplicate")) == (
        4,
        2,
        1,
    )
    assert any(row.warning for row in upload.rows)  # the case-only near-duplicate


def test_the_demo_people_exist_in_the_sandbox_and_a_deletion_erases_them():
    from webapp.sandbox.cli import read_people
    from webapp.sandbox.state import SandboxState

    people = read_people(demo.sample_csv())
    # 12ab34 is no Heap user_id; the duplicate row names bob again.
    assert {"identity": "bob@example.org"} in people and len(people) == 6
    state = SandboxState()
    assert state.add_people("3000610572", people) == 5  # ada, Ada, bob, cy (+5550001), 7364029184
    record = state.create_deletion(
        "3000610572",
        [
            {"user_id": "7364029184"},
            {"identity": "ada@example.com"},
            {"identity": "bob@example.org"},
        ],
    )
    state.complete([record.deletion_request_id])
    assert record.users_erased == 3


def test_make_demo_takes_its_ports_and_can_be_reset():
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    plan = subprocess.run(
        ["make", "-n", "demo", "DEMO_PORT=9100", "SANDBOX_PORT=9101"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "desk sandbox --port 9101 --people instance/demo-subjects.csv" in plan
    assert "DESK_PORT=9100" in plan and "DESK_HEAP_URL_ALLOWLIST=127.0.0.1:9101" in plan
    assert "--sandbox-url http://127.0.0.1:9101" in plan
    reset = subprocess.run(
        ["make", "-n", "demo-reset"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert "instance/demo.db" in reset and "demo-subjects.csv" in reset


def test_the_demo_list_erases_its_people_from_the_sandbox(app, sandbox, make_user):
    """`make demo` starts the sandbox with the sample list's people, so the batch of that list
    reports them erased (the sandbox page said "users erased 0" when they never existed)."""
    from evidence_fixtures import finish_batch
    from workflow_factories import make_environment

    from webapp.sandbox.cli import read_people

    sandbox.state.add_people(sandbox.app_id, read_people(demo.sample_csv()))
    env_id = make_environment(app, sandbox)
    finish_batch(app, env_id, make_user, demo.sample_csv().encode(), reference="DEMO")
    erased = [record.users_erased for record in sandbox.state.deletions.values()]
    # Four rows are sent: 7364029184, ada@example.com, Ada@Example.com and bob@example.org.
    assert sum(erased) == 4
