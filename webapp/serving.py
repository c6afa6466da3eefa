"""gunicorn as the production WSGI server, with the scheduler started in each worker.

The same gthread workers serve /mcp (AI assistants) through an ASGI-to-WSGI adapter: one
server, one port, one set of workers (docs/ARCHITECTURE.md, "Serving").
"""

from __future__ import annotations

import logging

from flask import Flask
from gunicorn.app.base import BaseApplication

log = logging.getLogger(__name__)


class DeskServer(BaseApplication):
    """gunicorn driven from `desk serve` instead of its own command line."""

    def __init__(self, app: Flask, options: dict):
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        # gunicorn ≥ 24 opens a control socket at a per-user path that several `desk serve`
        # instances would share; the desk does not use it.
        if "control_socket_disable" in self.cfg.settings:
            self.cfg.set("control_socket_disable", True)

    def load(self) -> Flask:
        return self.application


def _post_fork(_server, worker) -> None:
    """Give each worker its own database connections.

    The master opened the engine's pool (checking migrations) before forking; a PostgreSQL
    connection used by two processes at once corrupts both sides' protocol state.
    """
    engine = worker.app.application.extensions.get("desk_engine")
    if engine is not None:
        engine.dispose(close=False)


def _post_worker_init(worker) -> None:
    """Start the in-process scheduler in each worker; the lease lets only one of them work."""
    app = worker.app.application
    if app.config["DESK_SCHEDULER"] != "inprocess":
        return
    from webapp.jobs.scheduler import DeskScheduler

    desk_scheduler = DeskScheduler(app)
    desk_scheduler.start()
    app.extensions["desk_scheduler"] = desk_scheduler


def _worker_exit(_server, worker) -> None:
    desk_scheduler = worker.app.application.extensions.get("desk_scheduler")
    if desk_scheduler is not None:
        desk_scheduler.shutdown()
    # /mcp's event loop thread, if this worker served MCP (webapp/assistants/http.py).
    mcp = worker.app.application.extensions.get("desk_mcp")
    if mcp is not None:
        mcp.close()


def run_gunicorn(app: Flask, *, bind: str, workers: int, threads: int) -> None:
    """Serve until stopped."""
    engine = app.extensions.get("desk_engine")
    if engine is not None:
        engine.dispose()  # close the master's connections before the workers fork
    options = {
        "bind": bind,
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": "-",
        # Paths only: query strings may carry identifiers (lookups), so they are not logged.
        "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        "post_fork": _post_fork,
        "post_worker_init": _post_worker_init,
        "worker_exit": _worker_exit,
        "forwarded_allow_ips": "127.0.0.1",
    }
    DeskServer(app, options).run()
