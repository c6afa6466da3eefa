"""The tool policy page (admins), and how a policy shapes the correction forms and the upload."""

from __future__ import annotations

import html
import io
import re

import pytest
import sqlalchemy as sa
from corrections_helpers import make_env, paced  # noqa: F401
from sqlmodel import select

from webapp import environments, tool_policy
from webapp.db import session_scope
from webapp.models import AuditEntry, Batch, Correction, Environment

DEFAULT_FORM = {
    "four_eyes": "off",
    "four_eyes_above": "",
    "max_items": "50000",
    "forbidden_keys": "",
    **{f"op_{op}": "y" for op in tool_policy.OPERATIONS},
}


def stored(app, env_id: int) -> tool_policy.Policy:
    with app.app_context(), session_scope(write=False) as session:
        return tool_policy.policy_of(session, session.get(Environment, env_id))


def set_policy(app, env_id: int, changes: dict) -> None:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, env_id)
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)


def count(app, model, *where) -> int:
    with app.app_context(), session_scope(write=False) as session:
        query = select(sa.func.count()).select_from(model)
        return session.exec(query.where(*where) if where else query).one()


def policy_changes(app) -> int:
    return count(app, AuditEntry, AuditEntry.action == tool_policy.CHANGED_ACTION)


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def env(app, sandbox, paced) -> int:  # noqa: F811 - paced: the sandbox's clock
    return make_env(app, sandbox, name="Staging")


@pytest.fixture
def admin(login_as) -> str:
    return login_as("admin")


# ----- the policy page -----------------------------------------------------------------
def test_the_page_shows_the_policy_with_labelled_switches(client, admin, env):
    page = client.get(f"/environments/{env}/policy")
    assert page.status_code == 200
    body = text(page)
    for op, label in tool_policy.LABELS.items():
        assert re.search(rf'<input checked id="op_{op}" name="op_{op}" type="checkbox"', body)
        assert label in body
    assert "* stands for any characters, ? for one" in body
    assert "no admin has changed it" in body
    assert tool_policy.DEFAULT_DESCRIPTIONS["track"] in body  # as the placeholder


def test_environments_page_links_each_policy_and_names_what_is_off(app, client, admin, env):
    set_policy(app, env, {"operations": {"track": False}})
    body = text(client.get("/environments"))
    assert f'href="/environments/{env}/policy"' in body
    assert re.search(r'data-testid="policy-off">.*Track events', body)


@pytest.mark.parametrize("role", ["officer", "auditor"])
def test_only_admins_open_or_post_the_page(app, client, auth, login_as, env, role):
    login_as(role)
    assert client.get(f"/environments/{env}/policy").status_code == 403
    response = auth.post(f"/environments/{env}/policy", DEFAULT_FORM, form_page="/dashboard")
    assert response.status_code == 403
    assert policy_changes(app) == 0


def test_an_unknown_environment_is_404(client, admin):
    assert client.get("/environments/999/policy").status_code == 404


def test_saving_stores_the_policy_audits_it_and_shows_it(app, client, auth, admin, env):
    form = {
        **DEFAULT_FORM,
        "op_track": "",
        "four_eyes": "above",
        "four_eyes_above": "50",
        "max_items": "2,000",
        "forbidden_keys": "email\r\nssn_*\r\n\r\n  *password*  \r\n",
        "text_identify": "Ask the data team first.\r\nThen identify.",
        "text_track": "",
    }
    del form["op_track"]  # an unticked box is not sent
    response = auth.post(f"/environments/{env}/policy", form, follow_redirects=True)
    assert response.status_code == 200
    body = text(response)
    assert "Tool policy of “Staging” saved." in body
    assert f"Last changed by <strong>{admin}</strong>" in body
    policy = stored(app, env)
    assert policy.operations["track"] is False and policy.operations["identify"] is True
    assert policy.corrections_four_eyes_above == 50 and policy.max_items == 2000
    assert policy.forbidden_property_keys == ["email", "ssn_*", "*password*"]
    assert policy.description("identify") == "Ask the data team first.\nThen identify."
    assert policy.description("track") == tool_policy.DEFAULT_DESCRIPTIONS["track"]
    assert policy_changes(app) == 1
    assert re.search(r'<input id="op_track" name="op_track" type="checkbox"', body)  # unticked


@pytest.mark.parametrize(
    ("mode", "above", "expected"), [("off", "", None), ("every", "", 0), ("above", "7", 7)]
)
def test_the_three_four_eyes_settings(app, auth, admin, env, mode, above, expected):
    set_policy(app, env, {"corrections_four_eyes_above": 3})
    form = {**DEFAULT_FORM, "four_eyes": mode, "four_eyes_above": above}
    assert auth.post(f"/environments/{env}/policy", form).status_code == 302
    assert stored(app, env).corrections_four_eyes_above == expected


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"max_items": "0"}, "must be a whole number from 1 to 50,000"),
        ({"max_items": "lots"}, "must be a whole number from 1 to 50,000"),
        ({"max_items": "99999999999999"}, "must be a whole number from 1 to 50,000"),
        ({"four_eyes": "above", "four_eyes_above": ""}, "number of items for four-eyes"),
        ({"four_eyes": "sometimes"}, "Not a valid choice"),
        ({"forbidden_keys": "a\tb"}, "contains a control character"),
        ({"forbidden_keys": "x" * 256}, "over 255 characters"),
        ({"text_track": "x" * 1001}, "over 1000 characters"),
        ({"text_track": "bell\x07"}, "contains a control character"),
    ],
)
def test_bad_input_shows_the_message_and_changes_nothing(app, auth, admin, env, changes, message):
    before = stored(app, env)
    # A good change beside the bad one is not stored either.
    form = {**DEFAULT_FORM, "op_deletion": "", "text_identify": "New", **changes}
    response = auth.post(f"/environments/{env}/policy", form)
    assert response.status_code == 400
    body = text(response)
    assert "Nothing was saved." in body and message in body
    assert stored(app, env) == before and policy_changes(app) == 0


def test_without_the_csrf_token_nothing_changes(app, client, admin, env):
    response = client.post(f"/environments/{env}/policy", data={**DEFAULT_FORM, "op_track": ""})
    assert response.status_code == 400
    assert stored(app, env).operations["track"] is True and policy_changes(app) == 0


def test_saving_an_unchanged_policy_writes_nothing(app, auth, admin, env):
    response = auth.post(f"/environments/{env}/policy", DEFAULT_FORM, follow_redirects=True)
    assert "Nothing changed" in text(response)
    assert policy_changes(app) == 0


# ----- the correction forms ---------------------------------------------------------------
@pytest.fixture
def officer(login_as) -> str:
    return login_as("officer")


def test_an_operation_no_environment_offers_is_not_listed_nor_served(
    app, client, auth, officer, env
):
    set_policy(app, env, {"operations": {"track": False}})
    body = text(client.get("/corrections"))
    assert 'href="/corrections/track"' not in body and "/corrections/track/bulk" not in body
    assert 'href="/corrections/identify"' in body
    for path in ("/corrections/track", "/corrections/track/bulk"):
        page = client.get(path)
        assert page.status_code == 403
        assert "Track events is switched off" in text(page)
        assert 'name="environment_id"' not in text(page)
    data = {"environment_id": env, "event": "E", "identity": "ann", "step": "preview"}
    assert auth.post("/corrections/track", data, form_page="/corrections").status_code == 403
    assert count(app, Correction) == 0


def test_an_environment_without_the_operation_is_listed_disabled_and_refused(
    app, client, auth, sandbox, officer, env
):
    other = make_env(app, sandbox, name="Production EU")
    set_policy(app, env, {"operations": {"identify": False}})
    page = text(client.get("/corrections/identify"))
    assert re.search(
        rf'<option disabled value="{env}">Staging \(identify switched off by its tool policy\)',
        page,
    )
    assert re.search(rf'<option selected value="{other}">Production EU</option>', page)
    # A stale form (or a forged one) is refused with the policy's words, as a form error.
    data = {"environment_id": env, "user_id": "12", "identity": "ann", "step": "preview"}
    for step in ("preview", "send"):
        response = auth.post("/corrections/identify", {**data, "step": step})
        assert response.status_code == 422
        body = text(response)
        assert 'data-testid="problems"' in body
        assert "The policy of environment “Staging” disables identify" in body
    assert count(app, Correction) == 0 and sandbox.state.request_paths() == []


def test_each_form_shows_the_chosen_environments_description(app, client, sandbox, officer, env):
    other = make_env(app, sandbox, name="Production EU")
    set_policy(app, env, {"descriptions": {"identify": "Staging: ask Sam first."}})
    default = tool_policy.DEFAULT_DESCRIPTIONS["identify"]

    def shown(path: str) -> str:
        body = text(client.get(path))
        found = re.search(r'data-testid="operation-description"[^>]*>([^<]*)</p>', body)
        assert found, body
        return found.group(1)

    assert shown("/corrections/identify") == default  # two offered, none chosen
    assert shown(f"/corrections/identify?environment_id={env}") == "Staging: ask Sam first."
    assert shown(f"/corrections/identify?environment_id={other}") == default
    assert shown("/corrections/identify?environment_id=99999") == default
    body = text(client.get("/corrections/identify"))
    assert "Staging: ask Sam first." in body  # in data-descriptions, for the script
    assert shown("/corrections/track/bulk") == tool_policy.DEFAULT_DESCRIPTIONS["track"]


def test_the_only_environment_is_chosen_and_its_description_shown(app, client, officer, env):
    set_policy(app, env, {"descriptions": {"user_properties": "Only plan and seats."}})
    body = text(client.get("/corrections/user-properties"))
    assert re.search(rf'<option selected value="{env}">Staging</option>', body)
    assert "Only plan and seats." in body
    body = text(client.get("/corrections/user-properties/bulk"))
    assert "Only plan and seats." in body


def test_no_environment_chosen_is_still_an_error_with_one_environment(auth, officer, env):
    # "Choose…" picked on purpose (a post without the picker takes the only environment).
    data = {"environment_id": "0", "user_id": "1", "identity": "a", "step": "preview"}
    shown = auth.post("/corrections/identify", data)
    assert shown.status_code == 422
    assert "Choose a Heap environment." in text(shown)


# ----- the upload page --------------------------------------------------------------------
@pytest.fixture
def main_envs(app) -> tuple[int, int]:
    ids = []
    for name in ("Main Production", "Main Production EU"):
        data = environments.EnvironmentInput(
            name=name, app_id="3000610572", main_production=True, api_key="k" * 24
        )
        with app.app_context(), session_scope(write=True) as session:
            ids.append(environments.create_environment(session, actor="t", data=data).id)
    return tuple(ids)


def test_upload_lists_an_environment_without_deletion_as_disabled(
    app, client, auth, officer, main_envs
):
    off, on = main_envs
    set_policy(app, off, {"operations": {"deletion": False}})
    body = text(client.get("/batches/new"))
    assert re.search(
        rf'<option disabled value="{off}">Main Production \(deletion switched off by its tool ',
        body,
    )
    assert re.search(rf'<option value="{on}">Main Production EU</option>', body)
    assert 'data-testid="deletion-off"' not in body
    data = {
        "environment_id": str(off),
        "file": (io.BytesIO(b"email\nann@example.org\n"), "list.csv"),
        "paste_kind": "identity",
    }
    response = auth.post("/batches/new", data, content_type="multipart/form-data")
    assert response.status_code == 400
    assert "The policy of environment “Main Production” disables deletion" in text(response)
    assert count(app, Batch) == 0


def test_upload_says_so_when_no_environment_offers_deletion(app, client, officer, main_envs):
    for env_id in main_envs:
        set_policy(app, env_id, {"operations": {"deletion": False}})
    body = text(client.get("/batches/new"))
    assert 'data-testid="deletion-off"' in body and "Deletion is switched off." in body
