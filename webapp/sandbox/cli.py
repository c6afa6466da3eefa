"""`desk sandbox`: run the fake Heap in the foreground for demos and manual testing."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from webapp.heap.hosts import is_loopback_host
from webapp.sandbox.config import DEFAULT_API_KEY, DEFAULT_APP_ID, RANDOM_FAULT_KINDS
from webapp.sandbox.server import make_sandbox_server, server_url


def read_people(text: str) -> list[dict[str, str]]:
    """The people of a CSV with `user_id` and/or `identity` (or `email`) columns, as Heap
    deletion targets: rows whose user_id is not a number, or that name nobody, are skipped."""
    people = []
    for row in csv.DictReader(io.StringIO(text)):
        row = {(key or "").strip().lower(): (value or "").strip() for key, value in row.items()}
        identity = row.get("identity") or row.get("email")
        user_id = row.get("user_id")
        if user_id and not user_id.isdigit():
            continue
        person = {"identity": identity} if identity else {}
        if user_id:
            person["user_id"] = user_id
        if person:
            people.append(person)
    return people


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535))
@click.option("--app-id", default=DEFAULT_APP_ID, show_default=True, help="Main Production id.")
@click.option("--api-key", default=DEFAULT_API_KEY, show_default=True, help="Deletion api_key.")
@click.option("--token-ttl", default=300.0, show_default=True, type=click.FloatRange(min=0.001))
@click.option(
    "--complete-after",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds before a deletion request completes.",
)
@click.option(
    "--complete-after-polls",
    default=None,
    type=click.IntRange(min=0),
    help="Status polls answered 'pending' before 'complete'.",
)
@click.option("--latency", "latency_ms", default=0, show_default=True, type=click.IntRange(0))
@click.option(
    "--fault-rate",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of Heap requests that get a random fault.",
)
@click.option(
    "--fault-kinds",
    default="500,503,429,drop",
    show_default=True,
    help=f"Comma-separated, from: {', '.join(sorted(RANDOM_FAULT_KINDS))}.",
)
@click.option("--seed", default=None, type=int, help="Seed for random faults.")
@click.option("--no-rate-limit", is_flag=True, help="Turn off the 30 requests / 30 s limit.")
@click.option(
    "--people",
    "people_csv",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV (user_id and/or identity columns) of people who exist in Heap from the start.",
)
def sandbox_command(
    host: str,
    port: int,
    app_id: str,
    api_key: str,
    token_ttl: float,
    complete_after: float,
    complete_after_polls: int | None,
    latency_ms: int,
    fault_rate: float,
    fault_kinds: str,
    seed: int | None,
    no_rate_limit: bool,
    people_csv: Path | None,
) -> None:
    """Run a fake Heap (ingestion + user deletion API) until Ctrl-C."""
    try:
        server, _state = make_sandbox_server(
            host,
            port,
            quiet=False,
            app_id=app_id,
            api_key=api_key,
            token_ttl=token_ttl,
            complete_after=complete_after,
            complete_after_polls=complete_after_polls,
            latency_ms=latency_ms,
            fault_rate=fault_rate,
            fault_kinds=fault_kinds,
            seed=seed,
            rate_limit=not no_rate_limit,
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    if people_csv is not None:
        count = _state.add_people(app_id, read_people(people_csv.read_text(encoding="utf-8")))
        click.echo(f"  {count} people exist in app {app_id} from the start ({people_csv.name})")
    url = server_url(server)
    click.echo(f"Heap sandbox listening on {url}")
    click.echo(f"  app_id  = {app_id}")
    click.echo(f"  api_key = {api_key}")
    click.echo(f"  inspect: {url}/_sandbox/   state: {url}/_sandbox/state")
    # The desk refuses a loopback base URL unless listed (issue 12, finding 9).
    click.echo(f"  the desk needs DESK_HEAP_URL_ALLOWLIST={url.removeprefix('http://')}")
    if not is_loopback_host(host):
        # The admin endpoints have no authentication: anyone who can reach them can read
        # and reset everything the sandbox holds.
        click.secho("  warning: not bound to loopback; /_sandbox/ is open to the network", fg="red")
    # werkzeug's serve_forever ends quietly on Ctrl-C and closes the socket itself.
    server.serve_forever()
    click.echo("Heap sandbox stopped")
