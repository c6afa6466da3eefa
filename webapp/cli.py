"""The `desk` command: serve, scheduler, sandbox, db, users, tokens, audit, retention, keys, mcp."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

import click
from flask import Flask

from webapp import keys, migrations
from webapp.accounts import tokens as api_tokens
from webapp.accounts import users as accounts
from webapp.config import ConfigError
from webapp.db import get_engine, session_scope
from webapp.erasure import retention
from webapp.evidence import checkpoints, signing, tree_heads, witness_script
from webapp.trail import audit, exports


def make_app() -> Flask:
    """Build the app, turning a configuration problem into a plain message and exit 2."""
    from webapp import create_app

    try:
        return create_app()
    except ConfigError as error:
        raise click.ClickException(f"Configuration problem: {error}") from None


@click.group()
def main() -> None:
    """Deletion Desk: GDPR erasure requests against Heap, carried out and proven."""


# --- serving ------------------------------------------------------------------------------


def _require_head(app: Flask) -> None:
    if not migrations.is_at_head(get_engine(app)):
        raise click.ClickException("The database is not migrated: run `desk db upgrade` first.")


@main.command()
@click.option("--host", default=None, help="Address to listen on (DESK_HOST).")
@click.option("--port", type=int, default=None, help="Port (DESK_PORT).")
@click.option("--workers", type=int, default=2, show_default=True, help="gunicorn workers.")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per worker.")
def serve(host: str | None, port: int | None, workers: int, threads: int) -> None:
    """Serve with gunicorn; each worker runs the scheduler when DESK_SCHEDULER=inprocess."""
    from webapp.serving import run_gunicorn

    app = make_app()
    _require_head(app)
    bind = f"{host or app.config['DESK_HOST']}:{port or app.config['DESK_PORT']}"
    click.echo(
        f"Deletion Desk on http://{bind} ({workers} workers, scheduler "
        f"{app.config['DESK_SCHEDULER']})"
    )
    run_gunicorn(app, bind=bind, workers=workers, threads=threads)


@main.command()
@click.option("--once", is_flag=True, help="Run every job once (if this process gets the lease).")
def scheduler(once: bool) -> None:
    """Run the scheduler as its own process (one of them works at a time, by lease)."""
    from webapp.jobs.scheduler import DeskScheduler, tick_once

    app = make_app()
    _require_head(app)
    if once:
        ran = tick_once(app)
        click.echo("ran: " + (", ".join(ran) or "nothing (another scheduler holds the lease)"))
        return
    desk_scheduler = DeskScheduler(app)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    desk_scheduler.start()
    click.echo(f"scheduler {desk_scheduler.holder} running; Ctrl-C to stop")
    stop.wait()
    desk_scheduler.shutdown()


@main.command("mcp")
@click.option("--stdio", "use_stdio", is_flag=True, help="Serve MCP on standard input and output.")
def mcp_command(use_stdio: bool) -> None:
    """The MCP server for a local AI assistant, acting as the owner of DESK_API_TOKEN.

    Over HTTP the same server is /mcp of `desk serve`, with the caller's own token.
    """
    from webapp.assistants.callers import Unauthenticated
    from webapp.assistants.stdio import TOKEN_VARIABLE, check_token, serve_stdio

    if not use_stdio:
        raise click.UsageError("Say --stdio: over HTTP the MCP server is /mcp of `desk serve`.")
    token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise click.ClickException(
            f"Set {TOKEN_VARIABLE} to a desk API token (`desk tokens create --email …`): the "
            "assistant acts as that token's owner, within their role and its scope."
        )
    app = make_app()
    _require_head(app)
    try:
        caller = check_token(app, token)
    except Unauthenticated as refused:
        raise click.ClickException(f"{TOKEN_VARIABLE}: {refused}") from None
    click.echo(f"MCP on standard I/O as {caller.email} ({caller.role}, {caller.scope})", err=True)
    serve_stdio(app, token)


def _register_sandbox() -> None:
    from webapp.sandbox.cli import sandbox_command

    main.add_command(sandbox_command)


_register_sandbox()


@main.command("demo-seed")
@click.option("--sandbox-url", default="http://127.0.0.1:8765", show_default=True)
def demo_seed(sandbox_url: str) -> None:
    """Seed an empty database with demo accounts and a sandbox environment (`make demo`); on a
    database it seeded before, point the demo environment at --sandbox-url."""
    from webapp import demo

    app = make_app()
    _require_head(app)
    csv_path = Path(app.instance_path) / "demo-subjects.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with app.app_context(), session_scope(write=True) as session:
        try:
            if accounts.user_count(session):
                if demo.repoint(session, sandbox_url=sandbox_url):
                    click.echo(f"The demo environment now points at {sandbox_url}.")
                else:
                    click.echo(f"The demo is seeded already (sandbox {sandbox_url}).")
                if not csv_path.exists():
                    csv_path.write_text(demo.sample_csv(), encoding="utf-8")
                emails = [email for email, _ in demo.DEMO_ACCOUNTS]
            else:
                emails = demo.seed(session, sandbox_url=sandbox_url, csv_path=csv_path)
        except demo.DemoError as error:
            raise click.ClickException(str(error)) from None
    click.echo("Demo accounts (password for all: " + repr(demo.DEMO_PASSWORD) + "):")
    for email in emails:
        click.echo(f"  {email}")
    click.echo(f"A sample list to upload: {csv_path}")


# --- database -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database migrations."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply migrations (a deploy step: run it before starting new code)."""
    app = make_app()
    migrations.upgrade(app.config["DATABASE_URL"], revision)
    click.echo(f"database at {', '.join(sorted(migrations.current_revisions(get_engine(app))))}")


@db.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION (use 'base' for an empty database)."""
    app = make_app()
    migrations.downgrade(app.config["DATABASE_URL"], revision)


@db.command("current")
def db_current() -> None:
    """Print the revision the database is at."""
    app = make_app()
    current = migrations.current_revisions(get_engine(app))
    click.echo(", ".join(sorted(current)) or "(empty)")
    sys.exit(0 if current == migrations.head_revisions() else 1)


# --- accounts -----------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--email", required=True)
@click.option("--role", type=click.Choice(["auditor", "officer", "admin"]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def users_create(email: str, role: str, password_stdin: bool) -> None:
    """Create an account (password from --password-stdin or a prompt)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    app = make_app()
    with app.app_context(), session_scope(write=True) as session:
        try:
            # No account creates it: whoever runs the CLI holds the server, not a desk account.
            user = accounts.create_user(
                session, actor="cli", email=email, password=password, role=role, created_by=None
            )
            session.commit()
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from None
        click.echo(f"created {role} {user.email}")


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--email", required=True, help="The account the token acts as.")
@click.option("--name", default="cli", show_default=True, help="What will use the token.")
@click.option(
    "--scope",
    type=click.Choice(api_tokens.SCOPES),
    default=None,
    help="read (GET only) or write; default write for officers and admins, read for auditors "
    "(who cannot have write).",
)
@click.option(
    "--days",
    type=int,
    default=api_tokens.DEFAULT_DAYS,
    show_default=True,
    help=f"How long the token works: 1 to {api_tokens.MAX_DAYS} days.",
)
def tokens_create(email: str, name: str, scope: str | None, days: int) -> None:
    """Create an API token and print it once."""
    app = make_app()
    with app.app_context(), session_scope(write=True) as session:
        user = accounts.find_user(session, email)
        if user is None or not user.is_active:
            raise click.ClickException(f"There is no active account {email}.")
        try:
            raw = api_tokens.create_api_token(
                session, actor="cli", user=user, name=name, scope=scope, days=days
            )
        except accounts.AccountError as error:
            raise click.ClickException(str(error)) from None
    click.echo(raw)


# --- audit and keys -----------------------------------------------------------------------


@main.group("audit")
def audit_group() -> None:
    """The audit trail."""


@audit_group.command("verify")
def audit_verify() -> None:
    """Recompute the hash chain and check every signed checkpoint; exit 1 naming what is wrong."""
    app = make_app()
    with app.app_context(), session_scope(write=False) as session:
        result = audit.verify(session)
        signed = checkpoints.verify_checkpoints(session)
        heads = tree_heads.verify_heads(session)
    if not result.ok:
        click.echo(f"FAILED at seq {result.first_bad_seq}: {result.problem}", err=True)
    for problem in signed.problems:
        click.echo(f"FAILED checkpoint: {problem}", err=True)
    for problem in heads.problems:
        click.echo(f"FAILED tree head: {problem}", err=True)
    if not (result.ok and signed.ok and heads.ok):
        sys.exit(1)
    click.echo(f"ok: {result.entries} entries, head {result.head}")
    if signed.checkpoints:
        click.echo(
            f"ok: {signed.checkpoints} signed checkpoint(s) verify and the chain extends each "
            f"(key {signed.trusted_key_id})"
        )
    else:
        click.echo("no signed checkpoint yet (`desk audit checkpoint` signs one)")
    if heads.heads:
        click.echo(
            f"ok: {heads.heads} signed tree head(s) verify and the entries still give each root"
        )


@audit_group.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the chain's head now with the desk's Ed25519 key."""
    app = make_app()
    with app.app_context(), session_scope(write=True) as session:
        try:
            row = checkpoints.sign_checkpoint(session, actor="cli")
        except (signing.SigningKeyError, checkpoints.CheckpointError) as error:
            raise click.ClickException(str(error)) from None
    click.echo(f"checkpoint signed: seq {row.seq}, hash {row.hash}, key {row.key_id}")


@audit_group.command("witness")
@click.option("--url", required=True, help="The desk's address, e.g. https://desk.example.org.")
@click.option(
    "--state",
    "state_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The file that keeps the last head and the pinned key (written atomically, mode 0600).",
)
@click.option(
    "--token", envvar="DESK_WITNESS_TOKEN", help="An API token of any role (or DESK_WITNESS_TOKEN)."
)
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False),
    help="The desk's public key (PEM) to pin, instead of fetching it on the first run.",
)
@click.option("--quiet", is_flag=True, help="Print nothing when all is well (for cron).")
def audit_witness(
    url: str, state_path: str, token: str | None, key_path: str | None, quiet: bool
) -> None:
    """Check the desk's latest signed tree head against the one kept in the state file.

    Exit 0: consistent, kept. Exit 1: a fork, rollback, rewrite or forged head (named).
    Exit 2: nothing could be checked (network, token, server). Needs no desk configuration:
    it runs on another host, like the downloadable witness.py, whose code it is.
    """
    code, line = witness_script.witness(url, state_path, token=token, key_path=key_path)
    if code != witness_script.OK or not quiet:
        click.echo(line, err=code != witness_script.OK)
    sys.exit(code)


@audit_group.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--output", type=click.File("w", encoding="utf-8"), default="-")
def audit_export(fmt: str, output) -> None:
    """Write the whole trail as JSONL (verifiable) or CSV."""
    app = make_app()
    with app.app_context():
        chunks = exports.audit_jsonl(app) if fmt == "jsonl" else exports.audit_csv(app)
        for chunk in chunks:
            output.write(chunk)


@main.group("retention")
def retention_group() -> None:
    """Retention of raw identifiers."""


@retention_group.command("purge")
@click.option("--days", type=click.IntRange(min=1), default=None, help="DESK_RETENTION_DAYS.")
def retention_purge(days: int | None) -> None:
    """Purge identifiers kept longer than the retention period after their deletion."""
    app = make_app()
    days = days or app.config["DESK_RETENTION_DAYS"]
    with app.app_context(), session_scope(write=True) as session:
        result = retention.purge(session, actor="cli", retention_days=days)
    if not result.purged:
        click.echo(f"nothing to purge (retention {days} days)")
        return
    batches = ", ".join(str(batch_id) for batch_id in result.batch_ids)
    click.echo(f"purged {result.purged} identifier(s) in batch(es) {batches}")


@main.group("keys")
def keys_group() -> None:
    """Encryption keys."""


@keys_group.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the first key of DESK_ENCRYPTION_KEYS."""
    app = make_app()
    with app.app_context(), session_scope(write=True) as session:
        counts = keys.rotate_all(session, actor="cli")
    click.echo(json.dumps(counts))
