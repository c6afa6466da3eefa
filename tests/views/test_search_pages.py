"""Finding things on the pages: batch filters, and lookups whose identifiers stay out of URLs.

Identifiers go in POST bodies only (issue 15): never in a URL, a redirect, or any link of the
answer page, so they reach neither browser history nor a proxy's log.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.db import session_scope
from webapp.erasure import batches
from webapp.models import AuditEntry, Batch, User

LINKS = re.compile(r'(?:href|action|src|formaction)="([^"]*)"')


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _listed(response) -> set[int]:
    return {int(n) for n in re.findall(r"<strong>#(\d+)</strong>", response.get_data(as_text=True))}


def _assert_nowhere_in_urls(response, *identifiers: str) -> None:
    """Not in the URL asked for, not in a redirect, not in any link or form target of the page."""
    assert not response.history, "a redirect would carry the answer into a URL"
    links = LINKS.findall(response.get_data(as_text=True))
    assert links
    for identifier in identifiers:
        for spelling in {identifier, identifier.replace("@", "%40")}:
            assert spelling not in response.request.url
            assert [link for link in links if spelling in html.unescape(link)] == []


def _audited(app, action: str) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return session.exec(
            select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
        ).one()


# --- the batch list's filters --------------------------------------------------------------


@pytest.fixture
def listed_batches(app, make_user, env_id, make_env, complete_batch):
    """Three batches told apart by reference, file name, uploader, state, environment, day."""
    ada = make_user("officer", email="ada.officer@example.org")
    ben = make_user("officer", email="ben.officer@example.org")
    staging = make_env("Staging Production")
    made = []
    for actor, env, reference, filename, day in (
        (ada, env_id, "DSR-2025-001", "march_erasures.csv", datetime(2025, 3, 10, 9, tzinfo=UTC)),
        (ben, env_id, "TICKET-77", "april.csv", datetime(2025, 4, 2, 23, 59, tzinfo=UTC)),
        (ben, staging, "dsr-2025-002", "March-extra.CSV", datetime(2025, 4, 20, tzinfo=UTC)),
    ):
        with app.app_context(), session_scope(write=True) as session:
            batch, _ = batches.create_batch(
                session,
                actor=actor,
                environment_id=env,
                data=f"identity\n{len(made)}@x.org\n".encode(),
                filename=filename,
                reference=reference,
            )
            session.exec(sa.update(Batch).where(Batch.id == batch.id).values(created_at=day))
            session.commit()
            made.append(batch.id)
    complete_batch(made[0])
    with app.app_context(), session_scope(write=False) as session:
        ben_id = session.exec(select(User.id).where(User.email == ben)).one()
    return {"ids": made, "ben": ben_id, "staging": staging, "main": env_id}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("reference=dsr-2025", {0, 2}),
        ("reference=%20TICKET%20", {1}),
        ("reference=%25", set()),  # LIKE's wildcards are searched for, not used
        ("reference=_", set()),
        ("filename=MARCH", {0, 2}),
        ("filename=.csv", {0, 1, 2}),
        ("uploaded_by={ben}", {1, 2}),
        ("state=complete", {0}),
        ("state=awaiting_approval", {1, 2}),
        ("environment_id={staging}", {2}),
        ("uploaded_from=2025-04-01", {1, 2}),
        ("uploaded_to=2025-04-02", {0, 1}),  # inclusive: the whole day, UTC
        ("uploaded_from=2025-04-02&uploaded_to=2025-04-02", {1}),
        ("reference=dsr&uploaded_from=2025-04-01", {2}),
        ("filename=csv&uploaded_by={ben}&environment_id={main}", {1}),
        ("reference=dsr&state=complete&uploaded_to=2025-03-10", {0}),
        ("reference=dsr&state=awaiting_approval&environment_id={main}", set()),
    ],
)
def test_batch_filters_alone_and_combined(client, login_as, listed_batches, query, expected):
    login_as("auditor")
    response = client.get("/batches?" + query.format(**listed_batches))
    assert response.status_code == 200
    ids = listed_batches["ids"]
    assert _listed(response) == {ids[n] for n in expected}
    if not expected:
        assert "No batch matches these filters" in _text(response)


def test_the_uploader_select_offers_those_who_uploaded(client, login_as, listed_batches):
    login_as("auditor")
    text = _text(client.get("/batches"))
    select_html = text.split('name="uploaded_by"', 1)[1].split("</select>", 1)[0]
    assert "ada.officer@example.org" in select_html and "ben.officer@example.org" in select_html
    assert "auditor" not in select_html  # never uploaded anything


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("uploaded_from=03/10/2025", "Write the date as YYYY-MM-DD"),
        ("uploaded_to=2025-02-30", "Write the date as YYYY-MM-DD"),
        ("uploaded_from=2025-05-01&uploaded_to=2025-04-01", "before the “from” date"),
        ("uploaded_by=999999999999999999999", "Not a valid choice"),
        ("reference=" + "x" * 256, "longer than 255"),
        ("state=<b>", "Not a valid choice"),
    ],
)
def test_unusable_filters_are_plain_400s(client, login_as, listed_batches, query, message):
    login_as("auditor")
    response = client.get("/batches?" + query)
    assert response.status_code == 400
    assert message in _text(response)


def test_filters_survive_pagination(app, client, login_as, make_user, env_id):
    officer = make_user("officer")
    for n in range(28):
        with app.app_context(), session_scope(write=True) as session:
            batches.create_batch(
                session,
                actor=officer,
                environment_id=env_id,
                data=f"identity\nperson{n}@x.org\n".encode(),
                reference=f"OTHER-{n}" if n in (5, 6) else f"BULK-{n}",
            )
    login_as("auditor")
    first = client.get("/batches?reference=bulk")
    text = _text(first)
    assert "26 batches" in text and "Page 1 of 2" in text and len(_listed(first)) == 25
    next_link = re.search(r'href="([^"]*)" rel="next"', text)[1]
    assert "reference=bulk" in next_link and "page=2" in next_link
    second = client.get(next_link)
    assert second.status_code == 200 and len(_listed(second)) == 1
    assert _listed(first).isdisjoint(_listed(second))


# --- one person: the lookup page ------------------------------------------------------------


def test_lookup_is_posted_and_the_identifier_stays_out_of_urls(
    app, client, auth, login_as, make_user, upload, complete_batch
):
    done = upload(make_user("officer"), "identity\nada@x.org\n")
    complete_batch(done, deletion_request_id="dddd-2222")
    login_as("auditor")
    form = _text(client.get("/lookup"))
    assert re.search(r'<form method="post"[^>]*action="/lookup"', form)
    response = auth.post("/lookup", {"kind": "identity", "value": "ada@x.org"})
    assert response.status_code == 200
    text = _text(response)
    assert "Deleted.</strong>" in text and "dddd-2222" in text and f"#{done}" in text
    _assert_nowhere_in_urls(response, "ada@x.org")
    assert _audited(app, "subject.looked_up") == 1
    # A GET carrying an identifier (an old bookmark) looks nothing up.
    old = client.get("/lookup?kind=identity&value=ada%40x.org")
    assert old.status_code == 200 and "Deleted." not in _text(old)
    assert _audited(app, "subject.looked_up") == 1


def test_lookup_needs_the_csrf_token(app, client, login_as):
    login_as("auditor")
    response = client.post("/lookup", data={"kind": "identity", "value": "ada@x.org"})
    assert response.status_code == 400
    assert "ada@x.org" not in response.get_data(as_text=True)
    assert _audited(app, "subject.looked_up") == 0


def test_lookup_refusals_are_plain_400s(auth, login_as):
    login_as("auditor")
    response = auth.post("/lookup", {"kind": "user_id", "value": "12ab"})
    assert response.status_code == 400 and "cannot be looked up" in _text(response)


# --- the batch page's Find ------------------------------------------------------------------


def test_row_find_is_posted_and_no_link_carries_the_identifier(
    client, auth, login_as, make_user, upload, complete_batch
):
    rows = "\n".join(f"user{i}@x.org" for i in range(1, 121))
    dupes = "\n".join(f"user{i}@x.org" for i in range(1, 26))  # 25 problems: two pages
    batch_id = upload(make_user("officer"), f"identity\n{rows}\nUser7@x.org\n{dupes}\n")
    complete_batch(batch_id)
    login_as("auditor")
    path = f"/batches/{batch_id}"
    page = _text(client.get(path))
    assert re.search(r'<form method="post" action="/batches/\d+#rows"', page)
    response = auth.post(path, {"q": "User7@x.org"})
    assert response.status_code == 200
    text = _text(response)
    found = text.split('data-testid="subjects"', 1)[1].split("</table>", 1)[0]
    assert "User7@x.org" in found and "user8@x.org" not in found and "user7@x.org" not in found
    assert "ppage=2" in text  # the problems pager is there, and clean
    _assert_nowhere_in_urls(response, "User7@x.org")
    by_row = _text(auth.post(path, {"q": "120"})).split('data-testid="subjects"', 1)[1]
    assert "user120@x.org" in by_row and "user12@x.org<" not in by_row
    assert "No row of this batch matches" in _text(auth.post(path, {"q": "nobody@x.org"}))
    # The rows' own pager still works (a GET with a page number only).
    assert "user101@x.org" in _text(client.get(path + "?page=3"))
    # A GET with q= (an old link) searches nothing.
    assert "user50@x.org" in _text(client.get(path + "?q=User7@x.org"))


def test_row_find_needs_the_csrf_token(client, login_as, make_user, upload):
    batch_id = upload(make_user("officer"), "identity\nada@x.org\n")
    login_as("auditor")
    assert client.post(f"/batches/{batch_id}", data={"q": "ada@x.org"}).status_code == 400


# --- many people: the bulk lookup page ------------------------------------------------------


@pytest.fixture
def answered_desk(app, make_user, upload, complete_batch):
    officer = make_user("officer")
    done = upload(officer, "identity\nada@x.org\nbea@x.org\n")
    complete_batch(done)
    upload(officer, "user_id\n42\n")
    return done


def test_bulk_lookup_answers_per_person(app, client, auth, login_as, answered_desk):
    login_as("auditor")
    form = _text(client.get("/lookup/bulk"))
    assert re.search(r'<form method="post"[^>]*action="/lookup/bulk"', form)
    pasted = "ada@x.org\nbea@x.org\nnobody@x.org\n" + "x" * 300 + "\n"
    response = auth.post("/lookup/bulk", {"kind": "identity", "pasted": pasted})
    assert response.status_code == 200
    text = _text(response)
    assert "2 deleted, 1 never requested, 1 malformed" in text
    answers = _text(response).split('data-testid="bulk-answers"', 1)[1]
    assert f"#{answered_desk}" in answers and "never requested" in answers
    _assert_nowhere_in_urls(response, "ada@x.org", "nobody@x.org")
    assert _audited(app, "subjects.bulk_looked_up") == 1
    ids = auth.post("/lookup/bulk", {"kind": "user_id", "pasted": "0042\n7"})
    assert "1 awaiting approval, 1 never requested" in _text(ids)


def test_bulk_lookup_of_a_csv_file_and_its_download(client, auth, login_as, answered_desk):
    login_as("auditor")
    data = {
        "kind": "identity",
        "pasted": "",
        "file": (io.BytesIO(b"identity,user_id\nada@x.org,\n,42\n,\nada@x.org,42\n"), "p.csv"),
    }
    response = auth.post("/lookup/bulk", data, form_page="/lookup/bulk")
    assert response.status_code == 200
    assert "1 deleted, 1 awaiting approval, 1 malformed" in _text(response)
    # The download form carries the list in its body (a hidden field), never in its URL.
    page = response.get_data(as_text=True)
    download = page.split('data-testid="download-form"', 1)[1].split("</form>", 1)[0]
    carried = html.unescape(re.search(r"<textarea[^>]*>(.*?)</textarea>", download, re.S)[1])
    assert "ada@x.org" in carried
    answer = auth.post(
        "/lookup/bulk",
        {"kind": "identity", "pasted": carried, "download": "Download"},
        form_page="/lookup/bulk",
    )
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    assert "ada" not in answer.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(answer.get_data(as_text=True))))
    assert [(r[0], r[2], r[3]) for r in rows[1:]] == [
        ("1", "ada@x.org", "deleted"),
        ("2", "42", "awaiting_approval"),
        ("3", "42 / ada@x.org", "malformed"),
    ]


def test_bulk_lookup_refuses_10001_lines_plainly(app, auth, login_as):
    login_as("officer")
    pasted = "\n".join(f"p{n}@x.org" for n in range(10_001))
    response = auth.post("/lookup/bulk", {"kind": "identity", "pasted": pasted})
    assert response.status_code == 400
    assert "10,001 people; the desk looks up at most 10,000" in _text(response)
    assert _audited(app, "subjects.bulk_looked_up") == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "identity", "pasted": ""}, "Paste a list or choose a CSV file."),
        ({"kind": "email", "pasted": "a@x.org"}, "Not a valid choice"),
        ({"kind": "identity", "pasted": "a", "environment_id": "99999"}, "Not a valid choice"),
    ],
)
def test_bulk_lookup_form_errors(auth, login_as, data, message):
    login_as("auditor")
    response = auth.post("/lookup/bulk", data)
    assert response.status_code == 400 and message in _text(response)


def test_bulk_lookup_needs_the_csrf_token(app, client, login_as):
    login_as("auditor")
    response = client.post("/lookup/bulk", data={"kind": "identity", "pasted": "ada@x.org"})
    assert response.status_code == 400
    assert _audited(app, "subjects.bulk_looked_up") == 0
