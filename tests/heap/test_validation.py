"""Heap payload rules: what the desk refuses before anything leaves the machine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.heap import (
    HeapClient,
    HeapURLNotAllowed,
    HeapValidationError,
    Repeat,
    check_base_url,
    email_key_warnings,
    resolve_hosts,
)
from webapp.heap.validation import (
    MAX_USER_ID,
    normalise_user_id,
    validate_deletion_users,
    validate_identity,
    validate_properties,
    validate_timestamp,
    validate_unique_identity,
)

APP_ID = "3000610572"


@pytest.fixture(scope="module")
def offline_client() -> HeapClient:
    """A client used only to build calls (never sends)."""
    return HeapClient(app_id=APP_ID, api_key="k")


# ----- user_id ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1, 1),
        ("42", 42),
        (" 7 ", 7),
        ("007", 7),
        (MAX_USER_ID, MAX_USER_ID),
        (str(MAX_USER_ID), MAX_USER_ID),
    ],
)
def test_user_id_accepted_and_normalised(value, expected):
    assert normalise_user_id(value) == expected


@pytest.mark.parametrize(
    "value",
    [True, False, -1, "-1", 1.0, 2.5, MAX_USER_ID + 1, str(MAX_USER_ID + 1), "", " ", "abc",
     "1e3", "4.5", "１２", "²", None, [1], "9" * 5000],
)  # fmt: skip
def test_user_id_rejected(value):
    with pytest.raises(HeapValidationError) as info:
        normalise_user_id(value)
    assert info.value.field == "user_id"
    assert "user_id" in str(info.value)


@given(st.integers(min_value=0, max_value=MAX_USER_ID))
def test_any_safe_integer_user_id_is_accepted(value):
    assert normalise_user_id(value) == value
    assert normalise_user_id(str(value)) == value


@given(st.integers(max_value=-1) | st.integers(min_value=MAX_USER_ID + 1))
def test_any_integer_outside_the_safe_range_is_rejected(value):
    with pytest.raises(HeapValidationError):
        normalise_user_id(value)
    with pytest.raises(HeapValidationError):
        normalise_user_id(str(value))


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_never_user_ids(value):
    with pytest.raises(HeapValidationError):
        normalise_user_id(value)


# ----- identity -----------------------------------------------------------------------------
@given(st.text(min_size=1, max_size=255))
def test_any_text_of_1_to_255_characters_is_an_identity(value):
    assert validate_identity(value) == value


@given(st.text(min_size=256, max_size=600))
def test_identities_longer_than_255_are_rejected(value):
    with pytest.raises(HeapValidationError, match="longer than 255"):
        validate_identity(value)


@pytest.mark.parametrize("value", ["", None, 5, b"bytes", ["a"]])
def test_identity_must_be_non_empty_text(value):
    with pytest.raises(HeapValidationError) as info:
        validate_identity(value)
    assert info.value.field == "identity"


def test_error_names_the_row_and_field_without_quoting_the_value():
    users = [{"identity": "a@example.com"}, {"user_id": 5}, {"identity": "x" * 256}]
    with pytest.raises(HeapValidationError) as info:
        validate_deletion_users(users)
    assert str(info.value) == "row 3: identity is longer than 255 characters"
    assert (info.value.row, info.value.field) == (3, "identity")
    assert "xxx" not in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["null", "NULL", " Null ", "undefined", "user", "None", "nil", "anonymous", "Unknown",
     "0", "-1", '""', "''", " ", "\t\n", "[object Object]", "NaN"],
)  # fmt: skip
def test_identify_refuses_placeholder_identities(value, offline_client):
    with pytest.raises(HeapValidationError, match="merge unrelated users"):
        validate_unique_identity(value)
    with pytest.raises(HeapValidationError):
        offline_client.build_request("identify", user_id=1, identity=value)


@pytest.mark.parametrize("value", ["alice@example.com", "user-42", "nullable@x.org", "00"])
def test_identify_accepts_real_identities(value):
    assert validate_unique_identity(value) == value


# ----- properties ---------------------------------------------------------------------------
@given(
    st.tuples(
        st.sampled_from(["", " ", "\t"]),
        st.sampled_from("iI"),
        st.sampled_from("dD"),
        st.sampled_from(["", " "]),
    ).map("".join),
    st.one_of(st.text(max_size=20), st.integers()),
)
def test_key_id_in_any_casing_is_always_rejected(key, value):
    with pytest.raises(HeapValidationError, match="reserved"):
        validate_properties({"plan": "pro", key: value})


@pytest.mark.parametrize("key", ["id", "ID", "Id", "iD", " id "])
def test_key_id_rejected_in_every_operation(key, offline_client):
    props = {"plan": "pro", key: "1"}
    for operation, kwargs in [
        ("track", {"event": "e", "identity": "a", "properties": props}),
        ("add_user_properties", {"identity": "a", "properties": props}),
        ("add_account_properties", {"account_id": "acc", "properties": props}),
        ("bulk_add_user_properties", {"users": [{"identity": "a", "properties": props}]}),
    ]:
        with pytest.raises(HeapValidationError, match="reserved"):
            offline_client.build_request(operation, **kwargs)


@pytest.mark.parametrize(
    "value", [True, None, {"a": 1}, [1, 2], float("nan"), float("inf"), "x" * 1024]
)
def test_bad_property_values_rejected(value):
    with pytest.raises(HeapValidationError) as info:
        validate_properties({"plan": value})
    assert info.value.field == "properties.plan"


@pytest.mark.parametrize("value", ["", "pro", 3, -2.5, "x" * 1023, 10**1000 // 10**998])
def test_good_property_values_kept(value):
    assert validate_properties({"plan": value}) == {"plan": value}


def test_property_key_rules():
    assert validate_properties({"k" * 1023: 1})
    assert validate_properties({5: 1}) == {"5": 1}
    for bad in ({"k" * 1024: 1}, {"": 1}, {"  ": 1}, {None: 1}, {True: 1}):
        with pytest.raises(HeapValidationError):
            validate_properties(bad)
    with pytest.raises(HeapValidationError, match="at least one"):
        validate_properties({}, required=True)
    with pytest.raises(HeapValidationError, match="object"):
        validate_properties(["a"])


@pytest.mark.parametrize(
    ("properties", "warned"),
    [
        ({"email": "a@b.c"}, []),
        ({"Email": "a@b.c"}, ["Email"]),
        ({"EMAIL": "a@b.c", "eMail": "x", "plan": "pro"}, ["EMAIL", "eMail"]),
        ({" email": "a"}, [" email"]),
        ({"emails": "a"}, []),
        (None, []),
    ],
)
def test_email_key_warnings(properties, warned):
    warnings = email_key_warnings(properties)
    assert len(warnings) == len(warned)
    for key, text in zip(warned, warnings, strict=True):
        assert f"'{key}'" in text and "lower-case 'email'" in text


# ----- timestamps, events -------------------------------------------------------------------
def test_timestamps():
    aware = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert validate_timestamp(aware) == "2024-05-01T12:00:00+00:00"
    assert validate_timestamp("2024-05-01T12:00:00Z") == "2024-05-01T12:00:00Z"
    assert validate_timestamp(None) is None
    for bad in (datetime(2024, 5, 1), "yesterday", "2024-13-01", 1714564800):
        with pytest.raises(HeapValidationError):
            validate_timestamp(bad)


@pytest.mark.parametrize(
    ("event", "ok"), [("x", True), ("e" * 1024, True), ("", False), ("e" * 1025, False), (3, False)]
)
def test_event_length(event, ok, offline_client):
    build = lambda: offline_client.build_request("track", event=event, identity="a")  # noqa: E731
    if ok:
        assert build().json_body["event"] == event
    else:
        with pytest.raises(HeapValidationError, match="event"):
            build()


@pytest.mark.parametrize(
    "who", [{}, {"identity": "a", "user_id": 1}, {"identity": None, "user_id": None}]
)
def test_track_needs_exactly_one_of_identity_or_user_id(who, offline_client):
    with pytest.raises(HeapValidationError, match="exactly one"):
        offline_client.build_request("track", event="e", **who)


# ----- list limits --------------------------------------------------------------------------
def test_deletion_accepts_10000_users_and_refuses_10001():
    users = [{"identity": f"u{i}@example.com"} for i in range(10_000)]
    assert len(validate_deletion_users(users)) == 10_000
    with pytest.raises(HeapValidationError, match="at most 10000"):
        validate_deletion_users([*users, {"user_id": 1}])


@pytest.mark.parametrize(
    ("users", "message"),
    [
        ([], "at least one"),
        ([{"identity": "a"}, {"identity": "b", "user_id": 2}], "row 2: give exactly one"),
        ([{}], "row 1: give exactly one"),
        ([{"identity": "a", "email": "x"}], "row 1: unknown field 'email'"),
        (["a@example.com"], "row 1: each item must be an object"),
        ("a@example.com", "must be a list"),
        ([{"user_id": -4}], "row 1: user_id must not be negative"),
    ],
)
def test_deletion_user_rules(users, message):
    with pytest.raises(HeapValidationError, match=message):
        validate_deletion_users(users)


def test_deletion_user_ids_go_as_json_numbers(offline_client):
    call = offline_client.build_request(
        "delete_users", users=[{"user_id": "0042"}, {"identity": "a@b.c", "user_id": None}]
    )
    assert call.json_body == {"users": [{"user_id": 42}, {"identity": "a@b.c"}]}
    assert call.repeat is Repeat.NEVER
    assert call.method == "POST" and call.url.endswith("/api/public/v0/user_deletion")


@pytest.mark.parametrize(
    ("operation", "field", "item"),
    [
        ("bulk_track", "events", {"event": "e", "identity": "a"}),
        ("bulk_add_user_properties", "users", {"identity": "a", "properties": {"p": 1}}),
        ("bulk_add_account_properties", "accounts", {"account_id": "c", "properties": {"p": 1}}),
    ],
)
def test_bulk_accepts_1000_items_and_refuses_1001(operation, field, item, offline_client):
    call = offline_client.build_request(operation, **{field: [item] * 1000})
    assert len(call.json_body[field]) == 1000
    with pytest.raises(HeapValidationError, match="at most 1000"):
        offline_client.build_request(operation, **{field: [item] * 1001})


# ----- building calls -----------------------------------------------------------------------
def test_track_preview_is_exactly_the_body(offline_client):
    call = offline_client.build_request(
        "track",
        event="Correction",
        user_id=17,
        properties={"plan": "pro", "seats": 3},
        idempotency_key="k-1",
    )
    assert call.json_body == {
        "app_id": APP_ID,
        "event": "Correction",
        "user_id": "17",
        "properties": {"plan": "pro", "seats": 3},
        "idempotency_key": "k-1",
    }
    assert call.url == "https://heapanalytics.com/api/track"
    assert call.repeat is Repeat.ALWAYS
    assert '"user_id": "17"' in call.preview()


def test_unkeyed_events_may_only_be_repeated_when_unsent(offline_client):
    events = [{"event": "e", "identity": "a", "idempotency_key": "1"}, {"event": "e", "user_id": 1}]
    assert offline_client.build_request("bulk_track", events=events).repeat is Repeat.UNSENT
    assert offline_client.build_request("track", event="e", identity="a").repeat is Repeat.UNSENT
    events[1]["idempotency_key"] = "2"
    assert offline_client.build_request("bulk_track", events=events).repeat is Repeat.ALWAYS


def test_identify_and_account_bodies(offline_client):
    identify = offline_client.build_request("identify", user_id="9", identity="a@b.c")
    assert identify.json_body == {"app_id": APP_ID, "user_id": "9", "identity": "a@b.c"}
    assert identify.url.endswith("/api/v1/identify")
    account = offline_client.build_request(
        "add_account_properties", account_id=123, properties={"tier": "gold"}
    )
    assert account.json_body == {
        "app_id": APP_ID,
        "account_id": "123",
        "properties": {"tier": "gold"},
    }
    assert "accounts" not in account.json_body


def test_app_id_is_always_a_string():
    client = HeapClient(app_id=3000610572)
    assert client.build_request("track", event="e", identity="a").json_body["app_id"] == APP_ID
    for bad in ("", "abc", "12a", True, None, 1.5):
        with pytest.raises(HeapValidationError, match="app_id"):
            HeapClient(app_id=bad)


def test_unknown_operation_and_arguments(offline_client):
    with pytest.raises(HeapValidationError, match="unknown Heap operation"):
        offline_client.build_request("merge_users")
    with pytest.raises(TypeError):
        offline_client.build_request("delete_users", users=[{"user_id": 1}], force=True)
    with pytest.raises(HeapValidationError, match="deletion_request_id"):
        offline_client.build_request("deletion_status", deletion_request_id=" ")


def test_status_id_is_escaped_in_the_url(offline_client):
    call = offline_client.build_request("deletion_status", deletion_request_id="../a b?c")
    assert call.url == "https://heapanalytics.com/api/public/v0/deletion_status/..%2Fa%20b%3Fc"
    assert call.method == "GET" and call.json_body is None and call.preview() == ""


# ----- hosts --------------------------------------------------------------------------------
def test_regions():
    us, eu = resolve_hosts("us"), resolve_hosts("EU")
    assert (us.ingestion, us.deletion) == ("https://heapanalytics.com",) * 2
    assert (eu.ingestion, eu.deletion) == ("https://c.eu.heap-api.com", "https://heapanalytics.com")
    assert resolve_hosts("eu", "http://127.0.0.1:9/").ingestion == "http://127.0.0.1:9"
    with pytest.raises(HeapValidationError, match="region"):
        resolve_hosts("apac")


def test_eu_client_sends_ingestion_and_deletion_to_different_hosts():
    client = HeapClient(app_id=APP_ID, region="eu")
    assert client.build_request("identify", user_id=1, identity="a").url.startswith(
        "https://c.eu.heap-api.com/"
    )
    assert client.build_request("delete_users", users=[{"user_id": 1}]).url.startswith(
        "https://heapanalytics.com/"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8765",
        "http://127.8.9.10/",
        "http://localhost:8765/",
        "http://[::1]:8765",
        "https://heapanalytics.com",
        "https://c.eu.heap-api.com/",
        "https://heap-proxy.internal.example/base",
    ],
)
def test_allowed_base_urls(url):
    listed = ["heap-proxy.internal.example", "127.0.0.1:8765", "127.8.9.10", "localhost", "::1"]
    assert check_base_url(url, listed) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8765", "http://localhost:8765/", "http://[::1]:8765", "http://10.1.1.1"],
)
def test_loopback_and_private_base_urls_need_listing(url):
    with pytest.raises(HeapURLNotAllowed, match="DESK_HEAP_URL_ALLOWLIST"):
        check_base_url(url, ["heap-proxy.internal.example"])


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://evil.example.com", "not Heap's"),
        ("https://heapanalytics.com.evil.example", "not Heap's"),
        ("http://heapanalytics.com", "https"),
        ("ftp://127.0.0.1", "http"),
        ("http://user:pw@127.0.0.1", "user name"),
        ("http://127.0.0.1@evil.example.com", "user name"),
        ("http://127.0.0.1:8765/?x=1", "query"),
        ("http://127.0.0.1 .evil.example", "spaces"),
        ("http://127.0.0.1\\@evil.example", "spaces"),
        ("http://127.0.0.1:99999", "port"),
        ("", "empty"),
        ("https://", "no host"),
    ],
)
def test_refused_base_urls(url, reason):
    with pytest.raises(HeapURLNotAllowed, match=reason):
        check_base_url(url, ["heap-proxy.internal.example", "127.0.0.1"])


def test_client_refuses_a_base_url_outside_the_allowlist():
    with pytest.raises(HeapURLNotAllowed):
        HeapClient(app_id=APP_ID, base_url="https://collector.example.org")
    client = HeapClient(
        app_id=APP_ID,
        base_url="https://collector.example.org/",
        allowlist=["collector.example.org"],
    )
    assert client.hosts.deletion == "https://collector.example.org"
