"""Reading bulk correction files (CSV and JSON) and cutting them into Heap-sized requests."""

from __future__ import annotations

import pytest

from webapp.corrections.bulk import MAX_ROWS, BulkInputError, chunks, decode, parse


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_csv_columns_become_properties(delimiter):
    text = delimiter.join(["identity", "plan", "seats"]) + "\r\n"
    text += delimiter.join(["ann@example.org", "pro", "3"]) + "\r\n"
    text += delimiter.join(["bob@example.org", "", "5"]) + "\r\n"
    bulk = parse("users", text)
    assert bulk.format == "csv"
    assert bulk.items == [
        {"identity": "ann@example.org", "properties": {"plan": "pro", "seats": "3"}},
        {"identity": "bob@example.org", "properties": {"seats": "5"}},  # empty cells left out
    ]


def test_a_one_column_file_is_read(tmp_path):
    assert parse("users", "identity\nann\n").items == [{"identity": "ann", "properties": {}}]


def test_bom_is_dropped_and_cells_are_trimmed():
    text = decode("\ufeffaccount_id,tier\n acme , gold \n".encode())
    assert parse("accounts", text).items == [{"account_id": "acme", "properties": {"tier": "gold"}}]


def test_blank_lines_are_not_rows():
    assert len(parse("users", "identity,a\nx,1\n\n,\ny,2\n").items) == 2


def test_event_columns_and_properties():
    text = "event,identity,user_id,timestamp,idempotency_key,amount\n"
    text += "Refund,ann,,2025-01-31T10:00:00Z,k1,12\nVisit,,77,,,\n"
    assert parse("events", text).items == [
        {
            "event": "Refund",
            "identity": "ann",
            "timestamp": "2025-01-31T10:00:00Z",
            "idempotency_key": "k1",
            "properties": {"amount": "12"},
        },
        {"event": "Visit", "user_id": "77"},
    ]


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("users", "email,plan\na,b\n", "needs a column named “identity”"),
        ("accounts", "identity,plan\na,b\n", "needs a column named “account_id”"),
        ("events", "identity,plan\na,b\n", "needs a column named “event”"),
        ("events", "event,plan\na,b\n", "“identity” or “user_id”"),
        ("users", "identity,ID\na,b\n", "Column “ID” cannot be sent"),
        ("users", "identity,Id\na,b\n", "reserves the property name “id”"),
        ("users", "identity,plan,plan\na,b,c\n", "names column “plan” twice"),
        ("users", "identity,,plan\na,b,c\n", "Column 2 of the header has no name"),
        ("users", "identity,plan\na,b,c\n", "Row 1 has 3 cells but the header has 2"),
        ("users", "identity,plan\n", "header but no rows"),
        ("users", "   \n", "The file is empty"),
        ("users", '[{"identity": "a"}, 3]', "Row 2: each item of the JSON list must be an object"),
        ("users", '{"accounts": []}', "a list of objects, or an object with a “users” list"),
        ("users", '[{"identity": "a",]', "The JSON cannot be read"),
    ],
)
def test_bad_files_are_refused_plainly(kind, text, message):
    with pytest.raises(BulkInputError, match=message):
        parse(kind, text)


@pytest.mark.parametrize(
    ("raw", "message"),
    [(b"identity\n\xff\xfe\n", "not UTF-8"), (b"identity\na\x00b\n", "NUL bytes")],
)
def test_undecodable_files_are_refused(raw, message):
    with pytest.raises(BulkInputError, match=message):
        decode(raw)


def test_json_list_or_heap_body():
    items = [{"account_id": "a", "properties": {"n": 1}}]
    assert parse("accounts", '[{"account_id": "a", "properties": {"n": 1}}]').items == items
    assert (
        parse("accounts", '{"accounts": [{"account_id": "a", "properties": {"n": 1}}]}').items
        == items
    )


def test_format_can_be_forced():
    with pytest.raises(BulkInputError, match="JSON cannot be read"):
        parse("users", "identity\nann\n", fmt="json")


def test_too_many_rows_are_refused():
    text = "identity\n" + "a\n" * (MAX_ROWS + 1)
    with pytest.raises(BulkInputError, match="at most 50,000"):
        parse("users", text)


def test_2500_rows_make_three_chunks():
    rows = list(range(2500))
    pieces = list(chunks(rows))
    assert [(start, len(piece)) for start, piece in pieces] == [
        (0, 1000),
        (1000, 1000),
        (2000, 500),
    ]
    assert [x for _, piece in pieces for x in piece] == rows


def test_chunks_of_exactly_the_limit():
    assert [len(p) for _, p in chunks(list(range(2000)))] == [1000, 1000]
    assert list(chunks([])) == []
