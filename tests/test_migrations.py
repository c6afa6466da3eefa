"""Alembic: one head, upgrade → check → downgrade, and the audit triggers survive upgrades."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import create_engine

from webapp import migrations
from webapp.db import make_engine
from webapp.trail import audit


def test_single_head():
    assert len(migrations.head_revisions()) == 1


def test_upgrade_check_downgrade(empty_database_url):
    config = migrations.alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.check(config)  # the models and the migrations agree: nothing to autogenerate
    engine = make_engine(empty_database_url)
    try:
        assert migrations.is_at_head(engine)
        command.downgrade(config, "base")
        assert migrations.current_revisions(engine) == set()
        command.upgrade(config, "head")
        assert migrations.is_at_head(engine)
    finally:
        engine.dispose()


def test_audit_triggers_exist_after_upgrade_head(empty_database_url):
    """Batch migrations on SQLite recreate tables and drop triggers (PITFALLS.md #3)."""
    migrations.upgrade(empty_database_url)
    engine = make_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            names = audit.trigger_names(connection)
    finally:
        engine.dispose()
    if engine.dialect.name == "sqlite":
        assert names >= {"audit_entries_no_update", "audit_entries_no_delete"}
    else:
        assert names >= {"audit_entries_no_change", "audit_entries_no_truncate"}


def test_cli_upgrade_and_current(runner, app):
    from webapp.cli import db_current, db_upgrade

    assert runner.invoke(db_upgrade).exit_code == 0
    result = runner.invoke(db_current)
    assert result.exit_code == 0
    assert result.output.strip() in migrations.head_revisions()


def test_serve_refuses_an_unmigrated_database(tmp_path, monkeypatch, desk_env):
    from click.testing import CliRunner

    from webapp.cli import main

    monkeypatch.setenv("DESK_DATABASE_URL", f"sqlite:///{tmp_path / 'blank.db'}")
    create_engine(f"sqlite:///{tmp_path / 'blank.db'}").dispose()
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "desk db upgrade" in result.output


@pytest.mark.parametrize("revision", sorted(migrations.head_revisions()))
def test_heads_are_named(revision):
    assert revision.isdigit()


def test_upgrade_dates_existing_extensions_from_the_audit_trail(empty_database_url):
    """0009: an extension recorded before the day existed gets it from its audit entry, so a
    late one made before the upgrade is not shown as met afterwards."""
    from datetime import UTC, date, datetime

    from sqlalchemy import text
    from sqlmodel import Session

    from webapp.db import WRITE_OPTION

    config = migrations.alembic_config(empty_database_url)
    command.upgrade(config, "0008")
    engine = make_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, role, is_active, failed_logins,"
                    " created_at) VALUES (1, 'o@example.org', 'x', 'officer', true, 0,"
                    " '2026-01-01 00:00:00+00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO environments (id, name, app_id, region, main_production,"
                    " created_at, updated_at) VALUES (1, 'Main', '1', 'us', true,"
                    " '2026-01-01 00:00:00+00:00', '2026-01-01 00:00:00+00:00')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO batches (id, environment_id, state, source, file_sha256,"
                    " received_on, rows_total, valid_count, malformed_count, duplicate_count,"
                    " already_requested_count, completed_count, uploaded_by, created_at)"
                    " VALUES (1, 1, 'complete', 'file', :sha, '2026-01-02', 2, 2, 0, 0, 0, 2, 1,"
                    " '2026-01-02 00:00:00+00:00')"
                ),
                {"sha": "0" * 64},
            )
            for subject_id in (1, 2):
                connection.execute(
                    text(
                        "INSERT INTO subjects (id, batch_id, environment_id, row_number,"
                        " fingerprint, classification, received_on, due_on, extension_months,"
                        " state) VALUES (:id, 1, 1, :id, :fp, 'valid', '2026-01-02',"
                        " '2026-03-02', 1, 'complete')"
                    ),
                    {"id": subject_id, "fp": f"{subject_id}" * 64},
                )
        with Session(engine.execution_options(**{WRITE_OPTION: True})) as session:
            # Subject 1 was extended within its first month; subject 2 only weeks after it ended.
            for subject_id, at in (
                (1, datetime(2026, 1, 20, 10, tzinfo=UTC)),
                (2, datetime(2026, 3, 1, 10, tzinfo=UTC)),
            ):
                audit.record(
                    session,
                    actor="o@example.org",
                    action="subject.deadline_extended",
                    target_type="subject",
                    target_id=subject_id,
                    details={"months": 1},
                    at=at,
                )
            session.commit()
        command.upgrade(config, "head")
        with engine.connect() as connection:
            days = dict(
                connection.execute(text("SELECT id, extension_recorded_on FROM subjects")).all()
            )
    finally:
        engine.dispose()
    days = {key: date.fromisoformat(str(value)) for key, value in days.items()}
    assert days == {1: date(2026, 1, 20), 2: date(2026, 3, 1)}
