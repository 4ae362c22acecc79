"""Finding a recipient's portals: "which organisations' Secure Messaging do I have an account with?"

A recipient who arrives at the wrong deployment (or lost their notification)
asks with their address; the answer goes by e-mail to that address only, so
the page says the same whether or not any account exists. Each region
reports the portals it hosts for the address, signed like every question
between deployments; only login URLs and organisation names cross regions.

An address gets at most one list per ``PORTAL_LIST_MINUTES``, whichever
client or region is asked: each region counts the address (by a hash) when
its own page is used and when another region asks it, and only the region
that counted it first within the window sends a list. The page reads the
same whether a list went, was held back, or the address has no account.

The list is an e-mail of the outbox like any other (``regions/emails.py``): a
relay outage delays it, never loses it. Its notification holds the address
only; the regions are asked as the e-mail is written, so the organisations
and links are never stored.
"""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction

from hushpost.accounts import throttle
from hushpost.accounts.models import User
from hushpost.lib.input import usable
from hushpost.notifications.actions import queue_email_to
from hushpost.notifications.models import Notification
from hushpost.regions.discovery import ask_all

log = logging.getLogger(__name__)


def local_portals(email: str) -> list[dict[str, str]]:
    """The organisations of this deployment where ``email`` has a recipient account."""
    accounts = (
        User.objects.filter(role=User.Role.RECIPIENT, email=email.strip().lower(), is_active=True,
                            org__is_active=True)
        .select_related("org")
        .order_by("org__name")
    )
    return [
        {
            "organisation": a.org.name,
            "url": f"{settings.BASE_URL}/r/{a.org.slug}/login",  # never the address in a link
        }
        for a in accounts
    ]


def _portals_in(region, answer: dict, email: str) -> list[dict[str, str]]:
    if answer.get("email") != email:
        return []
    # Links must point at that region's own deployment, as the regions file says.
    return [p for p in answer.get("portals", []) if str(p.get("url", "")).startswith(region.base_url + "/")]


def request_portal_list(email: str) -> None:
    """Queue the list for ``email``, unless one went to it within the window.

    The outbox holds only the address and when it was counted; the list itself
    is gathered as the e-mail is written (:func:`portals_to_send`).
    """
    with transaction.atomic():
        first, since = throttle.count_portal_list(email)
        if first:
            queue_email_to(email, Notification.Kind.PORTALS, owed_since=since)


def answer_for_region(email: str) -> dict:
    """What this region tells another that was asked for ``email``'s portals.

    The asking region is about to e-mail the list, so the address counts here
    too, and the answer says since when: the region that counted it first
    within the window sends the list, any other stays silent.
    """
    if not usable(email):
        return {"email": email, "portals": []}  # no account has such an address
    _, since = throttle.count_portal_list(email)
    return {"email": email, "portals": local_portals(email), "counted_at": since.isoformat()}


def _counted_before(answer: dict, since: datetime) -> bool:
    try:
        theirs = datetime.fromisoformat(str(answer.get("counted_at")))
    except ValueError:
        return False
    return theirs.tzinfo is not None and theirs < since


def portals_to_send(email: str, counted_at: datetime) -> list[dict[str, str]]:
    """Every region's portals for ``email``, counted here at ``counted_at``; empty when there
    is nothing to tell or another region counted the address first (its list goes)."""
    portals = local_portals(email)
    if settings.REGIONS.others:
        answers, _ = ask_all("/regions/v1/portals", "portals", email=email)
        if any(_counted_before(answer, counted_at) for answer in answers.values()):
            return []  # another region's page was asked first within the window: its list goes
        for code, answer in sorted(answers.items()):  # one region down: the others still answer
            portals += _portals_in(settings.REGIONS.get(code), answer, email)
    return portals
