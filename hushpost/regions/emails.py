"""The e-mail regions own: a recipient's list of portals, sent by the outbox like any other.

Its notification holds only the address: the organisations and their links are
gathered from every region as the e-mail is written, so no row ever lists them.
"""

from __future__ import annotations

from hushpost.notifications import kinds
from hushpost.notifications.models import Notification
from hushpost.regions.portals import portals_to_send


def _prepare_portals(notification: Notification) -> kinds.Prepared | None:
    """The list, or None: never mail an address with no account, and only the region
    that counted the address first sends."""
    portals = portals_to_send(notification.address, counted_at=notification.created_at)
    return kinds.Prepared(context={"portals": portals}) if portals else None


kinds.register(kinds.EmailKind(
    Notification.Kind.PORTALS, "Your Secure Messaging portals", "regions/email/portals",
    context=lambda notification: {"email": notification.address}, prepare=_prepare_portals,
))
