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
