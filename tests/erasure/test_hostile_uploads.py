"""Hostile uploads through the real page (multipart + CSRF) and POST /api/v1/batches.

Every malformed upload is either refused as a whole — the same plain message on the page and
in the API's error body, and nothing stored (no batch, subject, correction or audit entry) — or
stored row by row with each problem named, and every value rendered escaped in the pages and
neutralised in the CSV downloads. tests/erasure/test_intake.py and tests/erasure/test_batches.py
check the reading rules on the service; here the same files come in over HTTP, as an attacker
sends them.
"""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
import sqlalchemy as sa
from batch_fixtures import *  # noqa: F401,F403
from conftest import AuthActions
from markupsafe import escape
from sqlmodel import select

from webapp.crypto import decrypt
from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Correction, Subject

MAX_SAFE = 2**53 - 1
UTF8_HINT = "Save it as “CSV UTF-8” and upload that."
TEN_THOUSAND_AND_ONE = ("identity\n" + "\n".join(f"p{i}@x.org" for i in range(10_001))).encode()

# (case id, file bytes, the message the page and the API both give). Nothing may be stored.
REFUSED = [
    ("utf16-bom", "identity\nada@x.org\n".encode("utf-16"), "The file contains NUL bytes"),
    ("utf16le-no-bom", "identity\nada@x.org\n".encode("utf-16-le"), "contains NUL bytes"),
    ("utf16-bom-only", b"\xff\xfeidentity\n", "not UTF-8 text (line 1, byte 1 cannot be read)"),
    (
        "latin1",
        "identity\nJosé@x.org\n".encode("latin-1"),
        f"not UTF-8 text (line 2, byte 13 cannot be read). {UTF8_HINT}",
    ),
    (
        "utf8-then-latin1",
        "identity\nJosé@x.org\n".encode() + "Zoë@x.org\n".encode("latin-1"),
        "not UTF-8 text (line 3, byte 24 cannot be read)",
    ),
    ("cp1252-quotes", b"identity\n\x93ada\x94@x.org\n", "not UTF-8 text (line 2, byte 10"),
    (
        "pipe-delimited",
        b"identity|reference\nada@x.org|T-1\n",
        "The values are separated by “|”; the desk reads comma, semicolon or tab.",
    ),
    (
        "pipe-user-ids",
        b"user_id | received_on\n42 | 2025-01-01\n",
        "The values are separated by “|”",
    ),
    (
        "unterminated-quote",
        b'identity\n"ada@x.org\nbob@x.org\n',
        'not valid CSV near line 3: a value opens with a quote (") that is never closed.',
    ),
    (
        "text-after-closing-quote",
        b'identity\n"ada"@x.org\n',
        'not valid CSV near line 2: a closing quote (") is followed by more text',
    ),
    ("10001-rows", TEN_THOUSAND_AND_ONE, "more than 10,000 subjects; the desk takes at most"),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "NUL bytes: it is binary"),
    ("zip-xlsx", b"PK\x03\x04\x14\x00\x06\x00[Content_Types].xml", "spreadsheet workbook"),
    ("ole-xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "spreadsheet workbook"),
    ("elf", b"\x7fELF\x02\x01\x01\x00\x00\x00", "NUL bytes"),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "not UTF-8 text (line 2, byte 11"),
    ("nul-in-a-value", b"identity\nada\x00@x.org\n", "NUL bytes"),
    ("empty", b"", "The file is empty."),
    ("bom-only", b"\xef\xbb\xbf", "The file is empty."),
    ("blank-lines-only", b"\r\n   \n\t\n", "The file is empty."),
    ("header-only", b"identity\n", "The file has a header line but no subjects."),
    ("header-only-bom-crlf", b"\xef\xbb\xbfidentity\r\n", "header line but no subjects"),
    ("header-then-blank-lines", b"user_id,identity\n\n,\n\r\n", "header line but no subjects"),
    (
        "duplicate-headers",
        b"identity,identity\na@x.org,b@x.org\n",
        "The header names the identity column twice (“identity” and “identity”). Keep one.",
    ),
    ("email-and-identity", b"email;Identity\na;b\n", "names the identity column twice"),
    ("user-id-twice", b"user_id,UserId\n1,2\n", "names the user_id column twice"),
    ("no-identifier-column", b"name,phone\nAda,123\n", "must name the identifier column"),
    (
        "script-header-only",
        b"<script>alert(1)</script>\nada@x.org\n",
        "must name the identifier column",
    ),
    (
        "one-very-long-line",
        b"identity\n" + b"y" * 140_000 + b"\n",
        "not valid CSV near line 2: a value is longer than 131,072 characters.",
    ),
]


# (case id, file bytes, {row: (classification, reason fragment)} for rows that are not valid,
#  counts, values the batch page must show escaped). Stored, with every problem named.
STORED = [
    (
        "formula-identities",
        b'identity\n"=HYPERLINK(""http://evil.example"",""x"")"\n'
        b"+cmd|' /C calc'!A0\n@SUM(1+1)\n-2+3\n",
        {},
        {"rows": 4, "valid": 4},
        ['=HYPERLINK("http://evil.example","x")', "+cmd|' /C calc'!A0", "@SUM(1+1)"],
    ),
    (
        "script-identities",
        b'identity\n<script>alert(1)</script>\n"""><img src=x onerror=alert(1)>"\n',
        {},
        {"rows": 2, "valid": 2},
        ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'],
    ),
    (
        "sql-metacharacters",
        b'identity\n\'; DROP TABLE subjects; --\n""" OR 1=1"\n',
        {},
        {"rows": 2, "valid": 2},
        ["'; DROP TABLE subjects; --", '" OR 1=1'],
    ),
    (
        "overlong-identity",
        b"identity\n" + b"x" * 255 + b"\n" + b"z" * 256 + b"\n",
        {2: ("malformed", "identity is longer than 255 characters")},
        {"rows": 2, "valid": 1, "malformed": 1},
        ["x" * 255],
    ),
    (
        "negative-and-2^53-user-ids",
        f"user_id\n-5\n{MAX_SAFE + 1}\n{MAX_SAFE}\n-0\n".encode(),
        {
            1: ("malformed", "user_id must be a whole number written with digits only"),
            2: ("malformed", f"user_id is larger than {MAX_SAFE} (2^53-1)"),
            4: ("malformed", "digits only"),
        },
        {"rows": 4, "valid": 1, "malformed": 3},
        [str(MAX_SAFE)],
    ),
    (
        "floats-and-exponents",
        b"user_id\n1e5\n12.0\n1.23457E+15\n0x1F\n",
        {
            1: ("malformed", "digits only (a spreadsheet turned it into scientific notation)"),
            2: ("malformed", "whole number written with digits only"),
            3: ("malformed", "scientific notation"),
            4: ("malformed", "digits only"),
        },
        {"rows": 4, "valid": 0, "malformed": 4},
        [],
    ),
    (
        "leading-zeros",
        b"user_id\n007\n7\n0000\n",
        {2: ("duplicate", "the same user_id as row 1")},
        {"rows": 3, "valid": 2, "duplicate": 1},
        [],
    ),
    (
        "mixed-kinds",
        b"user_id,identity\n42,\n,ada@x.org\n43,bob@x.org\n,\n",
        {3: ("malformed", "both user_id and identity are filled")},
        {"rows": 3, "valid": 2, "malformed": 1},
        ["ada@x.org"],
    ),
    (
        "empty-lines-everywhere",
        b"\n\n identity \n\n\nada@x.org\n\n\n\nbob@x.org\n\n",
        {},
        {"rows": 2, "valid": 2},
        ["ada@x.org", "bob@x.org"],
    ),
    (
        "unknown-extra-columns",
        b"identity,full name,<b>notes</b>\nada@x.org,Ada Lovelace,<i>vip</i>\n",
        {},
        {"rows": 1, "valid": 1},
        ["ada@x.org"],
    ),
    ("crlf", b"identity\r\nada@x.org\r\nbob@x.org\r\n", {}, {"rows": 2, "valid": 2}, []),
    ("cr-only", b"identity\rada@x.org\rbob@x.org\r", {}, {"rows": 2, "valid": 2}, []),
    (
        "inconsistent-column-counts",
        b"identity,reference\nada@x.org\nbob@x.org,T-1,extra\ncid@x.org,T-2\n",
        {2: ("malformed", "the row has 3 values but the header names 2 columns")},
        {"rows": 3, "valid": 2, "malformed": 1},
        ["ada@x.org"],
    ),
    (
        "quote-inside-unquoted-value",
        b'identity\nada"quoted"@x.org\n',
        {},
        {"rows": 1, "valid": 1},
        ['ada"quoted"@x.org'],
    ),
    (
        "control-characters",
        b"identity\nada\x07@x.org\nbob\x1b[31m@x.org\n",
        {
            1: ("malformed", "identity contains control characters"),
            2: ("malformed", "identity contains control characters"),
        },
        {"rows": 2, "valid": 0, "malformed": 2},
        [],
    ),
]
# The same hostile values once more, so that they also land in the problems table and CSV.
HOSTILE_VALUES = [value for case in STORED[:3] for value in case[4]]


@pytest.fixture
def stored(app):
    """(batches, subjects, corrections, audit entries) now: a refusal must change none."""

    def count() -> tuple[int, ...]:
        with app.app_context(), session_scope(write=False) as session:
            models = (Batch, Subject, Correction, AuditEntry)
            return tuple(session.exec(select(sa.func.count()).select_from(m)).one() for m in models)

    return count


@pytest.fixture
def channels(app, client, auth, login_as, api_token, make_env):
    """Upload the same bytes through the page and the API, each into its own environment
    (so that the second upload does not find the first one's subjects already requested)."""
    login_as("officer")
    token, api_client = api_token("officer"), app.test_client()  # no cookie on the API
    page_env, api_env = make_env("Main Production A"), make_env("Main Production B")

    class Channels:
        def page(self, data: bytes, filename: str = "list.csv"):
            form = {
                "environment_id": str(page_env),
                "file": (io.BytesIO(data), filename),
                "paste_kind": "identity",
            }
            return auth.post("/batches/new", form, content_type="multipart/form-data")

        def api(self, data: bytes, filename: str = "list.csv", **fields):
            form = {"environment_id": str(api_env), "file": (io.BytesIO(data), filename)}
            return api_client.post(
                "/api/v1/batches",
                data=form | fields,
                headers={"Authorization": f"Bearer {token}"},
                content_type="multipart/form-data",
            )

    return Channels()


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _batch_id(location: str) -> int:
    return int(re.fullmatch(r"/batches/(\d+)", location).group(1))


@pytest.mark.parametrize(("data", "message"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused_uploads_say_why_and_store_nothing(channels, stored, data, message):
    before = stored()
    page = channels.page(data)
    assert page.status_code == 400
    assert "Nothing was stored. " in _text(page) and message in _text(page)
    assert "<script>alert(1)</script>" not in page.get_data(as_text=True)
    assert stored() == before

    api = channels.api(data)
    assert api.status_code == 400
    assert api.json["error"]["code"] == "invalid"
    assert message in api.json["error"]["message"]
    assert stored() == before


@pytest.mark.parametrize(
    ("data", "problems", "counts", "shown"),
    [c[1:] for c in STORED],
    ids=[c[0] for c in STORED],
)
def test_stored_uploads_name_each_problem_and_render_escaped(
    app, client, channels, data, problems, counts, shown
):
    expected = {"rows": 0, "valid": 0, "malformed": 0, "duplicate": 0, "already_requested": 0}
    expected |= counts | {"excluded": 0}  # rows taken out in the preview: none at upload
    api = channels.api(data)
    assert api.status_code == 201, api.json
    assert api.json["counts"] == expected
    assert {p["row"]: p["classification"] for p in api.json["problems"]} == {
        row: classification for row, (classification, _) in problems.items()
    }
    for problem in api.json["problems"]:
        assert problems[problem["row"]][1] in problem["reason"]

    page = channels.page(data)
    assert page.status_code == 302, _text(page)
    batch_id = _batch_id(page.location)
    body = client.get(page.location).get_data(as_text=True)
    for value in shown:
        # Jinja's escaping: the value is there, as text, and never as markup.
        assert str(escape(value)) in body
        if "<" in value:
            assert value not in body
    for _, reason in problems.values():
        assert reason in html.unescape(body)
    with app.app_context(), session_scope(write=False) as session:
        batch = session.get(Batch, batch_id)
        assert (batch.rows_total, batch.valid_count) == (expected["rows"], expected["valid"])


def test_unknown_columns_are_ignored_named_and_escaped(channels, client):
    data = b"identity,full name,<script>alert(1)</script>\nada@x.org,Ada,x\n"
    api = channels.api(data)
    assert api.json["ignored_columns"] == ["full name", "<script>alert(1)</script>"]
    page = channels.page(data)
    shown = client.get(page.location).get_data(as_text=True)
    assert "Ignored column(s): “full name”, “&lt;script&gt;alert(1)&lt;/script&gt;”." in shown
    assert "<script>alert(1)</script>" not in shown
    form = client.get("/batches/new").get_data(as_text=True)
    assert "Other columns (a name, a phone number…) are ignored" in form


def test_hostile_values_are_escaped_in_every_page_that_shows_them(app, client, channels):
    # Each value twice: the repeat is a problem row, shown in the problems table too.
    lines = [f'"{value.replace(chr(34), chr(34) * 2)}"' for value in HOSTILE_VALUES] * 2
    page = channels.page(("identity\n" + "\n".join(lines) + "\n").encode())
    batch_id = _batch_id(page.location)
    with app.app_context(), session_scope(write=False) as session:
        subjects = session.exec(
            select(Subject).where(Subject.batch_id == batch_id).order_by(Subject.row_number)
        ).all()
        assert [decrypt(s.identifier_encrypted) for s in subjects] == HOSTILE_VALUES * 2
    batch_page = client.get(f"/batches/{batch_id}").get_data(as_text=True)
    problems = batch_page.split('data-testid="problems"')[1].split("</table>")[0]
    for body in (batch_page, problems):
        assert "<script>alert(1)" not in body and "<img src=x" not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in body
    for subject, value in zip(subjects, HOSTILE_VALUES * 2, strict=True):
        body = client.get(f"/subjects/{subject.id}").get_data(as_text=True)
        assert str(escape(value)) in body
        assert "<script>alert(1)" not in body and "<img src=x" not in body
    auth = AuthActions(client)  # lookups are POSTed (issue 15)
    query = {"kind": "identity", "value": "<script>alert(1)</script>", "environment_id": ""}
    found = auth.post("/lookup", query)
    assert found.status_code == 200
    assert "<script>alert(1)" not in found.get_data(as_text=True)
    assert f"#{batch_id}" in found.get_data(as_text=True)
    listed = auth.post("/lookup/bulk", {"kind": "identity", "pasted": "\n".join(HOSTILE_VALUES)})
    assert listed.status_code == 200
    body = listed.get_data(as_text=True)
    assert "<script>alert(1)" not in body and "<img src=x" not in body
    assert f"#{batch_id}" in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


def test_formulas_are_neutralised_in_the_problems_and_report_csv(client, channels, complete_batch):
    formulas = HOSTILE_VALUES[:3] + ["-2+3", "\t=1+1"]
    rows = [f'"{v.replace(chr(34), chr(34) * 2)}",=1+2' for v in formulas]
    data = ("identity,reference\n" + "\n".join(rows * 2) + "\n").encode()
    page = channels.page(data)
    batch_id = _batch_id(page.location)
    problems = list(csv.reader(io.StringIO(client.get(f"/batches/{batch_id}/problems.csv").text)))
    uploaded = [row[3] for row in problems[1:]]
    # The tab is stripped with the cell's spaces; what is left still starts a formula.
    assert uploaded == ["'" + v.strip() for v in formulas]
    complete_batch(batch_id)
    report = list(csv.reader(io.StringIO(client.get(f"/batches/{batch_id}/report.csv").text)))
    header = report[0]
    identifiers = [row[header.index("identifier")] for row in report[1:]]
    references = {row[header.index("reference")] for row in report[1:]}
    assert identifiers == ["'" + v.strip() for v in formulas] * 2
    assert references == {"'=1+2"}
    for row in report[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


def test_sql_metacharacters_are_stored_literally_and_found_exactly(
    app, client, channels, api_token
):
    values = ["'; DROP TABLE subjects; --", '" OR 1=1', "x' OR '1'='1"]
    data = "identity\n" + "\n".join(f'"{v.replace(chr(34), chr(34) * 2)}"' for v in values)
    api_batch = channels.api(data.encode()).json["id"]
    page_batch = _batch_id(channels.page(data.encode()).location)
    with app.app_context(), session_scope(write=False) as session:
        # Both tables still exist and hold exactly the six rows, values kept literally.
        rows = session.exec(select(Subject).order_by(Subject.batch_id, Subject.row_number)).all()
        assert [decrypt(s.identifier_encrypted) for s in rows] == values * 2
        assert session.exec(select(sa.func.count()).select_from(Batch)).one() == 2
    auditor = {"Authorization": f"Bearer {api_token('auditor')}"}
    for value in values:
        found = client.get(
            "/api/v1/subjects/lookup", query_string={"identity": value}, headers=auditor
        )
        assert found.status_code == 200
        assert sorted(r["batch_id"] for r in found.json["results"]) == [api_batch, page_batch]
    near = client.get(
        "/api/v1/subjects/lookup", query_string={"identity": "x' OR '1'='2"}, headers=auditor
    )
    assert near.json["results"] == []


def test_a_50_mb_body_is_refused_by_the_request_limit(app, channels, stored):
    before = stored()
    body = b"identity\n" + b"ada@x.org\n" * (50 * 1024 * 1024 // 10)
    page = channels.page(body)
    assert page.status_code == 413
    text = _text(page)
    assert "Too large" in text
    assert "The upload is larger than the desk accepts: at most 5 MB per file or form." in text
    api = channels.api(body)
    assert api.status_code == 413
    assert api.json["error"] == {
        "code": "too_large",
        "message": "The upload is larger than the desk accepts: at most 5 MB per file or form. "
        "Split the list into smaller files and upload each.",
    }
    assert stored() == before


def test_a_file_over_the_upload_cap_names_both_sizes(app, channels, stored):
    # Under the request limit (cap + 256 KB for the form around it), over the file cap.
    app.config["DESK_UPLOAD_MAX_BYTES"] = 64 * 1024
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024 + 256 * 1024
    before = stored()
    body = b"identity\n" + b"ada@x.org\n" * 10_000
    message = "The file is 98 KB; the desk accepts at most 64 KB. Split it into smaller files."
    assert message in _text(channels.page(body))
    assert channels.api(body).json["error"]["message"] == message
    assert stored() == before


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("<script>alert(1)</script>.csv", "script&gt;.csv"),
        # (A browser sends a double quote in a file name as %22: the quote here is a single one.)
        ("'><img src=x onerror=alert(1)>.csv", "&#39;&gt;&lt;img src=x onerror=alert(1)&gt;.csv"),
        ("C:\\Users\\ada\\list\x00\u202e.csv", "list.csv"),
        ("../../etc/passwd", "passwd"),
    ],
)
def test_hostile_file_names_are_stored_plainly_and_escaped(app, client, channels, name, shown):
    page = channels.page(b"identity\nada@x.org\n", filename=name)
    body = client.get(page.location).get_data(as_text=True)
    assert shown in body
    assert "<script>" not in body and "<img src=x" not in body
    api = channels.api(b"identity\nbob@x.org\n", filename=name)
    assert api.status_code == 201
    assert "\x00" not in (api.json["filename"] or "") and "/" not in (api.json["filename"] or "")
