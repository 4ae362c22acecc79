"""The kinds of e-mail Hushpost sends, each registered by the app that owns it.

The notifications layer queues, leases, sends, retries and records e-mails; it
knows nothing of accounts or messages. What an e-mail says, whether it is still
wanted when its turn comes, and what follows once the relay has accepted it
belong to the owning app: accounts registers the password, reset and lockout
e-mails (``accounts/emails.py``), messaging the message, read-receipt and reply
notifications (``messaging/emails.py``), regions a recipient's list of portals
(``regions/emails.py``), each from its ``AppConfig.ready``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hushpost.notifications.models import Notification


@dataclass
class Prepared:
    """What one e-mail needs beyond its notification: values for its template, and
    state for :attr:`EmailKind.accepted` (never written anywhere)."""

    context: dict[str, Any] = field(default_factory=dict)
    state: Any = None


@dataclass(frozen=True)
class EmailKind:
    kind: str  # a Notification.Kind value
    subject: str
    template: str  # "<app>/email/<name>": .txt and .html beside the owning app
    # The template's context for this notification (links, names, times).
    context: Callable[[Notification], dict[str, Any]]
    # Called as the e-mail's turn comes: None means it is no longer wanted (cancelled).
    prepare: Callable[[Notification], Prepared | None] = lambda notification: Prepared()
    # Called in the transaction that records the e-mail as accepted by the relay.
    accepted: Callable[[Notification, Prepared], None] | None = None
    # A subject that names something of this notification ("{org}": the organisation's name).
    subject_names_org: bool = False

    def subject_of(self, notification: Notification) -> str:
        if self.subject_names_org and notification.org is not None:
            return self.subject.format(org=notification.org.name)
        return self.subject


_registry: dict[str, EmailKind] = {}


def register(kind: EmailKind) -> EmailKind:
    if kind.kind not in Notification.Kind.values:
        raise ValueError(f"{kind.kind!r} is not a notification kind")
    _registry[kind.kind] = kind
    return kind


def registered() -> dict[str, EmailKind]:
    """Every kind of e-mail registered, by its Notification.Kind value."""
    return dict(_registry)


def of(notification: Notification) -> EmailKind:
    try:
        return _registry[notification.kind]
    except KeyError:
        raise LookupError(f"no e-mail registered for {notification.kind!r} notifications") from None
