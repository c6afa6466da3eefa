"""Four-eyes for corrections on the pages: request approval, approve, reject, lists."""

from __future__ import annotations

import html
import re

import pytest
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import sandbox_data

from webapp import tool_policy
from webapp.db import session_scope
from webapp.models import Environment

LIMIT = 1
HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
PASTE = "identity,plan\nann@example.org,gold\nbob@example.org,gold\n"


@pytest.fixture
def guarded_env(app, heap_env) -> int:
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, heap_env)
        changes = {"corrections_four_eyes_above": LIMIT}
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)
    return heap_env


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def request_approval(client, auth, env_id: int) -> int:
    """Preview a two-row bulk paste and press "Request approval"; the correction's id."""
    path = "/corrections/user-properties/bulk"
    data = {"environment_id": env_id, "format": "csv", "content": PASTE, "step": "preview"}
    shown = auth.post(path, data, content_type="multipart/form-data")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200
    fields = {}
    for name, value in HIDDEN.findall(page):
        fields.setdefault(name, []).append(html.unescape(value))
    sent = client.post(path, data={**fields, "step": "send"})
    assert sent.status_code == 302, sent.status_code
    return int(sent.headers["Location"].rsplit("/", 1)[1])


def test_the_preview_says_approval_is_needed_and_the_button_asks_for_it(
    client, auth, login_as, guarded_env
):
    login_as("officer")
    data = {"environment_id": guarded_env, "format": "csv", "content": PASTE, "step": "preview"}
    path = "/corrections/user-properties/bulk"
    page = text(auth.post(path, data, content_type="multipart/form-data"))
    assert (
        "This correction carries 2 items; the environment's policy asks a second officer to "
        "approve it. Sending records it for approval; nothing reaches Heap until then." in page
    )
    assert ">Request approval</button>" in page and "Send to Heap</button>" not in page


def test_below_the_limit_the_preview_sends_as_before(client, auth, login_as, guarded_env):
    login_as("officer")
    data = {"environment_id": guarded_env, "identity": "ann@example.org", "step": "preview"}
    data |= {"properties-0-key": "plan", "properties-0-value": "gold"}
    page = text(auth.post("/corrections/user-properties", data))
    assert "Send to Heap</button>" in page and "Request approval" not in page


def test_officer_a_requests_and_officer_b_approves_on_the_page(
    client, auth, login_as, sandbox, guarded_env
):
    author = login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    assert sandbox.state.request_paths() == []
    own = text(client.get(f"/corrections/{correction_id}"))
    assert "awaiting approval" in own.lower()
    assert "You are the author of this correction, so you cannot approve it" in own
    assert f'action="/corrections/{correction_id}/approve"' not in own
    assert '"identity": "bob@example.org"' in own  # the calls to approve are shown

    auth.logout()
    login_as("officer")
    detail = f"/corrections/{correction_id}"
    page = text(client.get(detail))
    assert f'action="/corrections/{correction_id}/approve"' in page
    assert f'action="/corrections/{correction_id}/reject"' in page
    done = auth.post(f"{detail}/approve", form_page=detail)
    assert done.status_code == 302
    after = text(client.get(detail))
    assert 'data-state="succeeded"' in after and author in after
    identities = {user["identity"] for user in sandbox_data(sandbox)["users"]}
    assert identities == {"ann@example.org", "bob@example.org"}


def test_reject_needs_a_reason_and_sends_nothing(client, auth, login_as, sandbox, guarded_env):
    login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    auth.logout()
    login_as("officer")
    detail = f"/corrections/{correction_id}"
    auth.post(f"{detail}/reject", {"reason": "  "}, form_page=detail)
    assert 'data-state="awaiting_approval"' in text(client.get(detail))
    auth.post(f"{detail}/reject", {"reason": "plan is wrong"}, form_page=detail)
    page = text(client.get(detail))
    assert 'data-state="rejected"' in page and "plan is wrong" in page
    assert sandbox.state.request_paths() == []


def test_the_author_can_withdraw(client, auth, login_as, sandbox, guarded_env):
    login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    detail = f"/corrections/{correction_id}"
    auth.post(f"{detail}/reject", {"reason": "wrong file"}, form_page=detail)
    page = text(client.get(detail))
    assert 'data-state="rejected"' in page and "Withdrawn" in page


def test_posts_without_csrf_change_nothing(client, auth, login_as, sandbox, guarded_env):
    login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    auth.logout()
    login_as("officer")
    assert client.post(f"/corrections/{correction_id}/approve").status_code == 400
    response = client.post(f"/corrections/{correction_id}/reject", data={"reason": "no"})
    assert response.status_code == 400
    assert sandbox.state.request_paths() == []
    assert 'data-state="awaiting_approval"' in text(client.get(f"/corrections/{correction_id}"))


def test_auditors_see_no_buttons_and_cannot_post(client, auth, login_as, guarded_env):
    login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    auth.logout()
    login_as("auditor")
    page = text(client.get(f"/corrections/{correction_id}"))
    assert "/approve" not in page and "awaiting approval" in page.lower()
    detail = f"/corrections/{correction_id}"
    assert auth.post(f"{detail}/approve", form_page=detail).status_code == 403


def test_awaiting_ones_are_listed_for_other_officers(client, auth, login_as, guarded_env):
    login_as("officer")
    correction_id = request_approval(client, auth, guarded_env)
    history = text(client.get("/corrections"))
    assert 'data-state="awaiting_approval"' in history and "Awaiting approval" in history
    auth.logout()
    login_as("officer")
    dashboard = text(client.get("/dashboard"))
    assert "Corrections awaiting approval" in dashboard
    assert f'href="/corrections/{correction_id}"' in dashboard
    listed = text(client.get("/corrections?state=awaiting_approval"))
    assert f'href="/corrections/{correction_id}"' in listed
    none = text(client.get("/corrections?state=rejected"))
    assert f'href="/corrections/{correction_id}"' not in none
