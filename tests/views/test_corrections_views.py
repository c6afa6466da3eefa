"""Corrections pages: the two-step forms (Preview, then Send), history, detail and retry."""

from __future__ import annotations

import html
import io
import re

import pytest
import sqlalchemy as sa
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import deleted_subject, sandbox_data
from sqlmodel import select

from webapp.db import session_scope
from webapp.models import Correction

FORMS = [
    "identify",
    "user-properties",
    "user-properties/bulk",
    "account-properties",
    "account-properties/bulk",
    "link-account",
    "track",
    "track/bulk",
]
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str) -> list[tuple[str, str]]:
    """The fields a browser would post back from the preview page."""
    return [(name, html.unescape(value)) for name, value in HIDDEN.findall(page)]


def corrections_count(app) -> int:
    with app.app_context(), session_scope(write=False) as session:
        return session.exec(select(sa.func.count()).select_from(Correction)).one()


def users(sandbox) -> dict:
    return {user["identity"]: user for user in sandbox_data(sandbox).get("users", [])}


def preview(auth, path: str, data: dict, **kwargs):
    return auth.post(path, {**data, "step": "preview"}, **kwargs)


def send_from(client, page: str, path: str, extra: dict | None = None):
    """Press "Send to Heap" on a preview page (its hidden fields plus `extra`)."""
    fields = hidden_fields(page) + list((extra or {}).items()) + [("step", "send")]
    data = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    return client.post(path, data=data)


@pytest.fixture
def officer(login_as, heap_env):
    return login_as("officer")


@pytest.mark.parametrize("form", FORMS)
def test_every_form_page_opens_for_officers(client, officer, form):
    page = client.get(f"/corrections/{form}")
    assert page.status_code == 200
    assert 'name="environment_id"' in page.get_data(as_text=True)


@pytest.mark.parametrize("form", FORMS)
def test_auditors_cannot_open_the_forms(client, login_as, form):
    login_as("auditor")
    assert client.get(f"/corrections/{form}").status_code == 403


def test_identify_preview_then_send(app, client, auth, sandbox, officer, heap_env):
    data = {"environment_id": heap_env, "user_id": "314", "identity": "ann@example.org"}
    shown = preview(auth, "/corrections/identify", data)
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    assert f"{sandbox.url}/api/v1/identify" in page
    assert "&#34;identity&#34;: &#34;ann@example.org&#34;" in page
    assert corrections_count(app) == 0 and sandbox.state.request_paths() == []
    sent = send_from(client, page, "/corrections/identify")
    assert sent.status_code == 302 and "/corrections/" in sent.location
    assert users(sandbox)["ann@example.org"]["user_ids"] == ["314"]
    detail = client.get(sent.location).get_data(as_text=True)
    assert "Heap accepted the call" in detail and "ann@example.org" in detail
    history = client.get("/corrections").get_data(as_text=True)
    assert "Identify user" in history and officer in history


def test_invalid_input_shows_the_message_and_stores_nothing(app, auth, sandbox, officer, heap_env):
    data = {"environment_id": heap_env, "user_id": "12x", "identity": "null"}
    shown = preview(auth, "/corrections/identify", data)
    page = shown.get_data(as_text=True)
    assert shown.status_code == 422
    assert "digits only" in page and "merge unrelated users irreversibly" in page
    assert corrections_count(app) == 0 and sandbox.state.request_paths() == []


def test_no_environment_chosen(auth, officer):
    # The officer picked "Choose…" (value 0) although one environment was preselected.
    data = {"environment_id": "0", "user_id": "1", "identity": "a"}
    shown = preview(auth, "/corrections/identify", data)
    assert shown.status_code == 422
    assert "Choose a Heap environment." in shown.get_data(as_text=True)


def test_property_rows_more_rows_and_email_warning(client, auth, sandbox, officer, heap_env):
    data = {
        "environment_id": heap_env,
        "identity": "ann@example.org",
        "properties-0-key": "Email",
        "properties-0-value": "ann@example.org",
        "properties-1-key": "plan",
        "properties-1-value": "pro",
    }
    more = auth.post("/corrections/user-properties", {**data, "step": "more:properties"})
    page = more.get_data(as_text=True)
    assert 'name="properties-9-key"' in page and 'value="plan"' in page
    shown = preview(auth, "/corrections/user-properties", data).get_data(as_text=True)
    assert "use lower-case &#39;email&#39;" in shown
    send_from(client, shown, "/corrections/user-properties")
    assert users(sandbox)["ann@example.org"]["properties"] == {
        "Email": "ann@example.org",
        "plan": "pro",
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ({"properties-0-value": "x"}, "Row 1 has a value but no property name."),
        ({"properties-0-key": "plan"}, "Property “plan” has no value."),
        ({"properties-0-key": "ID", "properties-0-value": "7"}, "reserves the name “id”"),
        (
            {"properties-0-key": "a", "properties-0-value": "1", "properties-1-key": "a",
             "properties-1-value": "2"},
            "Property “a” is listed twice.",
        ),
    ],
)  # fmt: skip
def test_property_rows_are_checked(app, auth, officer, heap_env, rows, message):
    data = {"environment_id": heap_env, "identity": "ann", **rows}
    shown = preview(auth, "/corrections/user-properties", data)
    assert shown.status_code == 422
    assert message in shown.get_data(as_text=True)
    assert corrections_count(app) == 0


def test_guard_asks_for_an_override_reason(app, client, auth, sandbox, officer, heap_env):
    deleted_subject(app, heap_env, "identity", "gone@example.org")
    data = {"environment_id": heap_env, "identity": "gone@example.org", "account_id": "acme"}
    page = preview(auth, "/corrections/link-account", data).get_data(as_text=True)
    assert "Re-ingestion guard" in page and 'name="override_reason"' in page
    refused = send_from(client, page, "/corrections/link-account")
    assert refused.status_code == 422
    assert "deleted or is deleting" in refused.get_data(as_text=True)
    assert corrections_count(app) == 0 and sandbox.state.request_paths() == []
    sent = send_from(client, page, "/corrections/link-account", {"override_reason": "DPO ok"})
    assert sent.status_code == 302
    assert users(sandbox)["gone@example.org"]["properties"] == {"account_id": "acme"}
    detail = client.get(sent.location).get_data(as_text=True)
    assert "overridden" in detail and "DPO ok" in detail


def test_identify_warning_needs_the_send_anyway_box(app, client, auth, sandbox, officer, heap_env):
    first = {"environment_id": heap_env, "user_id": "9", "identity": "first"}
    send_from(client, preview(auth, "/corrections/identify", first).get_data(as_text=True),
              "/corrections/identify")  # fmt: skip
    second = {**first, "identity": "second"}
    page = preview(auth, "/corrections/identify", second).get_data(as_text=True)
    assert "one identity per user_id" in page and 'name="confirm_warnings"' in page
    refused = send_from(client, page, "/corrections/identify")
    assert refused.status_code == 422 and "Confirm these warnings" in refused.get_data(as_text=True)
    sent = send_from(client, page, "/corrections/identify", {"confirm_warnings": "y"})
    assert sent.status_code == 302
    assert corrections_count(app) == 2


def test_track_sends_the_idempotency_key_shown_in_the_preview(
    client, auth, sandbox, officer, heap_env
):
    data = {
        "environment_id": heap_env,
        "event": "Refund issued",
        "identity": "ann@example.org",
        "properties-0-key": "amount",
        "properties-0-value": "30",
        "user_properties-0-key": "plan",
        "user_properties-0-value": "pro",
    }
    page = preview(auth, "/corrections/track", data).get_data(as_text=True)
    key = dict(hidden_fields(page))["idempotency_key"]
    assert f"&#34;idempotency_key&#34;: &#34;{key}&#34;" in page
    assert page.count('data-testid="call-url"') == 2
    send_from(client, page, "/corrections/track")
    user = users(sandbox)["ann@example.org"]
    assert user["events"][0]["idempotency_key"] == key
    assert user["properties"] == {"plan": "pro"}


def test_bulk_upload_of_2500_rows(client, auth, sandbox, officer, heap_env):
    csv_text = "identity;plan\n" + "".join(f"user{n}@example.org;pro\n" for n in range(2500))
    upload = {
        "environment_id": heap_env,
        "format": "auto",
        "file": (io.BytesIO(csv_text.encode("utf-8-sig")), "fix.csv"),
    }
    shown = preview(auth, "/corrections/user-properties/bulk", upload,
                    content_type="multipart/form-data")  # fmt: skip
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and page.count('data-testid="call-url"') == 3
    assert "2,500" in page
    sent = send_from(client, page, "/corrections/user-properties/bulk")
    assert sent.status_code == 302
    sizes = [len(entry["body"]["users"]) for entry in sandbox.state.snapshot()["requests"]]
    assert sizes == [1000, 1000, 500]


def test_a_large_pasted_file_is_accepted(client, auth, sandbox, officer, heap_env):
    note = "n" * 400  # 2,000 rows of ~420 bytes: over Flask's 500 kB default per form field
    content = "identity,note\n" + "".join(f"u{n},{note}\n" for n in range(2000))
    data = {"environment_id": heap_env, "format": "csv", "content": content}
    shown = preview(auth, "/corrections/user-properties/bulk", data,
                    content_type="multipart/form-data")  # fmt: skip
    assert shown.status_code == 200
    page = shown.get_data(as_text=True)
    assert send_from(client, page, "/corrections/user-properties/bulk").status_code == 302
    assert len(sandbox_data(sandbox)["users"]) == 2000


def test_bulk_file_problems_are_listed(app, auth, officer, heap_env):
    upload = {
        "environment_id": heap_env,
        "format": "auto",
        "content": "event,identity\nSignup,\n,bob\n",
    }
    page = preview(auth, "/corrections/track/bulk", upload).get_data(as_text=True)
    assert "Row 1: give exactly one of identity or user_id" in page
    assert "Row 2: the event must be non-empty text." in page
    assert corrections_count(app) == 0


def test_auditor_sees_fingerprints_not_values(app, client, auth, login_as, make_user, heap_env):
    login_as("officer")
    data = {"environment_id": heap_env, "identity": "ann@example.org", "account_id": "acme"}
    page = preview(auth, "/corrections/link-account", data).get_data(as_text=True)
    location = send_from(client, page, "/corrections/link-account").location
    auth.logout()
    auth.login(make_user("auditor"))
    detail = client.get(location).get_data(as_text=True)
    assert "ann@example.org" not in detail and "acme" not in detail
    assert 'data-testid="fingerprints"' in detail
    assert "Link user to account" in client.get("/corrections").get_data(as_text=True)


def test_retry_from_the_detail_page(app, client, auth, sandbox, officer, heap_env, sandbox_as_heap):
    sandbox.add_faults({"kind": "400", "path": "/api/add_account_properties", "message": "Nope"})
    data = {"environment_id": heap_env, "account_id": "acme", "properties-0-key": "tier",
            "properties-0-value": "gold"}  # fmt: skip
    page = preview(auth, "/corrections/account-properties", data).get_data(as_text=True)
    location = send_from(client, page, "/corrections/account-properties").location
    detail = client.get(location).get_data(as_text=True)
    assert "did not accept" in detail and "Nope" in detail
    retried = auth.post(location + "/retry", form_page=location)
    assert retried.status_code == 302
    assert "Heap accepted the call" in client.get(location).get_data(as_text=True)
    assert sandbox_data(sandbox)["accounts"] == [
        {"account_id": "acme", "properties": {"tier": "gold"}}
    ]


def test_history_filter_and_empty_states(client, auth, sandbox, officer, heap_env):
    assert "No correction yet" in client.get("/corrections").get_data(as_text=True)
    data = {"environment_id": heap_env, "user_id": "1", "identity": "ann"}
    send_from(client, preview(auth, "/corrections/identify", data).get_data(as_text=True),
              "/corrections/identify")  # fmt: skip
    assert "Identify user" in client.get("/corrections?operation=identify").get_data(as_text=True)
    filtered = client.get("/corrections?operation=track").get_data(as_text=True)
    assert "No correction matches these filters" in filtered


def test_link_account_without_property_explains(app, auth, sandbox, officer):
    from corrections_helpers import make_env

    env_id = make_env(app, sandbox, name="Plain", account_property=None)
    data = {"environment_id": env_id, "identity": "ann", "account_id": "acme"}
    page = preview(auth, "/corrections/link-account", data).get_data(as_text=True)
    assert "no Account ID property configured" in page
