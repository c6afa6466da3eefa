"""Times on pages: a `<time>` element with the UTC moment, shown in the viewer's zone by
static/desk.js, or in DESK_TIMEZONE for the whole desk; evidence stays in UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from evidence_fixtures import *  # noqa: F401,F403
from evidence_fixtures import pdf_text
from flask import render_template_string

from webapp.db import session_scope
from webapp.models import Batch

WINTER = datetime(2025, 1, 31, 14, 5, 9, tzinfo=UTC)
SUMMER = datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
TIME = re.compile(r'<time datetime="([^"]+)" title="([^"]+)"( data-local="\w+")?>([^<]+)</time>')


def shown(app, moment, template: str = "{{ moment|utc }}") -> str:
    with app.test_request_context():
        return render_template_string(template, moment=moment)


@pytest.fixture
def berlin(desk_env, monkeypatch):
    """The desk configured with DESK_TIMEZONE=Europe/Berlin (request it before `app`)."""
    monkeypatch.setenv("DESK_TIMEZONE", "Europe/Berlin")


def test_a_time_is_utc_in_the_page_and_local_in_the_browser(app):
    assert shown(app, WINTER) == (
        '<time datetime="2025-01-31T14:05:09Z" title="2025-01-31 14:05 UTC" '
        'data-local="minutes">2025-01-31 14:05 UTC</time>'
    )
    assert shown(app, None) == "—"


def test_seconds_where_the_page_shows_them(app):
    text = shown(app, WINTER, "{{ moment|utc(seconds=True) }}")
    assert text == (
        '<time datetime="2025-01-31T14:05:09Z" title="2025-01-31 14:05:09 UTC" '
        'data-local="seconds">2025-01-31 14:05:09 UTC</time>'
    )


def test_desk_timezone_renders_that_zone_for_everyone(berlin, app):
    assert app.config["DESK_TIMEZONE"] == "Europe/Berlin"
    # No data-local: the browser leaves the desk's zone alone. The title keeps the UTC.
    assert shown(app, WINTER) == (
        '<time datetime="2025-01-31T14:05:09Z" title="2025-01-31 14:05 UTC">'
        "2025-01-31 15:05 CET</time>"
    )
    assert "2025-07-01 14:00 CEST</time>" in shown(app, SUMMER)


def test_pages_use_the_time_element(app, client, login_as, finished_batch):
    login_as("auditor")
    page = client.get(f"/batches/{finished_batch.id}").get_data(as_text=True)
    times = TIME.findall(page)
    assert times, "the batch page shows its times as <time> elements"
    for moment, title, local, text in times:
        assert moment.endswith("Z") and title.endswith(" UTC") and local and text == title
    assert "UTC</time>" in client.get("/batches").get_data(as_text=True)


def test_evidence_stays_in_utc_whatever_the_desk_shows(
    berlin, app, client, login_as, finished_batch
):
    with app.app_context(), session_scope(write=False) as session:
        completed = session.get(Batch, finished_batch.id).completed_at
    login_as("auditor")
    page = client.get(f"/batches/{finished_batch.id}").get_data(as_text=True)
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d CES?T</time>", page)
    assert f'title="{completed:%Y-%m-%d %H:%M} UTC"' in page
    # The certificate, the report and the API are evidence: UTC, whatever DESK_TIMEZONE says.
    certificate = pdf_text(client.get(f"/batches/{finished_batch.id}/certificate.pdf").data)
    assert f"{completed:%Y-%m-%d %H:%M:%S} UTC" in certificate
    assert "CET" not in certificate and "CEST" not in certificate
    report = client.get(f"/batches/{finished_batch.id}/report.csv").get_data(as_text=True)
    assert "+00:00" in report and "+01:00" not in report and "+02:00" not in report
