"""Property rows with typed values (text, number, true/false), and the environment picker when
only one environment offers the operation: the first preview never bounces."""

from __future__ import annotations

import re

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import make_env, sandbox_data
from test_corrections_views import corrections_count, hidden_fields, preview, send_from

from webapp.views.corrections_forms import typed_value


@pytest.fixture
def officer(login_as, heap_env):
    return login_as("officer")


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        ("text", "30", "30"),
        ("text", "  enterprise ", "enterprise"),
        ("number", "30", 30),
        ("number", "-7", -7),
        ("number", "30.0", 30),
        ("number", "12.5", 12.5),
        ("number", "+0.25", 0.25),
        ("number", "1e3", 1000),
        ("number", "9007199254740991", 9007199254740991),
        ("boolean", "true", "true"),
        ("boolean", "FALSE", "false"),
        ("boolean", " True ", "true"),
    ],
)
def test_typed_values(kind, text, value):
    converted = typed_value(kind, text)
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("number", "abc", "“abc” is not a number"),
        ("number", "12,5", "e.g. 30 or 12.5"),
        ("number", "NaN", "NaN and infinity"),
        ("number", "-inf", "NaN and infinity"),
        ("number", "Infinity", "NaN and infinity"),
        ("number", "1_000", "is not a number"),
        ("number", "0x1f", "is not a number"),
        ("number", "9007199254740992", "beyond ±2^53-1"),
        ("number", "1e999999999", "beyond ±2^53-1"),
        ("number", "1.5e400", "beyond ±2^53-1"),
        ("number", "1e-400", "too small"),
        ("boolean", "yes", "true or false"),
        ("boolean", "1", "true or false"),
        ("date", "x", "Choose text, number or true/false"),
    ],
)
def test_typed_values_refused(kind, text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        typed_value(kind, text)


def _rows(*rows: tuple[str, str, str], prefix: str = "properties") -> dict:
    data = {}
    for index, (key, kind, value) in enumerate(rows):
        data |= {
            f"{prefix}-{index}-key": key,
            f"{prefix}-{index}-kind": kind,
            f"{prefix}-{index}-value": value,
        }
    return data


def test_the_preview_shows_typed_values_exactly_as_sent(client, auth, sandbox, officer, heap_env):
    data = {
        "environment_id": heap_env,
        "identity": "ann@example.org",
        **_rows(("seats", "number", "40"), ("ratio", "number", "0.5"),
                ("trial", "boolean", "True"), ("plan", "text", "30")),
    }  # fmt: skip
    shown = preview(auth, "/corrections/user-properties", data)
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert "&#34;seats&#34;: 40," in page and "&#34;ratio&#34;: 0.5," in page
    assert "&#34;trial&#34;: &#34;true&#34;" in page and "&#34;plan&#34;: &#34;30&#34;" in page
    # The types travel with the preview, so "Send" sends what was shown.
    assert ("properties-0-kind", "number") in hidden_fields(page)
    send_from(client, page, "/corrections/user-properties")
    user = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}["ann@example.org"]
    assert user["properties"] == {"seats": 40, "ratio": 0.5, "trial": "true", "plan": "30"}
    assert type(user["properties"]["seats"]) is int


def test_track_event_and_user_properties_are_typed(client, auth, sandbox, officer, heap_env):
    data = {
        "environment_id": heap_env,
        "event": "Refund issued",
        "identity": "ann@example.org",
        **_rows(("amount", "number", "30")),
        **_rows(("vip", "boolean", "false"), prefix="user_properties"),
    }
    page = preview(auth, "/corrections/track", data).get_data(as_text=True)
    assert "&#34;amount&#34;: 30" in page
    send_from(client, page, "/corrections/track")
    user = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}["ann@example.org"]
    assert user["events"][0]["properties"] == {"amount": 30}
    assert user["properties"] == {"vip": "false"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("amount", "number", "thirty"), "Row 2 (“amount”): “thirty” is not a number"),
        (("amount", "number", "nan"), "Row 2 (“amount”): “nan” is not a number Heap can keep"),
        (("active", "boolean", "maybe"), "Row 2 (“active”): true/false takes true or false"),
        (("amount", "money", "3"), "Row 2 (type): Not a valid choice."),
    ],
)
def test_a_value_that_does_not_fit_its_type_is_refused_naming_the_row(
    app, auth, sandbox, officer, heap_env, row, message
):
    data = {"environment_id": heap_env, "identity": "ann", **_rows(("plan", "text", "pro"), row)}
    shown = preview(auth, "/corrections/user-properties", data)
    assert shown.status_code == 422
    assert message in shown.get_data(as_text=True)
    assert corrections_count(app) == 0 and sandbox.state.request_paths() == []


def test_rows_without_a_type_are_text(client, auth, sandbox, officer, heap_env):
    data = {"environment_id": heap_env, "account_id": "acme", "properties-0-key": "tier",
            "properties-0-value": "10"}  # fmt: skip
    page = preview(auth, "/corrections/account-properties", data).get_data(as_text=True)
    assert "&#34;tier&#34;: &#34;10&#34;" in page


def test_each_row_offers_the_three_types_and_says_how_booleans_are_sent(client, officer):
    page = client.get("/corrections/user-properties").get_data(as_text=True)
    assert 'name="properties-0-kind"' in page and 'name="properties-4-kind"' in page
    assert '<option value="number">Number</option>' in page
    assert '<option value="boolean">True/false</option>' in page
    # Heap keeps text and numbers only (heap-api.md): the help text says so.
    assert "sent as the text “true” or “false”" in page
    # The row the browser clones, and the buttons only script shows.
    assert 'name="properties-__index__-key"' in page
    assert "data-add-row" in page and "data-remove-row" in page


# ----- the environment picker ---------------------------------------------------------------
SINGLE = {
    "identify": {"user_id": "314", "identity": "ann@example.org"},
    "user-properties": {"identity": "ann@example.org", **_rows(("plan", "text", "pro"))},
    "account-properties": {"account_id": "acme", **_rows(("tier", "text", "gold"))},
    "link-account": {"identity": "ann@example.org", "account_id": "acme"},
    "track": {"event": "Refund issued", "identity": "ann@example.org"},
}
BULK = {
    "user-properties/bulk": "identity,plan\nann@example.org,pro\n",
    "account-properties/bulk": "account_id,tier\nacme,gold\n",
    "track/bulk": "event,identity\nRefund issued,ann@example.org\n",
}
SELECTED = re.compile(r'<option selected value="(\d+)">|<option value="(\d+)" selected>')


def _selected(page: str) -> str | None:
    match = SELECTED.search(page)
    return next(filter(None, match.groups())) if match else None


@pytest.mark.parametrize("form", [*SINGLE, *BULK])
def test_the_only_environment_is_chosen_and_the_first_preview_succeeds(
    client, auth, officer, heap_env, form
):
    page = client.get(f"/corrections/{form}").get_data(as_text=True)
    chosen = _selected(page)
    assert chosen == str(heap_env), "the only environment must be preselected"
    # What the browser posts: the chosen option and the officer's fields.
    fields = SINGLE.get(form) or {"content": BULK[form]}
    shown = preview(auth, f"/corrections/{form}", {"environment_id": chosen, **fields})
    assert shown.status_code == 200, shown.get_data(as_text=True)
    assert 'data-testid="preview"' in shown.get_data(as_text=True)


def test_a_form_opened_before_the_environment_existed_still_previews(
    app, client, auth, sandbox, login_as, paced
):
    # The page had no picker (no environment yet); an admin registers one meanwhile.
    login_as("officer")
    assert 'name="environment_id"' not in client.get("/corrections/identify").get_data(as_text=True)
    make_env(app, sandbox)
    shown = preview(auth, "/corrections/identify", SINGLE["identify"])
    assert shown.status_code == 200, shown.get_data(as_text=True)


def test_with_two_environments_the_officer_chooses(app, client, auth, sandbox, officer, heap_env):
    make_env(app, sandbox, name="Staging")
    assert _selected(client.get("/corrections/identify").get_data(as_text=True)) is None
    shown = preview(auth, "/corrections/identify", SINGLE["identify"])
    assert shown.status_code == 422
    assert "Choose a Heap environment." in shown.get_data(as_text=True)
