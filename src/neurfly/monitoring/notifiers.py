"""Notifiers: plug-ins that deliver one alert notification (log, webhook, email)."""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from email.message import EmailMessage
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from neurfly.errors import NeurflyError
from neurfly.registry import Registry

_logger = logging.getLogger(__name__)
# Notifications go to their own logger so a deployment can route them apart from the service logs.
_notification_logger = logging.getLogger("neurfly.notifications")


class NotificationError(NeurflyError):
    """One delivery failed; the dispatcher retries it with back-off."""


@dataclass(frozen=True)
class Notification:
    """The message a notifier sends: the alert, the round and the party it goes to.

    Attributes:
        delivery_id: Unique per delivery; receivers may use it to drop duplicates.
        reason: ``firing``, ``repeat`` or ``escalation``.
        role: The party's RACI role for this alert.
    """

    delivery_id: int
    alert_id: int
    key: str
    category: str
    severity: str
    state: str
    owner: str
    team: str | None
    search_id: int | None
    trial_id: int | None
    attempt_id: int | None
    message: str
    count: int
    first_at: float
    last_at: float
    reason: str
    party: str
    role: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def subject(self) -> str:
        where = f" search {self.search_id}" if self.search_id is not None else ""
        prefix = "ESCALATED " if self.reason == "escalation" else ""
        return f"[neurfly] {prefix}{self.severity} {self.category}{where}: {self.message}"[:200]


class _Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Notifier(ABC):
    """Base class of notifiers.

    Contract:
        * ``name`` is the registry name, the ``type`` of a notifier in the
          responsibility file. ``settings_model`` validates the options
          written beside ``type``; the constructor takes one instance of it
          and does no I/O.
        * ``send`` delivers one notification to ``recipients`` (the route's
          ``to`` list, which a notifier without addresses ignores) and
          returns, or raises ``NotificationError`` when it did not deliver.
          It does not retry: the dispatcher retries with back-off.
        * ``send`` finishes within its own timeout, and is called from one
          thread at a time.
        * Secrets (passwords, tokens) are read from the environment at send
          time and never logged or put in an error message.
    """

    name: ClassVar[str] = ""
    settings_model: ClassVar[type[BaseModel]] = _Settings

    def __init__(self, settings: BaseModel) -> None:
        if not isinstance(settings, self.settings_model):
            raise TypeError(f"{type(self).__name__} takes {self.settings_model.__name__} settings, got {type(settings).__name__}")
        self.settings = settings

    @abstractmethod
    def send(self, notification: Notification, recipients: Sequence[str]) -> None:
        """Deliver ``notification``.

        Raises:
            NotificationError: It was not delivered.
        """


notifiers: Registry[Notifier] = Registry("neurfly.notifiers", "notifier")


class LogSettings(_Settings):
    level: Literal["info", "warning", "error"] | None = Field(default=None, description="log level; default: by severity")


class LogNotifier(Notifier):
    """Writes the notification to the ``neurfly.notifications`` logger."""

    name = "log"
    settings_model = LogSettings

    _LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR, "error": logging.ERROR}

    def send(self, notification: Notification, recipients: Sequence[str]) -> None:
        level = self._LEVELS[self.settings.level or notification.severity]
        _notification_logger.log(level, "%s (to %s as %s, alert %d, %d occurrence(s))", notification.subject,
                                 notification.party, notification.role, notification.alert_id, notification.count)


class WebhookSettings(_Settings):
    url: str = Field(min_length=1)
    timeout_s: float = Field(default=5.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)
    token_env: str | None = Field(default=None, description="environment variable with a bearer token")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value


class WebhookNotifier(Notifier):
    """POSTs the notification as a JSON object; any 2xx status counts as delivered."""

    name = "webhook"
    settings_model = WebhookSettings

    def send(self, notification: Notification, recipients: Sequence[str]) -> None:
        body = json.dumps(notification.as_json(), default=str).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "neurfly-alerts",
                   "Idempotency-Key": f"neurfly-delivery-{notification.delivery_id}", **self.settings.headers}
        if self.settings.token_env:
            headers["Authorization"] = f"Bearer {os.environ.get(self.settings.token_env, '')}"
        request = urllib.request.Request(self.settings.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_s) as response:  # noqa: S310 - http(s) checked
                status = response.status
        except urllib.error.HTTPError as exc:
            raise NotificationError(f"webhook {self.settings.url} returned HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise NotificationError(f"webhook {self.settings.url} failed: {getattr(exc, 'reason', exc)}") from None
        if not 200 <= status < 300:
            raise NotificationError(f"webhook {self.settings.url} returned HTTP {status}")


class EmailSettings(_Settings):
    host: str = Field(min_length=1)
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(min_length=3)
    security: Literal["none", "starttls", "tls"] = "none"
    username: str | None = None
    password_env: str | None = Field(default=None, description="environment variable with the SMTP password")
    timeout_s: float = Field(default=10.0, gt=0)


class EmailNotifier(Notifier):
    """Sends a plain-text email with the alert and its evidence over SMTP."""

    name = "email"
    settings_model = EmailSettings

    def send(self, notification: Notification, recipients: Sequence[str]) -> None:
        if not recipients:
            raise NotificationError(f"email to party {notification.party!r} has no addresses; add 'to' to its route")
        message = EmailMessage()
        message["Subject"] = notification.subject
        message["From"] = self.settings.sender
        message["To"] = ", ".join(recipients)
        message["Message-ID"] = f"<neurfly-delivery-{notification.delivery_id}@neurfly>"
        message.set_content(_email_body(notification))
        try:
            with self._connect() as smtp:
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise NotificationError(f"email through {self.settings.host}:{self.settings.port} failed: {exc}") from None

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        if settings.security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout_s,
                                                  context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout_s)
        try:
            if settings.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if settings.username:
                smtp.login(settings.username, os.environ.get(settings.password_env or "", ""))
        except BaseException:
            smtp.close()
            raise
        return smtp


def _email_body(notification: Notification) -> str:
    lines = [
        notification.message,
        "",
        f"category: {notification.category}   severity: {notification.severity}   state: {notification.state}",
        f"owner: {notification.owner}   team: {notification.team or '-'}   you are: {notification.role}",
        f"search: {notification.search_id}   trial: {notification.trial_id}   attempt: {notification.attempt_id}",
        f"occurrences: {notification.count}   alert id: {notification.alert_id}",
        "",
        "evidence:",
        json.dumps(notification.evidence, indent=2, default=str, sort_keys=True),
        "",
        f"Acknowledge with: neurfly alerts ack {notification.alert_id}",
    ]
    return "\n".join(lines)


__all__ = [
    "EmailNotifier",
    "LogNotifier",
    "Notification",
    "NotificationError",
    "Notifier",
    "WebhookNotifier",
    "notifiers",
]
