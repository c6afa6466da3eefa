"""Load test (issue 7): 50 officers and auditors against `desk serve --workers 4` for 60 s.

Run from the repository root: `.venv/bin/python -m tests.load.run_load` (`--help` for options).
With DESK_DATABASE_URL naming a PostgreSQL server, a throwaway database is created there (and
dropped after); otherwise a temporary SQLite file serves. A `desk sandbox` process plays Heap,
accounts and 12 batches of 1,000 subjects are seeded (8 of them submitted and complete), the
server starts with DESK_SCHEDULER=off and DESK_2FA_REQUIRED_ROLES="" (password sign-in for the
load accounts), a short warm-up runs, then the users work. Everything binds to 127.0.0.1 and
stops by itself. Pass: no error, and page p95 at most 300 ms (sign-in, argon2 by design about
100 ms, is reported apart, as are uploads and downloads).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from .harness import START_TIMEOUT, database, desk_settings, environment, free_port, process
from .virtual_users import (
    LOGIN_FORM,
    PAGES,
    REPORT,
    SIGN_IN,
    UPLOAD,
    Plan,
    Recorder,
    Sample,
    VirtualUser,
)

PASSWORD = "load test passphrase: amber kettle lantern"
SEED_COMPLETE, SEED_WAITING, SEED_ROWS = 8, 4, 1000
PAGE_P95_LIMIT_MS = 300.0


@dataclass(frozen=True)
class Figures:
    """Latency figures of one kind of request (milliseconds)."""

    kind: str
    count: int
    p50: float
    p95: float
    max: float
    errors: int


@dataclass
class Report:
    """What a load run measured."""

    users: int
    seconds: float
    workers: int
    database: str
    figures: list[Figures]
    error_details: dict[str, int]
    load_average: tuple[float, float]  # the machine's 1-minute load before and after the work

    def of(self, kind: str) -> Figures:
        return next(figure for figure in self.figures if figure.kind == kind)

    @property
    def errors(self) -> int:
        return sum(figure.errors for figure in self.figures if figure.kind != "pages, all types")

    @property
    def passed(self) -> bool:
        return self.errors == 0 and self.of("pages, all types").p95 <= PAGE_P95_LIMIT_MS


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def summarize(samples: list[Sample]) -> list[Figures]:
    """Figures per page type, all pages together, then signing in, uploads and downloads."""
    groups = {kind: [s for s in samples if s.kind == kind] for kind in PAGES}
    groups["pages, all types"] = [s for s in samples if s.kind in PAGES]
    for kind in (LOGIN_FORM, SIGN_IN, UPLOAD, REPORT):
        groups[kind] = [s for s in samples if s.kind == kind]
    figures = []
    for kind, group in groups.items():
        ms = [s.ms for s in group if s.ok]
        errors = sum(not s.ok for s in group)
        top = max(ms, default=0.0)
        figures.append(
            Figures(kind, len(group), percentile(ms, 0.5), percentile(ms, 0.95), top, errors)
        )
    return figures


def table(report: Report) -> str:
    """The summary as a Markdown table (README-ready)."""
    lines = [
        f"{report.users} users, {report.seconds:.0f} s, `desk serve --workers {report.workers}`"
        f" on {report.database}; {os.cpu_count()} cores, load average"
        f" {report.load_average[0]:.1f} before and {report.load_average[1]:.1f} after",
        "",
        "| requests | count | p50 ms | p95 ms | max ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for f in report.figures:
        lines.append(
            f"| {f.kind} | {f.count} | {f.p50:.0f} | {f.p95:.0f} | {f.max:.0f} | {f.errors} |"
        )
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


def interleave(officers: tuple[str, ...], auditors: tuple[str, ...]) -> list[tuple[str, str]]:
    """Officers and auditors alternating, so any first few users hold both roles."""
    people = []
    for n in range(max(len(officers), len(auditors))):
        people += [(officers[n], "officer")] if n < len(officers) else []
        people += [(auditors[n], "auditor")] if n < len(auditors) else []
    return people


def run_users(
    plan: Plan, people: list[tuple[str, str]], *, ramp: float, seconds: float
) -> tuple[list[Sample], float]:
    """Everyone signs in (started evenly over `ramp` s), then works for `seconds`.

    Sign-in (argon2, ~100 ms of CPU each by design) is its own phase, so a crowd signing in
    does not weigh on the page times it is reported apart from. Returns the samples and how
    long the work phase took.
    """
    recorder = Recorder()
    users = [VirtualUser(n, email, role, plan, recorder) for n, (email, role) in enumerate(people)]
    signed_in: list[VirtualUser] = []

    def sign_in(user: VirtualUser) -> None:
        if user.sign_in():
            signed_in.append(user)

    _in_threads(sign_in, users, stagger=ramp / len(users), timeout=START_TIMEOUT + ramp)
    started = time.monotonic()
    deadline = started + seconds
    _in_threads(lambda user: user.work(deadline), signed_in, stagger=0.0, timeout=seconds + 60)
    return list(recorder.samples), time.monotonic() - started


def _in_threads(job, users: list[VirtualUser], *, stagger: float, timeout: float) -> None:
    """Run `job(user)` for every user in a thread of its own; wait for all."""
    threads = [threading.Thread(target=job, args=(user,), daemon=True) for user in users]
    for number, thread in enumerate(threads):
        time.sleep(stagger if number else 0.0)
        thread.start()
    ends = time.monotonic() + timeout
    for thread in threads:
        thread.join(timeout=max(0.1, ends - time.monotonic()))


def run(
    *,
    users: int = 50,
    seconds: float = 60.0,
    workers: int = 4,
    threads: int = 4,
    think: tuple[float, float] = (1.0, 3.0),
    ramp: float = 10.0,
    warmup: float = 5.0,
    server_url: str | None = None,
) -> Report:
    """Seed, serve, warm up, then `users` users for `seconds`; return the figures."""
    from webapp import create_app

    from .seed import seed

    server_url = server_url if server_url is not None else os.environ.get("DESK_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="desk-load-") as folder:
        logs = Path(folder)
        with database(server_url, logs) as database_url:
            settings = desk_settings(database_url)
            env = {**os.environ, **settings}
            heap_port, desk_port = free_port(), free_port()
            heap_url = f"http://127.0.0.1:{heap_port}"
            sandbox = ["sandbox", "--port", str(heap_port), "--complete-after", "0"]
            with process(sandbox, env, logs / "sandbox.log", f"{heap_url}/_sandbox/state"):
                with environment(settings):
                    app = create_app({"INSTANCE_PATH": str(logs / "instance")})
                try:
                    seeded = seed(
                        app,
                        heap_url=heap_url,
                        users=users,
                        password=PASSWORD,
                        complete=SEED_COMPLETE,
                        waiting=SEED_WAITING,
                        rows=SEED_ROWS,
                    )
                finally:
                    engine = app.extensions.get("desk_engine")
                    if engine is not None:
                        engine.dispose()
                serve = ["serve", "--workers", str(workers), "--threads", str(threads)]
                serve += ["--host", "127.0.0.1", "--port", str(desk_port)]
                desk_url = f"http://127.0.0.1:{desk_port}"
                with process(serve, env, logs / "serve.log", f"{desk_url}/api/v1/health"):
                    people = interleave(seeded.officers, seeded.auditors)

                    plan = Plan(
                        base_url=desk_url,
                        password=PASSWORD,
                        environment_id=seeded.environment_id,
                        batch_ids=seeded.batch_ids,
                        complete_ids=seeded.complete_ids,
                        lookups=seeded.lookups,
                        think=think,
                    )
                    # Warm-up (not counted): every worker compiles its templates and fills its
                    # connection pool before the measured users arrive, as on a running desk.
                    warm = dataclasses.replace(plan, think=(0.0, 0.1))
                    run_users(warm, people[: 2 * workers], ramp=0.0, seconds=warmup)
                    before = os.getloadavg()[0]
                    samples, took = run_users(plan, people, ramp=ramp, seconds=seconds)
                    after = os.getloadavg()[0]
    details = Counter(sample.detail for sample in samples if not sample.ok)
    kind = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    return Report(users, took, workers, kind, summarize(samples), dict(details), (before, after))


def main(argv: list[str] | None = None) -> int:
    """Command line: run, print the table, optionally write JSON; exit 1 if it did not pass."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"))
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    report = run(
        users=args.users,
        seconds=args.seconds,
        workers=args.workers,
        threads=args.threads,
        think=tuple(args.think),
    )
    print(table(report))
    for detail, count in sorted(report.error_details.items(), key=lambda item: -item[1])[:10]:
        print(f"error x{count}: {detail}")
    verdict = "PASS" if report.passed else "FAIL"
    print(f"{verdict}: {report.errors} errors, page p95 {report.of('pages, all types').p95:.0f} ms")
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
