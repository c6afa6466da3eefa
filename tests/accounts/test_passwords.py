"""The shipped list of common and breached passwords, and its use in the password rules."""

from __future__ import annotations

import pytest
from conftest import PASSWORD

from webapp.accounts import users as accounts
from webapp.accounts.passwords import common_passwords, is_common_password
from webapp.db import session_scope

MESSAGE = "This password is too common; choose another."


def test_the_list_ships_about_ten_thousand_passwords():
    listed = common_passwords()
    assert len(listed) >= 10_000
    assert {"123456", "password", "qwerty", "iloveyou", "1q2w3e4r5t6y"} <= listed
    assert all(word == word.lower() for word in listed)


@pytest.mark.parametrize(
    "password",
    [
        "qwertyuiop123",
        "1qaz2wsx3edc4rfv",
        "Password2024!",
        "Summer2025!!",
        "123456789012",
        "passwordpassword",
        "aaaaaaaaaaaa",
        "abcabcabcabc",
        "1990sunshine",
        "  Liverpool1234!  ",
    ],
)
def test_common_and_patterned_passwords_are_refused(password):
    assert is_common_password(password)
    with pytest.raises(accounts.AccountError, match=MESSAGE):
        accounts.check_password_rules(password)


@pytest.mark.parametrize(
    "password",
    [PASSWORD, "violet-anchor-mosquito-72", "Tr4v3l!ng b4ckp4ck", "m9#Lq2!vR7xZ"],
)
def test_unusual_passwords_pass(password):
    assert not is_common_password(password)
    accounts.check_password_rules(password)


def test_an_admin_cannot_create_an_account_with_a_common_password(app, auth, make_user):
    auth.login(make_user("admin"))
    data = {"email": "new@example.org", "role": "officer", "password": "qwertyuiop123"}
    response = auth.post("/admin/users", data)
    assert response.status_code == 400
    assert MESSAGE in response.get_data(as_text=True)
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.find_user(session, "new@example.org") is None
