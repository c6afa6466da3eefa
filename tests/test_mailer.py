"""SMTP settings and sending: off by default, validated, over a real loopback SMTP server."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from smtp_fixtures import *  # noqa: F401,F403
from smtp_fixtures import SMTP_PASSWORD, SMTP_USER, start_mail_server

from webapp import mailer
from webapp.config import ConfigError, load_settings
from webapp.models import utcnow


def settings_for(desk_env: dict, tmp_path: Path, **alert_env: str) -> dict:
    return load_settings(tmp_path / "instance", {**desk_env, **alert_env})


def test_alerts_are_off_unless_a_host_and_recipients_are_set(app, desk_env, tmp_path):
    assert mailer.smtp_settings(app) is None
    only_host = settings_for(desk_env, tmp_path, DESK_SMTP_HOST="smtp.example.org")
    only_recipients = settings_for(desk_env, tmp_path, DESK_ALERT_RECIPIENTS="dpo@example.org")
    assert not only_host["DESK_ALERTS_ENABLED"] and not only_recipients["DESK_ALERTS_ENABLED"]
    on = settings_for(
        desk_env,
        tmp_path,
        DESK_SMTP_HOST="smtp.example.org",
        DESK_ALERT_RECIPIENTS="dpo@example.org,ops@example.org",
        DESK_SMTP_FROM="desk@example.org",
    )
    assert on["DESK_ALERTS_ENABLED"]
    assert on["DESK_ALERT_RECIPIENTS"] == ["dpo@example.org", "ops@example.org"]
    assert (on["DESK_SMTP_PORT"], on["DESK_SMTP_STARTTLS"], on["DESK_SMTP_SSL"]) == (
        587,
        True,
        False,
    )
    assert on["DESK_DIGEST_HOUR_UTC"] == 7
    assert on["DESK_PUBLIC_URL"] == "http://127.0.0.1:8000"
    ssl = settings_for(desk_env, tmp_path, DESK_SMTP_SSL="true")
    assert (ssl["DESK_SMTP_PORT"], ssl["DESK_SMTP_STARTTLS"]) == (465, False)


ENABLED = {"DESK_SMTP_HOST": "smtp.example.org", "DESK_ALERT_RECIPIENTS": "dpo@example.org"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DESK_SMTP_PORT": "smtp"}, "DESK_SMTP_PORT must be a whole number"),
        ({"DESK_SMTP_PORT": "70000"}, "DESK_SMTP_PORT must be a port number"),
        ({"DESK_SMTP_STARTTLS": "maybe"}, "DESK_SMTP_STARTTLS must be true or false"),
        ({"DESK_SMTP_SSL": "true", "DESK_SMTP_STARTTLS": "true"}, "not both"),
        ({"DESK_SMTP_USERNAME": "desk"}, "DESK_SMTP_USERNAME and DESK_SMTP_PASSWORD together"),
        ({"DESK_ALERT_RECIPIENTS": "dpo@example.org, someone"}, "'someone' is not an e-mail"),
        ({"DESK_ALERT_RECIPIENTS": "a@example.org\nBcc: x@evil.test"}, "is not an e-mail"),
        ({**ENABLED}, "Set DESK_SMTP_FROM"),
        ({"DESK_SMTP_FROM": "Desk <desk@example.org>"}, "DESK_SMTP_FROM: "),
        ({"DESK_DIGEST_HOUR_UTC": "24"}, "DESK_DIGEST_HOUR_UTC must be an hour from 0 to 23"),
        ({"DESK_PUBLIC_URL": "desk.example.org"}, "DESK_PUBLIC_URL must be the desk's address"),
    ],
)
def test_bad_smtp_settings_are_refused_with_a_plain_message(desk_env, tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        settings_for(desk_env, tmp_path, **env)


def test_the_password_is_never_in_a_config_error(desk_env, tmp_path):
    with pytest.raises(ConfigError) as refused:
        settings_for(desk_env, tmp_path, DESK_SMTP_PASSWORD=SMTP_PASSWORD)
    assert SMTP_PASSWORD not in str(refused.value)
    settings = mailer.SmtpSettings(
        host="h", port=1, sender="a@b.c", recipients=("d@e.f",), password=SMTP_PASSWORD
    )
    assert SMTP_PASSWORD not in repr(settings)


def _message(settings: mailer.SmtpSettings):
    return mailer.build_message(
        settings, subject="Test", text="plain body", html="<p>html body</p>", now=utcnow()
    )


def test_a_message_reaches_the_server_with_a_plain_and_an_html_part(
    app, mail_server, alert_settings
):
    alert_settings(mail_server.port)
    settings = mailer.smtp_settings(app)
    mailer.send(settings, _message(settings))
    (received,) = mail_server.received
    assert received.mail_from == "desk@example.org"
    assert received.rcpt_tos == ["dpo@example.org", "ops@example.org"]
    assert received.message["Auto-Submitted"] == "auto-generated"
    assert received.message["Message-ID"].endswith("@example.org>")
    assert received.body("plain").strip() == "plain body"
    assert received.body("html").strip() == "<p>html body</p>"


def test_login_is_used_when_a_username_is_set(app, alert_settings):
    server, controller = start_mail_server(accept_login=True)
    try:
        alert_settings(server.port, DESK_SMTP_USERNAME=SMTP_USER, DESK_SMTP_PASSWORD=SMTP_PASSWORD)
        settings = mailer.smtp_settings(app)
        mailer.send(settings, _message(settings))
    finally:
        controller.stop()
    assert server.logins == [SMTP_USER] and len(server.received) == 1


def test_a_refused_login_fails_without_repeating_the_password(app, alert_settings, caplog):
    server, controller = start_mail_server(accept_login=False)
    caplog.set_level(logging.DEBUG)
    try:
        alert_settings(server.port, DESK_SMTP_USERNAME=SMTP_USER, DESK_SMTP_PASSWORD=SMTP_PASSWORD)
        settings = mailer.smtp_settings(app)
        with pytest.raises(mailer.MailError) as failed:
            mailer.send(settings, _message(settings))
    finally:
        controller.stop()
    assert str(failed.value) == (
        f"SMTP 127.0.0.1:{server.port}: the server refused the login of {SMTP_USER}"
    )
    assert failed.value.__cause__ is None and failed.value.__suppress_context__
    assert SMTP_PASSWORD not in caplog.text and not server.received


def test_starttls_against_a_server_without_it_fails_plainly(app, mail_server, alert_settings):
    alert_settings(mail_server.port, DESK_SMTP_STARTTLS="true")
    settings = mailer.smtp_settings(app)
    with pytest.raises(mailer.MailError, match="STARTTLS extension not supported"):
        mailer.send(settings, _message(settings))
    assert not mail_server.received
