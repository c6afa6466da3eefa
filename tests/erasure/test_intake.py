"""Reading uploads: delimiters, encodings, headers, and every row's classification."""

from __future__ import annotations

import hashlib
import re
from datetime import date

import pytest

from webapp.crypto import subject_fingerprint
from webapp.erasure import intake
from webapp.erasure import rows as intake_rows

KEY = "test-fingerprint-key-intake"
TODAY = date(2025, 3, 10)
DEFAULT = date(2025, 3, 1)


def read(text: str | bytes, **kw) -> intake.Upload:
    data = text.encode() if isinstance(text, str) else text
    options = {"fingerprint_key": KEY, "received_on": DEFAULT, "today": TODAY, "max_bytes": 5000}
    return intake.read_csv(data, **options | kw)


def paste(text: str, kind: str = "identity") -> intake.Upload:
    return intake.read_paste(
        text, kind=kind, fingerprint_key=KEY, received_on=DEFAULT, today=TODAY, max_bytes=5000
    )


def classes(upload: intake.Upload) -> list[str]:
    return [row.classification for row in upload.rows]


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("identity,received_on\na@x.org,2025-01-02\n", ","),
        ("identity;received_on\na@x.org;2025-01-02\n", ";"),
        ("identity\treceived_on\na@x.org\t2025-01-02\n", "\t"),
        ('"identity";"received_on"\n"a@x.org";"2025-01-02"\n', ";"),
        ("reference,identity,received_on\nT-1,a@x.org,2025-01-02\n", ","),
    ],
)
def test_delimiter_is_sniffed_among_comma_semicolon_tab(text, delimiter):
    upload = read(text)
    assert upload.delimiter == delimiter
    row = upload.rows[0]
    assert (row.value, row.received_on, row.classification) == (
        "a@x.org",
        date(2025, 1, 2),
        "valid",
    )


def test_one_column_file_keeps_delimiters_inside_values():
    # The Sniffer would pick ';' or ',' here (PITFALLS.md #14): the header line decides.
    upload = read("identity\nsmith;john\ndoe,jane\nx;y,z\n")
    assert [row.value for row in upload.rows] == ["smith;john", "doe,jane", "x;y,z"]
    assert classes(upload) == ["valid"] * 3


def test_bom_crlf_blank_lines_and_header_spelling_are_accepted():
    data = "\ufeff E-Mail \r\n\r\nada@example.com\r\n\r\nbob@example.com\r\n\r\n".encode()
    upload = read(data)
    assert [row.value for row in upload.rows] == ["ada@example.com", "bob@example.com"]
    assert [row.number for row in upload.rows] == [1, 2]
    assert upload.columns == ["identity"]
    assert upload.sha256 == hashlib.sha256(data).hexdigest()


def test_unknown_columns_are_ignored_and_reported():
    upload = read("USER_ID,Name\n42,Ada\n")
    assert upload.rows[0].value == "42"
    assert upload.ignored_columns == ["Name"]


@pytest.mark.parametrize(
    ("cell", "value", "problem"),
    [
        ("42", "42", None),
        ("0", "0", None),
        ("007", "7", None),
        (" 12 ", "12", None),
        (str(2**53 - 1), str(2**53 - 1), None),
        (str(2**53), None, "larger than 9007199254740991"),
        ("abc", None, "whole number written with digits only"),
        ("-5", None, "digits only"),
        ("1.5", None, "digits only"),
        ("1.23457E+15", None, "scientific notation"),
        ("١٢", None, "digits only"),  # Arabic-Indic digits are not Heap user ids
    ],
)
def test_user_id_rules(cell, value, problem):
    row = read(f"user_id\n{cell}\n").rows[0]
    assert row.value == value
    if problem:
        assert row.classification == "malformed" and problem in row.problem
        assert cell.strip() not in row.problem  # reasons never quote the value
    else:
        assert row.fingerprint == subject_fingerprint("user_id", value, key=KEY)


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("Ada@Example.com", None),
        ("x" * 255, None),
        ("x" * 256, "longer than 255 characters"),
        ("null", "placeholder"),
        ("undefined", "placeholder"),
        ("a\x07b", "control characters"),
    ],
)
def test_identity_rules(cell, problem):
    row = read(f"identity\n{cell}\n").rows[0]
    if problem:
        assert row.classification == "malformed" and problem in row.problem
    else:
        assert (row.classification, row.value) == ("valid", cell)  # case kept exactly


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("7,ada@x.org,,", "both user_id and identity are filled"),
        (",,,", None),  # a blank row is skipped, not a subject
        (",,2025-01-01,T-1", "no user_id or identity"),
        (",ada@x.org,2025-03-10," + "r" * 256, "reference is longer than 255"),
        (",ada@x.org,,,extra", "the row has 5 values but the header names 4 columns"),
    ],
)
def test_row_problems_are_explained(line, problem):
    upload = read(
        f"user_id,identity,received_on,reference\n{line}\nlast@x.org,,,\n".replace(
            "last@x.org,,,", ",last@x.org,,"
        )
    )
    if problem is None:
        assert len(upload.rows) == 1
        return
    row = upload.rows[0]
    assert (row.number, row.classification) == (1, "malformed")
    assert problem in row.problem
    assert row.received_on is not None  # every row still gets a date for its deadline


# Issue 15: one bad date used to make the person malformed, so they were not deleted at all.
# The request is still a request: the row is valid, takes the batch's date, and says why.
@pytest.mark.parametrize(
    ("cell", "warning"),
    [
        ("31/01/2025", "received_on “31/01/2025” is not a date in the form YYYY-MM-DD"),
        ("20250102", "received_on “20250102” is not a date in the form YYYY-MM-DD"),
        ("2025-02-30", "received_on “2025-02-30” is not a date in the form YYYY-MM-DD"),
        ("2025-03-11", "received_on 2025-03-11 is in the future"),
        # Anything but digits and separators may be a person's data: never quoted.
        ("ada@x.org", "received_on is not a date in the form YYYY-MM-DD"),
        ("next Tuesday", "received_on is not a date in the form YYYY-MM-DD"),
    ],
)
def test_a_bad_received_on_is_flagged_and_the_batch_date_used(cell, warning):
    upload = read(f"identity,received_on,reference\nada@x.org,{cell},T-1\n")
    (row,) = upload.rows
    assert (row.classification, row.problem) == ("valid", None)
    assert (row.received_on, row.reference) == (DEFAULT, "T-1")
    assert row.warning == f"{warning}; the batch's date 2025-03-01 is used"
    if "@" in cell or "Tuesday" in cell:
        assert cell not in row.warning
    assert upload.counts()["valid"] == 1


def test_a_date_warning_and_a_case_twin_are_both_kept():
    upload = read("identity,received_on\nada@x.org,01/02/2025\nAda@x.org,2025-01-01\n")
    first, second = upload.rows
    assert first.warning == (
        "received_on “01/02/2025” is not a date in the form YYYY-MM-DD; the batch's date "
        "2025-03-01 is used; differs only in letter case from row 2"
    )
    assert second.warning == "differs only in letter case from row 1"


def test_a_malformed_row_keeps_its_date_and_reference_for_a_correction():
    (row,) = read("identity,received_on,reference\nnull,2025-01-02,T-9\n").rows
    assert row.classification == "malformed"
    assert (row.received_on, row.reference) == (date(2025, 1, 2), "T-9")


def test_received_on_defaults_to_the_batch_and_reference_is_kept():
    upload = read("identity,received_on,reference\na@x.org,,T-1\nb@x.org,2025-01-31,\n")
    assert [(r.received_on, r.reference) for r in upload.rows] == [
        (DEFAULT, "T-1"),
        (date(2025, 1, 31), None),
    ]


def test_duplicates_in_the_file_point_at_the_first_row():
    upload = read("user_id,identity\n7,\n,ada@x.org\n007,\n,ada@x.org\n,ADA@x.org\n")
    assert classes(upload) == ["valid", "valid", "duplicate", "duplicate", "valid"]
    assert upload.rows[2].problem == "the same user_id as row 1"
    assert upload.rows[3].problem == "the same identity as row 2"
    # Heap identities are case-sensitive: both kept, both flagged for a human to check.
    assert upload.rows[4].warning == "differs only in letter case from row 2"
    assert upload.rows[1].warning == "differs only in letter case from row 5"
    assert upload.counts() == {
        "rows": 5,
        "valid": 3,
        "malformed": 0,
        "duplicate": 2,
        "already_requested": 0,
    }


def test_already_requested_marks_only_valid_rows():
    upload = read("identity\na@x.org\nb@x.org\nb@x.org\n")
    earlier = {subject_fingerprint("identity", "b@x.org", key=KEY): 12}
    intake_rows.mark_already_requested(upload.rows, earlier)
    assert classes(upload) == ["valid", "already_requested", "duplicate"]
    assert upload.rows[1].problem == "already requested in batch 12"


def test_exactly_ten_thousand_rows_are_accepted():
    text = "user_id\n" + "\n".join(str(i) for i in range(10_000))
    upload = read(text, max_bytes=10**6)
    assert len(upload.rows) == 10_000 and upload.counts()["valid"] == 10_000


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\xef\xbb\xbf \r\n\r\n", "The file is empty."),
        (b"identity\n", "header line but no subjects"),
        (b"name,phone\nAda,123\n", "must name the identifier column"),
        (b"identity,email\na,b\n", "names the identity column twice"),
        (b"PK\x03\x04\x14\x00rest", "spreadsheet workbook"),
        (b"identity\na\x00b\n", "NUL bytes"),
        ("identity\nada@x.org\n".encode("utf-16"), "NUL bytes"),
        ("identity\nJosé\n".encode("latin-1"), "not UTF-8 text (line 2, byte 13 cannot be read)"),
        (b"identity\n" + b"a" * 6000, "The file is 6 KB; the desk accepts at most 5 KB."),
        (
            b"identity\n" + b"a" * 4992,
            "The file is 5,001 bytes; the desk accepts at most 5,000 bytes",
        ),
        (b'identity\n"' + b"a" * 4000, "not valid CSV"),
    ],
)
def test_file_level_refusals(data, message):
    with pytest.raises(intake.UploadRefused, match=re.escape(message)):
        read(data)


def test_more_than_ten_thousand_rows_are_refused():
    text = "user_id\n" + "\n".join(str(i) for i in range(10_001))
    with pytest.raises(intake.UploadRefused, match="more than 10,000 subjects"):
        read(text, max_bytes=10**6)


def test_future_batch_date_is_refused():
    with pytest.raises(intake.UploadRefused, match="cannot be in the future"):
        read("identity\na\n", received_on=date(2025, 3, 11))


def test_paste_of_identities_keeps_commas_and_quotes():
    upload = paste('  ada@x.org  \n\n"quoted", odd\n12345\n')
    assert [r.value for r in upload.rows] == ["ada@x.org", '"quoted", odd', "12345"]
    assert {r.kind for r in upload.rows} == {"identity"}


def test_paste_of_user_ids_is_read_as_user_ids():
    upload = paste("12\n0012\nabc\n", kind="user_id")
    assert classes(upload) == ["valid", "duplicate", "malformed"]
    assert upload.rows[0].kind == "user_id"


def test_paste_with_a_header_line_is_read_as_csv():
    upload = paste("user_id;received_on\n5;2025-02-01\n", kind="identity")
    assert (upload.rows[0].kind, upload.rows[0].received_on) == ("user_id", date(2025, 2, 1))


def test_paste_hash_is_of_the_pasted_text():
    text = "ada@x.org\nbob@x.org"
    assert paste(text).sha256 == hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [("  \n ", "identity", "empty"), ("ada@x.org", "", "identities or user_ids")],
)
def test_paste_refusals(text, kind, message):
    with pytest.raises(intake.UploadRefused, match=message):
        paste(text, kind=kind)


@pytest.mark.parametrize(
    ("key", "kind", "value"),
    [
        (KEY, "identity", "Ada@x.org"),
        (KEY, "user_id", "42"),
        ("k" * 64, "identity", "ünïcödé ✓"),
        ("a much longer fingerprint key than one SHA-256 block of 64 bytes " * 2, "user_id", "0"),
        ("ключ", "identity", "x" * 255),
    ],
)
def test_the_fast_fingerprint_is_the_desks_fingerprint(key, kind, value):
    assert intake_rows.fingerprinter(key)(kind, value) == subject_fingerprint(kind, value, key=key)


def test_a_missing_header_is_refused_without_quoting_the_first_person():
    with pytest.raises(intake.UploadRefused) as refused:
        read("ada@example.com\nbob@example.com\n")
    assert "must name the identifier column" in str(refused.value)
    assert "ada@example.com" not in str(refused.value)
