"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, and alert settings."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from webapp.config import load_settings

__all__ = ["SMTP_PASSWORD", "SMTP_USER", "alert_settings", "mail_server", "start_mail_server"]

SMTP_USER = "desk-alerts"
SMTP_PASSWORD = "smtp-pass-Zq8!unique-string"
ALERT_KEYS = ("DESK_SMTP_", "DESK_ALERT", "DESK_DIGEST_HOUR_UTC", "DESK_PUBLIC_URL")


@dataclass
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    def body(self, subtype: str) -> str:
        return self.message.get_body(preferencelist=(subtype,)).get_content()


@dataclass
class MailServer:
    """What the test server received, and where it listens."""

    port: int
    received: list[Received] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_mail_server(*, accept_login: bool | None = None) -> tuple[MailServer, Controller]:
    """Start aiosmtpd; `accept_login` None: no AUTH offered, True/False: the login's outcome."""
    server = MailServer(port=free_port())
    options = {}
    if accept_login is not None:

        def authenticate(_server, _session, _envelope, _mechanism, data) -> AuthResult:
            ok = (
                accept_login
                and isinstance(data, LoginPassword)
                and (data.login, data.password) == (SMTP_USER.encode(), SMTP_PASSWORD.encode())
            )
            if ok:
                server.logins.append(data.login.decode())
            return AuthResult(success=bool(ok), handled=False)

        # Loopback only: a plaintext AUTH is fine here (production uses STARTTLS or SSL).
        options = {"authenticator": authenticate, "auth_require_tls": False}
    controller = Controller(server, hostname="127.0.0.1", port=server.port, **options)
    controller.start()
    return server, controller


@pytest.fixture
def mail_server() -> Iterator[MailServer]:
    """A real SMTP server on a free loopback port (no TLS, no AUTH)."""
    server, controller = start_mail_server()
    try:
        yield server
    finally:
        controller.stop()


@pytest.fixture
def alert_settings(app, desk_env, tmp_path) -> Callable[..., dict]:
    """Turn alerts on through load_settings: alert_settings(port, **{"DESK_X": "v"})."""

    def configure(port: int, **extra: str) -> dict:
        env = {
            **desk_env,
            "DESK_SMTP_HOST": "127.0.0.1",
            "DESK_SMTP_PORT": str(port),
            "DESK_SMTP_STARTTLS": "false",  # the local server speaks plain SMTP
            "DESK_SMTP_FROM": "desk@example.org",
            "DESK_ALERT_RECIPIENTS": "dpo@example.org, ops@example.org",
            "DESK_PUBLIC_URL": "https://desk.example.org/",
            **extra,
        }
        settings = load_settings(Path(tmp_path / "instance"), env)
        chosen = {k: v for k, v in settings.items() if k.startswith(ALERT_KEYS)}
        app.config.update(chosen)
        return chosen

    return configure
