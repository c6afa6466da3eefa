"""Issue 12, finding 10: look-alike identities — `alice\\u200b@…` (zero-width) and identities with
a right-to-left override — passed as valid, were not flagged, and looked identical on the
approval page.

An identifier with a Unicode format (Cf) or control (Cc) character is malformed, with a reason
that names the character and where it is (never the value); identities equal after NFC
normalisation are flagged like case twins; the corrections forms refuse them the same way.
"""

from __future__ import annotations

import html
from datetime import date

import pytest
from batch_fixtures import *  # noqa: F401,F403
from sqlmodel import select

from webapp.corrections.plans import CorrectionInputError, plan
from webapp.db import session_scope
from webapp.erasure import intake
from webapp.heap import HeapClient
from webapp.models import Subject

TODAY = date(2025, 3, 10)


def read(text: str) -> intake.Upload:
    options = {"fingerprint_key": "k", "received_on": TODAY, "today": TODAY, "max_bytes": 10_000}
    return intake.read_csv(text.encode(), **options)


@pytest.mark.parametrize(
    ("identity", "reason"),
    [
        (
            "alice\u200b@example.org",
            "identity contains an invisible character U+200B ZERO WIDTH SPACE at position 6",
        ),
        (
            "\u202egro.elpmaxe@ecila",
            "identity contains an invisible character U+202E RIGHT-TO-LEFT OVERRIDE at position 1",
        ),
        (
            "alice@exam\u2066ple.org\u2069",
            "identity contains an invisible character U+2066 LEFT-TO-RIGHT ISOLATE at position 11",
        ),
        ("ali\u00adce@example.org", "U+00AD SOFT HYPHEN at position 4"),
        ("alice\u200d@example.org", "U+200D ZERO WIDTH JOINER at position 6"),
        ("alice@example.org\u2060", "U+2060 WORD JOINER at position 18"),
        ("ali\ufeffce@example.org", "U+FEFF ZERO WIDTH NO-BREAK SPACE at position 4"),
        ("José\u200b@example.org", "U+200B ZERO WIDTH SPACE at position 5"),
        ("alice\u0085@example.org", "identity contains control characters (U+0085"),
        ("alice\x07@example.org", "identity contains control characters (U+0007"),
        ("a\tb", "identity contains control characters (U+0009 CHARACTER TABULATION"),
    ],
)
def test_an_identity_with_an_invisible_or_control_character_is_malformed(identity, reason):
    quoted = '"' + identity.replace('"', '""') + '"'
    upload = read(f"identity\nbob@example.org\n{quoted}\n")
    row = upload.rows[1]
    assert row.classification == "malformed"
    assert reason in row.problem
    assert identity not in row.problem  # reasons never quote the value
    assert upload.rows[0].classification == "valid"


def test_the_findings_look_alike_is_malformed_beside_the_real_one():
    upload = read("identity\nalice@example.org\nalice\u200b@example.org\n")
    assert [row.classification for row in upload.rows] == ["valid", "malformed"]
    assert upload.rows[0].warning is None


@pytest.mark.parametrize(
    "identity",
    ["José@example.org", "Zoë Ω 名前@例え.jp", "😀@example.org", "Ⅻ@x.org", "ŝ@x.org"],
)
def test_visible_non_ascii_identities_stay_valid(identity):
    row = read(f"identity\n{identity}\n").rows[0]
    assert (row.classification, row.value, row.warning) == ("valid", identity, None)


def test_identities_equal_after_nfc_are_flagged_like_case_twins():
    composed, decomposed = "Jos\u00e9@example.org", "Jose\u0301@example.org"
    upload = read(f"identity\n{composed}\nbob@example.org\n{decomposed}\n")
    first, _, third = upload.rows
    assert (first.classification, third.classification) == ("valid", "valid")
    assert first.fingerprint != third.fingerprint  # Heap keeps them apart: both are sent
    assert third.warning == (
        "looks the same as row 1 but is written with other Unicode characters "
        "(equal after NFC normalisation)"
    )
    assert first.warning == (
        "looks the same as row 3 but is written with other Unicode characters "
        "(equal after NFC normalisation)"
    )


def test_twins_in_case_and_composition_are_flagged_too():
    upload = read("identity\nJOS\u00c9@x.org\njose\u0301@x.org\nada@x.org\nADA@x.org\n")
    assert upload.rows[1].warning == (
        "differs only in letter case and Unicode composition from row 1"
    )
    assert upload.rows[3].warning == "differs only in letter case from row 3"


def test_the_approval_page_names_the_hidden_character(app, client, auth, login_as, env_id):
    login_as("officer")
    data = {
        "environment_id": str(env_id),
        "pasted": "alice@example.org\nalice\u200b@example.org\n\u202egro.elpmaxe@bob\n",
        "paste_kind": "identity",
    }
    response = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 302
    auth.logout()
    login_as("officer")  # another officer: the one who would approve
    page = html.unescape(client.get(response.location).get_data(as_text=True))
    assert "U+200B ZERO WIDTH SPACE at position 6" in page
    assert "U+202E RIGHT-TO-LEFT OVERRIDE at position 1" in page
    with app.app_context(), session_scope(write=False) as session:
        kinds = session.exec(select(Subject.classification).order_by(Subject.row_number)).all()
    assert kinds == ["valid", "malformed", "malformed"]
    # The values as uploaded show the hidden characters: no look-alike, no reordered text.
    raw = client.get(response.location).get_data(as_text=True)
    assert "\u200b" not in raw and "\u202e" not in raw
    assert (
        'alice<mark class="hidden-char" title="ZERO WIDTH SPACE">U+200B</mark>@example.org' in raw
    )
    assert '<mark class="hidden-char" title="RIGHT-TO-LEFT OVERRIDE">U+202E</mark>gro.' in raw


@pytest.mark.parametrize(
    ("family", "data", "message"),
    [
        (
            "identify",
            {"user_id": "7", "identity": "alice\u200b@example.org"},
            "The identity contains an invisible character U+200B ZERO WIDTH SPACE at position 6.",
        ),
        (
            "user-properties",
            {"identity": "\u202eann@x.org", "properties": {"plan": "pro"}},
            "The identity contains an invisible character U+202E RIGHT-TO-LEFT OVERRIDE at "
            "position 1.",
        ),
        (
            "link-account",
            {"identity": "ann@x.org", "account_id": "acme\u2060"},
            "The account_id contains an invisible character U+2060 WORD JOINER at position 5.",
        ),
        (
            "events",
            {"events": [{"event": "E", "identity": "a"}, {"event": "E", "identity": "b\u200c"}]},
            "Row 2: the identity contains an invisible character U+200C ZERO WIDTH NON-JOINER "
            "at position 2.",
        ),
    ],
)
def test_corrections_refuse_invisible_characters_in_identities(family, data, message):
    client = HeapClient(app_id="1", api_key="k")  # plan() only builds the calls: no network
    with pytest.raises(CorrectionInputError) as refused:
        plan(client, family, data, account_property="account_id")
    assert message in refused.value.problems
