"""Engines and sessions: one session per request on `g`, the same helper for jobs and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, has_request_context, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.pool import NullPool
from sqlmodel import Session

WRITE_OPTION = "desk_write"


def _configure_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE for write sessions.

    A deferred SQLite transaction that reads first and writes later fails with "database is
    locked" when another writer got in between (PITFALLS.md #5): write sessions therefore take
    the write lock when they begin, so audit appends are serialised and the chain never forks.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN itself
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def make_engine(url: str) -> Engine:
    """Create the engine for a database URL (no connection is opened here).

    hide_parameters: bound values (an e-mail typed at sign-in, or a password typed into the
    e-mail box) stay out of SQLAlchemy's statement log and of database errors' messages.
    """
    if url.startswith("sqlite"):
        # NullPool: each session gets its own connection; SQLite connections are cheap and
        # this keeps threads (scheduler, workers) from sharing one.
        engine = create_engine(
            url,
            poolclass=NullPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
    )


def is_sqlite(engine: Engine) -> bool:
    """True when the engine talks to SQLite."""
    return engine.dialect.name == "sqlite"


def init_app(app: Flask) -> None:
    """Register the engine factory and the teardown that closes the request's session."""
    app.extensions["desk_engine"] = None
    app.teardown_appcontext(close_session)


def get_engine(app: Flask | None = None) -> Engine:
    """Return the app's engine, created on first use (never at import or in create_app)."""
    app = app or current_app._get_current_object()
    engine = app.extensions.get("desk_engine")
    if engine is None:
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions["desk_engine"] = engine
    return engine


def new_session(*, write: bool = False, app: Flask | None = None) -> Session:
    """Open a session; `write=True` makes its transactions take the write lock on SQLite."""
    engine = get_engine(app)
    if write:
        engine = engine.execution_options(**{WRITE_OPTION: True})
    return Session(engine, expire_on_commit=False)


def get_session() -> Session:
    """The request's session, kept on `g` (flaskr's pattern) and closed at teardown."""
    if "db" not in g:
        write = not has_request_context() or request.method not in {"GET", "HEAD", "OPTIONS"}
        g.db = new_session(write=write)
    return g.db


@contextmanager
def session_scope(*, write: bool = True, app: Flask | None = None) -> Iterator[Session]:
    """A session for jobs and the CLI: rolled back on error, always closed."""
    session = new_session(write=write, app=app)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back whatever the request left uncommitted and close its session."""
    session = g.pop("db", None)
    if session is not None:
        session.rollback()
        session.close()
