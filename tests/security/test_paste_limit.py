"""Issue 12, finding 8: a paste of 747 KB was refused with "at most 5 MB", so a full
10,000-row paste could not be made.

The paste limit is the file limit (DESK_UPLOAD_MAX_BYTES), a 10,000-row paste goes through the
page's form as a browser sends it (multipart, CRLF line ends), and a paste over the limit is
told the real limit.
"""

from __future__ import annotations

import html
from datetime import date

import pytest
from batch_fixtures import *  # noqa: F401,F403

from webapp.erasure import intake
from webapp.models import Batch

LIMIT = 5 * 1024 * 1024  # the default DESK_UPLOAD_MAX_BYTES


def _pasted(rows: int, width: int) -> str:
    """`rows` distinct identities of `width` characters, one a line, as a browser sends a
    textarea (CRLF)."""
    return "\r\n".join(
        f"person{n:05d}@".ljust(width - 12, "x") + "example.org" for n in range(rows)
    )


def _post(auth, env_id: int, pasted: str):
    data = {"environment_id": str(env_id), "pasted": pasted, "paste_kind": "identity"}
    return auth.post("/batches/new", data, content_type="multipart/form-data")


def test_the_findings_747_kb_paste_of_10000_rows_is_stored(app, auth, login_as, env_id):
    login_as("officer")
    pasted = _pasted(10_000, 74)
    assert 740_000 < len(pasted.encode()) < 780_000  # the finding's size
    response = _post(auth, env_id, pasted)
    assert response.status_code == 302, html.unescape(response.get_data(as_text=True))[-2000:]
    batch_id = int(response.location.rstrip("/").rsplit("/", 1)[1])
    with app.app_context():
        from webapp.db import session_scope

        with session_scope(write=False) as session:
            batch = session.get(Batch, batch_id)
            assert (batch.rows_total, batch.valid_count) == (10_000, 10_000)


def test_a_paste_just_under_the_file_limit_is_read_not_refused_as_a_form(
    app, auth, login_as, env_id
):
    """Close to the limit (long lines, so the row limit is not what stops it)."""
    login_as("officer")
    pasted = _pasted(9_000, 560)
    assert LIMIT - 300_000 < len(pasted.encode()) < LIMIT
    response = _post(auth, env_id, pasted)
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code in (302, 400), text[-2000:]
    assert "larger than the desk accepts" not in text  # not the 413 of a form field
    if response.status_code == 400:  # identities over Heap's 255 characters are malformed rows,
        assert "the desk accepts at most" not in text  # never a refusal of the size


def test_a_paste_over_the_limit_is_told_the_real_limit(app, auth, login_as, env_id, table_counts):
    login_as("officer")
    before = table_counts()
    pasted = _pasted(4_000, 1_400)  # 5.6 MB: past the request cap too (the limit + 256 KB)
    response = _post(auth, env_id, pasted)
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code in (400, 413)
    assert "5 MB" in text or "5.0 MB" in text
    assert "747" not in text
    assert table_counts() == before


def test_a_paste_a_little_over_the_limit_names_both_sizes(
    app, auth, login_as, env_id, table_counts
):
    login_as("officer")
    before = table_counts()
    pasted = _pasted(3_800, 1_400)
    size = len(pasted.replace("\r\n", "\n").encode())
    assert LIMIT < size < LIMIT + 200_000
    response = _post(auth, env_id, pasted)
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400, text[-2000:]
    assert size / 1_048_576 > 5.05  # so the sizes read differently rounded to 0.1 MB
    assert "The pasted list is 5.1 MB; the desk accepts at most 5.0 MB." in text
    assert table_counts() == before


def _read(text: str, max_bytes: int) -> intake.Upload:
    today = date.today()
    return intake.read_paste(
        text,
        kind="identity",
        fingerprint_key="k",
        received_on=today,
        today=today,
        max_bytes=max_bytes,
    )


def test_a_paste_is_measured_like_the_same_list_as_a_file():
    """A browser sends a textarea with CRLF line ends: the same list as an LF file fits, so
    the paste fits too."""
    lines = [f"p{n}@example.org" for n in range(100)]
    as_file = ("\n".join(lines) + "\n").encode()
    upload = _read("\r\n".join(lines) + "\r\n", max_bytes=len(as_file))
    assert len(upload.rows) == 100


@pytest.mark.parametrize(
    ("text", "max_bytes", "message"),
    [
        (
            "\n".join(f"p{n:03d}@example.org" for n in range(100)),
            1_600,
            "1,699 bytes; the desk accepts at most 1,600 bytes.",
        ),
        ("x" * 310_000, 300_000, "303 KB; the desk accepts at most 293 KB."),
    ],
)
def test_a_paste_refusal_says_paste_and_the_limit(text, max_bytes, message):
    with pytest.raises(intake.UploadRefused, match=f"^The pasted list is {message}"):
        _read(text, max_bytes=max_bytes)
