"""Finding things: a bulk lookup of 10,000 people, and the batch list's filters at 100,000 batches.

Seed (SQLite, migrated): 10 uploads of 10,000 subjects through the real service (100,000
subjects; half of the batches complete), then 100,000 more batches inserted directly, with
references, file names, uploaders and upload times spread over two years. The bulk lookup
pastes 10,000 identities (half of them held by the history) and is timed through the page:
POST → read, fingerprint, one query per 1,000, audit, render (and the CSV download).
The list figures are a reference and a file name "contains" (LIKE '%…%', no index) and a date
range with an uploader. Each figure is the best of 3 after a warm-up.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from .bench_pages import PASSWORD, _app, _people_and_environment
from .bench_upload import sample_csv

HISTORY_UPLOADS = 10
MORE_BATCHES = 100_000
PEOPLE = 10_000
RUNS = 3
LIMIT_BULK_S = 2.0
LIMIT_LIST_MS = 250.0  # 100 times the batches of the pages benchmark (≤ 150 ms at 1,002)


def _history(app) -> None:
    """100,000 subjects in 10 uploads; every other batch complete."""
    from webapp.db import session_scope
    from webapp.erasure import batches
    from webapp.models import Batch, Subject, utcnow

    for n in range(HISTORY_UPLOADS):
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session,
                actor="ada@example.org",
                environment_id=1,
                data=sample_csv(offset=n * 100_000),
                reference=f"HISTORY-{n}",
            )
            if n % 2 == 0:
                now = utcnow()
                session.execute(
                    sa.update(Subject)
                    .where(Subject.batch_id == batch.id, Subject.state == "pending")
                    .values(state="complete", submitted_at=now, completed_at=now)
                )
                session.execute(
                    sa.update(Batch).where(Batch.id == batch.id).values(state="complete")
                )
            session.commit()


def _more_batches(app) -> None:
    """100,000 small batches inserted directly (the upload is timed elsewhere)."""
    from webapp.db import session_scope
    from webapp.models import Batch

    start = datetime(2024, 1, 1, tzinfo=UTC)
    states = ["complete", "complete", "polling", "awaiting_approval", "rejected", "cancelled"]
    with app.app_context(), session_scope(write=True) as session:
        for first in range(0, MORE_BATCHES, 10_000):
            session.execute(
                sa.insert(Batch.__table__),
                [
                    {
                        "environment_id": 1, "state": states[n % len(states)], "source": "file",
                        "filename": f"export-{n % 500}.csv", "file_sha256": uuid.uuid4().hex * 2,
                        "received_on": (start + timedelta(minutes=10 * n)).date(),
                        "reference": f"DSR-{n:06d}", "rows_total": 10, "valid_count": 10,
                        "malformed_count": 0, "duplicate_count": 0, "already_requested_count": 0,
                        "completed_count": 0, "uploaded_by": 1 + n % 2, "manifest_count": 10,
                        "created_at": start + timedelta(minutes=10 * n),
                    }
                    for n in range(first, first + 10_000)
                ],
            )  # fmt: skip
        session.commit()


def _pasted() -> str:
    """10,000 identities: every other one was uploaded (sample_csv's person.N), half never."""
    return "\n".join(
        f"person.{n}@example.org" if n % 2 else f"stranger.{n}@example.net"
        for n in range(1, 2 * PEOPLE, 2)
    )


def _signed_in(app):
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    client.post(
        "/login",
        data={"email": "ben@example.org", "password": PASSWORD, "csrf_token": _token(page)},
    )
    return client


def _token(page: str) -> str:
    return page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]


def _best(action) -> float:
    action()
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def run() -> list[dict]:
    """The bulk lookup (page and CSV) and three filtered batch lists."""
    with tempfile.TemporaryDirectory() as folder:
        app = _app(Path(folder))
        from webapp.db import session_scope

        with app.app_context(), session_scope(write=True) as session:
            _people_and_environment(session)
        _history(app)
        _more_batches(app)
        client = _signed_in(app)
        token = _token(client.get("/lookup/bulk").get_data(as_text=True))
        data = {"kind": "identity", "pasted": _pasted(), "csrf_token": token}

        def bulk(download: bool = False):
            form = data | ({"download": "Download the answer (CSV)"} if download else {})
            response = client.post("/lookup/bulk", data=form)
            body = response.get_data(as_text=True)
            assert response.status_code == 200, response.status_code
            assert download or "5,000 deleted" in body and "5,000 never requested" in body

        def listed(path: str):
            def get():
                response = client.get(path)
                assert response.status_code == 200 and "<strong>#" in response.get_data(True)

            return get

        bulk_s = _best(bulk)
        csv_s = _best(lambda: bulk(download=True))
        lists = [
            ("batch list at 100,010 batches: reference contains", "/batches?reference=dsr-0421"),
            ("… file name contains", "/batches?filename=export-42.csv"),
            (
                "… uploader and a month of upload dates",
                "/batches?uploaded_by=2&uploaded_from=2024-06-01&uploaded_to=2024-06-30",
            ),
        ]
        list_ms = [(name, _best(listed(path)) * 1000) for name, path in lists]
        app.extensions["desk_engine"].dispose()
    figures = [
        ("bulk lookup of 10,000 pasted identities, 100,000 subjects of history: page", bulk_s),
        ("… the same answered as CSV", csv_s),
    ]
    return [_figure(name, value, "s", LIMIT_BULK_S) for name, value in figures] + [
        _figure(name, value, "ms", LIMIT_LIST_MS) for name, value in list_ms
    ]


def _figure(name: str, value: float, unit: str, limit: float) -> dict:
    return {"name": name, "value": value, "unit": unit, "limit": limit, "ok": value <= limit}
