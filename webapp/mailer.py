"""Outgoing mail over SMTP with the standard library (settings DESK_SMTP_*, off by default)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from flask import Flask

log = logging.getLogger(__name__)

# Long enough for a slow relay, short enough that one stuck server cannot hold a scheduler tick.
SMTP_TIMEOUT_SECONDS = 20.0


class MailError(RuntimeError):
    """A message could not be handed to the SMTP server; the text carries no credentials."""


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how mail is sent; `password` is kept out of repr so it never reaches a log."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = True
    use_ssl: bool = False
    username: str = ""
    password: str = field(default="", repr=False)
    timeout: float = SMTP_TIMEOUT_SECONDS


def smtp_settings(app: Flask) -> SmtpSettings | None:
    """The app's SMTP settings, or None while alerts are off (no host or no recipients)."""
    config = app.config
    if not config.get("DESK_ALERTS_ENABLED"):
        return None
    return _settings(config, tuple(config["DESK_ALERT_RECIPIENTS"]))


def personal_smtp_settings(app: Flask) -> SmtpSettings | None:
    """SMTP settings for mail to the desk's own people (notifications; no fixed recipients),
    or None while no SMTP host and sender are configured."""
    config = app.config
    if not (config.get("DESK_SMTP_HOST") and config.get("DESK_SMTP_FROM")):
        return None
    return _settings(config, ())


def _settings(config, recipients: tuple[str, ...]) -> SmtpSettings:
    return SmtpSettings(
        host=config["DESK_SMTP_HOST"],
        port=config["DESK_SMTP_PORT"],
        sender=config["DESK_SMTP_FROM"],
        recipients=recipients,
        starttls=config["DESK_SMTP_STARTTLS"],
        use_ssl=config["DESK_SMTP_SSL"],
        username=config["DESK_SMTP_USERNAME"],
        password=config["DESK_SMTP_PASSWORD"],
        timeout=float(config.get("DESK_SMTP_TIMEOUT_SECONDS", SMTP_TIMEOUT_SECONDS)),
    )


def build_message(
    settings: SmtpSettings, *, subject: str, text: str, html: str, now: datetime
) -> EmailMessage:
    """A plain-text message with an HTML alternative, addressed to every recipient."""
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message["Date"] = format_datetime(now)
    # The sender's domain, not socket.getfqdn(): no DNS lookup for a header.
    message["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to a robot
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    """Hand `message` to the SMTP server; raise MailError (without credentials) on failure."""
    context = ssl.create_default_context()
    try:
        if settings.use_ssl:
            client = smtplib.SMTP_SSL(
                settings.host, settings.port, timeout=settings.timeout, context=context
            )
        else:
            client = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        with client:
            if settings.starttls:
                client.starttls(context=context)
            if settings.username:
                client.login(settings.username, settings.password)
            refused = client.send_message(message)
    except (smtplib.SMTPException, OSError) as error:
        # `from None`: the chained traceback could show the arguments of login().
        raise MailError(describe(error, settings)) from None
    if refused:
        log.warning("the SMTP server refused %d of the alert recipients", len(refused))


def describe(error: BaseException, settings: SmtpSettings) -> str:
    """A one-line account of a send failure, fit for logs and the audit trail."""
    if isinstance(error, smtplib.SMTPAuthenticationError):
        detail = f"the server refused the login of {settings.username or 'the account'}"
    elif isinstance(error, smtplib.SMTPResponseException):
        detail = f"the server answered {error.smtp_code}"
    elif isinstance(error, smtplib.SMTPRecipientsRefused):
        detail = "the server refused every recipient"
    else:
        detail = f"{type(error).__name__}: {error}"
    text = f"SMTP {settings.host}:{settings.port}: {detail}"
    # Belt and braces: whatever a server or library echoed, the password is never repeated.
    if settings.password:
        text = text.replace(settings.password, "[password]")
    return text[:300]
