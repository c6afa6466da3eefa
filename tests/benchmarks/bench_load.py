"""The load scenario (tests/load/run_load.py) as benchmark figures: 50 users, 4 web workers.

PostgreSQL when DESK_DATABASE_URL names a server (a throwaway database is made on it), else
SQLite. DESK_LOAD_SECONDS shortens the 60 s work phase for a quick look. Pages must stay at
p95 ≤ 300 ms with no error (issue 7); sign-in (argon2, its own phase), 1,000-row uploads and
report downloads are reported apart, against ceilings an officer would still find prompt.
"""

from __future__ import annotations

import os

from tests.load import run_load

SIGN_IN_LIMIT_MS = 2000.0  # 50 people signing in within 10 s, ~100 ms of argon2 each
UPLOAD_LIMIT_MS = 1000.0
REPORT_LIMIT_MS = 1000.0


def run() -> list[dict]:
    """Run the load once and turn its summary into the runner's figures."""
    seconds = float(os.environ.get("DESK_LOAD_SECONDS", "60"))
    report = run_load.run(seconds=seconds)
    note = (
        f"{report.users} users, {report.seconds:.0f} s, {report.database}, load average "
        f"{report.load_average[0]:.1f}→{report.load_average[1]:.1f}"
    )
    figures = [
        {
            "name": f"load: {f.kind} p95",
            "value": f.p95,
            "unit": "ms",
            "limit": run_load.PAGE_P95_LIMIT_MS,
            "ok": f.p95 <= run_load.PAGE_P95_LIMIT_MS,
            "note": f"p50 {f.p50:.0f} ms, {f.count} requests",
        }
        for f in report.figures
        if f.kind in (*run_load.PAGES, "pages, all types")
    ]
    for kind, limit in (
        (run_load.SIGN_IN, SIGN_IN_LIMIT_MS),
        (run_load.UPLOAD, UPLOAD_LIMIT_MS),
        (run_load.REPORT, REPORT_LIMIT_MS),
    ):
        f = report.of(kind)
        figures.append(
            {
                "name": f"load: {kind} p95",
                "value": f.p95,
                "unit": "ms",
                "limit": limit,
                "ok": f.p95 <= limit,
                "note": f"p50 {f.p50:.0f} ms, {f.count} requests",
            }
        )
    figures.append(
        {
            "name": "load: errors",
            "value": float(report.errors),
            "unit": "requests",
            "limit": 0,
            "ok": report.errors == 0,
            "note": note,
        }
    )
    return figures
