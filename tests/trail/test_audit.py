"""The audit trail: format, hash chain, append-only triggers, tamper detection, concurrency."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading

import pytest
import sqlalchemy as sa
from conftest import ON_POSTGRES
from sqlalchemy.exc import DBAPIError

from webapp.db import get_engine, session_scope
from webapp.trail import audit


def _append(app, n: int, actor: str = "tester") -> None:
    with app.app_context(), session_scope(write=True) as session:
        for i in range(n):
            audit.record(
                session,
                actor=actor,
                action="test.appended",
                target_type="test",
                target_id=i,
                details={"i": i, "note": "é ✓"},
            )
        session.commit()


def _entries(app) -> list[dict]:
    with app.app_context(), session_scope(write=False) as session:
        return list(audit.iter_entries(session))


def test_entries_follow_the_documented_format(app):
    _append(app, 3)
    entries = _entries(app)
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["prev_hash"] == "0" * 64
    for previous, entry in zip(entries, entries[1:], strict=False):
        assert entry["prev_hash"] == previous["hash"]
    for entry in entries:
        assert set(entry) == {
            "seq",
            "at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "details",
            "prev_hash",
            "hash",
        }
        assert entry["at"].endswith("Z")
        body = {k: v for k, v in entry.items() if k != "hash"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == entry["hash"]


def test_record_refuses_a_read_session_on_sqlite(app):
    if ON_POSTGRES:
        pytest.skip("the advisory lock serialises any PostgreSQL transaction")
    with app.app_context(), session_scope(write=False) as session, pytest.raises(audit.AuditError):
        audit.record(session, actor="x", action="y", target_type="z")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_entries SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_entries WHERE seq = 1",
        "DELETE FROM audit_entries",
    ],
)
def test_triggers_refuse_update_and_delete(app, statement):
    _append(app, 2)
    with (
        app.app_context(),
        pytest.raises(DBAPIError, match="append-only"),
        get_engine().begin() as connection,
    ):
        connection.exec_driver_sql(statement)
    assert len(_entries(app)) == 2


@pytest.mark.postgres_only
def test_truncate_is_refused_on_postgres(app):
    _append(app, 2)
    with (
        app.app_context(),
        pytest.raises(DBAPIError, match="append-only"),
        get_engine().begin() as connection,
    ):
        connection.exec_driver_sql("TRUNCATE audit_entries")
    assert len(_entries(app)) == 2


def _tamper(app, *statements: str) -> None:
    """Change the trail behind the desk's back, triggers dropped (an attacker with DBA rights)."""
    with app.app_context(), get_engine().begin() as connection:
        audit.drop_triggers(connection)
        for statement in statements:
            connection.exec_driver_sql(statement)
        audit.create_triggers(connection)


def _verify(app) -> audit.Verification:
    with app.app_context(), session_scope(write=False) as session:
        return audit.verify(session)


def test_untouched_trail_verifies(app):
    _append(app, 5)
    result = _verify(app)
    assert result.ok and result.entries == 5 and result.head == _entries(app)[-1]["hash"]


@pytest.mark.parametrize(
    ("statements", "bad_seq"),
    [
        (["UPDATE audit_entries SET actor = 'mallory' WHERE seq = 3"], 3),
        (["UPDATE audit_entries SET details = '{\"i\":99}' WHERE seq = 4"], 4),
        (["UPDATE audit_entries SET at = '2020-01-01T00:00:00.000000Z' WHERE seq = 2"], 2),
        (["DELETE FROM audit_entries WHERE seq = 3"], 3),
        # Two entries swapped: each keeps its own hash but no longer follows the one before.
        (
            [
                "UPDATE audit_entries SET seq = 100 WHERE seq = 2",
                "UPDATE audit_entries SET seq = 2 WHERE seq = 3",
                "UPDATE audit_entries SET seq = 3 WHERE seq = 100",
            ],
            2,
        ),
    ],
)
def test_tampering_is_found_with_its_seq(app, statements, bad_seq):
    _append(app, 5)
    _tamper(app, *statements)
    result = _verify(app)
    assert not result.ok
    assert result.first_bad_seq == bad_seq


def test_rewritten_entry_with_recomputed_hash_breaks_the_next_link(app):
    _append(app, 4)
    entry = _entries(app)[1]
    entry["actor"] = "mallory"
    entry["hash"] = audit.entry_hash(entry)
    _tamper(
        app, f"UPDATE audit_entries SET actor = 'mallory', hash = '{entry['hash']}' WHERE seq = 2"
    )
    assert _verify(app).first_bad_seq == 3


def test_cli_verify_names_the_bad_seq(app, runner):
    from webapp.cli import audit_verify

    _append(app, 3)
    ok = runner.invoke(audit_verify)
    assert ok.exit_code == 0 and "ok: 3 entries" in ok.output
    _tamper(app, "UPDATE audit_entries SET target_id = 'x' WHERE seq = 2")
    bad = runner.invoke(audit_verify)
    assert bad.exit_code == 1
    assert "seq 2" in bad.output


def test_concurrent_threads_never_fork_the_chain(app):
    threads = [threading.Thread(target=_append, args=(app, 15, f"writer{n}")) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    entries = _entries(app)
    assert len(entries) == 120
    assert _verify(app).ok


def _process_writer(database_url: str, env: dict, count: int, name: str) -> None:
    import os

    os.environ.update(env)
    from webapp import create_app

    app = create_app({"INSTANCE_PATH": env["INSTANCE"]})
    _append(app, count, name)
    get_engine(app).dispose()


def test_concurrent_processes_never_fork_the_chain(app, desk_env, tmp_path):
    env = {**desk_env, "INSTANCE": str(tmp_path / "instance")}
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=_process_writer, args=(desk_env["DESK_DATABASE_URL"], env, 20, f"p{n}")
        )
        for n in range(3)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    assert len(_entries(app)) == 60
    assert _verify(app).ok


def test_exports_are_the_verifiable_format(app, client, auth, make_user):
    auth.login(make_user("auditor"))
    body = client.get("/audit/export.jsonl").get_data(as_text=True)
    lines = [json.loads(line) for line in body.splitlines()]
    assert audit.verify_entries(lines).ok
    assert lines[-1]["action"] == "login.succeeded"
    csv_text = client.get("/audit/export.csv").get_data(as_text=True)
    assert (
        csv_text.splitlines()[0]
        == "seq,at,actor,action,target_type,target_id,details,prev_hash,hash"
    )


def test_audit_page_filters_and_verify_button(app, client, auth, make_user):
    email = make_user("auditor")
    auth.login(email)
    _append(app, 3, actor="robot")
    page = client.get("/audit?actor=robot").get_data(as_text=True)
    rows = page.split("<tbody>")[1]
    assert rows.count("test.appended") == 3 and "login.succeeded" not in rows
    flashed = auth.post("/audit/verify", form_page="/audit", follow_redirects=True)
    assert "The audit trail verifies" in flashed.get_data(as_text=True)


def test_audit_page_paginates(app, client, auth, make_user):
    auth.login(make_user("auditor"))
    _append(app, 60)
    first = client.get("/audit").get_data(as_text=True)
    assert "Older »" in first
    import re

    older = re.search(r'href="(/audit\?before=\d+)"', first).group(1)
    second = client.get(older.replace("&amp;", "&")).get_data(as_text=True)
    assert "« Newest" in second


def test_audit_index_used_for_actor_filter(app):
    """The page's filters are served by an index (so they stay fast at a million entries)."""
    with app.app_context(), get_engine().connect() as connection:
        indexes = {ix["name"] for ix in sa.inspect(connection).get_indexes("audit_entries")}
    assert {
        "ix_audit_entries_actor_seq",
        "ix_audit_entries_action_seq",
        "ix_audit_entries_target",
        "ix_audit_entries_at",
    } <= indexes


def test_audit_filters_offer_the_actions_and_actors_that_exist(app, client, auth, make_user):
    email = make_user("auditor")
    auth.login(email)
    _append(app, 2, actor="robot")
    page = client.get("/audit?action=test.appended").get_data(as_text=True)
    assert '<option value="test.appended" selected>' in page
    assert '<option value="robot">' in page and f'<option value="{email}">' in page
    assert '<option value="login.succeeded">' in page


def test_distinct_values_walk_the_index_one_value_at_a_time(app):
    _append(app, 3, actor="robot")
    _append(app, 2, actor="android")
    with app.app_context(), session_scope(write=False) as session:
        assert audit.distinct_values(session, "actor") == ["android", "robot"]
        assert audit.distinct_values(session, "actor", limit=1) == ["android"]
        with pytest.raises(ValueError):
            audit.distinct_values(session, "details")


def test_audit_page_size_is_chosen_and_bounded(app, client, auth, make_user):
    auth.login(make_user("auditor"))
    _append(app, 30)
    page = client.get("/audit?per_page=100").get_data(as_text=True)
    assert "Older »" not in page and '<option value="100" selected>' in page
    small = client.get("/audit").get_data(as_text=True)
    assert "Older »" in small and "per_page" not in small.split("Older »")[0].rsplit("href=", 1)[1]
    assert client.get("/audit?per_page=0").status_code == 400
    assert client.get("/audit?per_page=5000").status_code == 400


def test_audit_details_read_as_lines_with_the_json_one_click_away(app, client, auth, make_user):
    auth.login(make_user("auditor"))
    with app.app_context(), session_scope(write=True) as session:
        audit.record(
            session,
            actor="robot",
            action="test.nested",
            target_type="test",
            details={"after": {"max_items": 5, "on": True}, "changed": ["max_items"], "gone": None},
        )
        session.commit()
    page = client.get("/audit?action=test.nested").get_data(as_text=True)
    assert '<span class="k">after.max_items:</span> 5' in page
    assert '<span class="k">after.on:</span> yes' in page
    assert '<span class="k">changed:</span> max_items' in page
    assert "<summary>" in page and '"max_items": 5' in page.replace("&#34;", '"')
