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
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.utils import formataddr
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django_tasks import task

from hushpost.accounts import throttle
from hushpost.accounts.models import User
from hushpost.lib.input import usable
from hushpost.regions.discovery import ask_all

log = logging.getLogger(__name__)
SUBJECT = "Your Secure Messaging portals"


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
            "url": f"{settings.BASE_URL}/r/{a.org.slug}/login?{urlencode({'email': a.email})}",
        }
        for a in accounts
    ]


def _portals_in(region, answer: dict, email: str) -> list[dict[str, str]]:
    if answer.get("email") != email:
        return []
    # Links must point at that region's own deployment, as the regions file says.
    return [p for p in answer.get("portals", []) if str(p.get("url", "")).startswith(region.base_url + "/")]


def request_portal_list(email: str) -> None:
    """Queue the list for ``email``, unless one went to it within the window."""
    with transaction.atomic():
        first, since = throttle.count_portal_list(email)
        if first:
            send_portal_list.enqueue(email, since.isoformat())


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


def _counted_before(answer: dict, since: datetime | None) -> bool:
    try:
        theirs = datetime.fromisoformat(str(answer.get("counted_at")))
    except ValueError:
        return False
    return since is not None and theirs.tzinfo is not None and theirs < since


@task()
def send_portal_list(email: str, counted_at: str = "") -> int:
    portals = local_portals(email)
    if settings.REGIONS.others:
        answers, _ = ask_all("/regions/v1/portals", "portals", email=email)
        since = datetime.fromisoformat(counted_at) if counted_at else None
        if any(_counted_before(answer, since) for answer in answers.values()):
            return 0  # another region's page was asked first within the window: its list goes
        for code, answer in sorted(answers.items()):  # one region down: the others still answer
            portals += _portals_in(settings.REGIONS.get(code), answer, email)
    if not portals:
        return 0  # nothing to tell; never mail an address that has no account
    context = {"portals": portals, "email": email}
    message = EmailMultiAlternatives(
        subject=SUBJECT,
        body=render_to_string("regions/portals.txt", context),
        from_email=formataddr(("Secure Messaging", settings.DEFAULT_FROM_EMAIL)),
        to=[email],
        headers={"Auto-Submitted": "auto-generated"},
    )
    message.attach_alternative(render_to_string("regions/portals.html", context), "text/html")
    message.send()
    return len(portals)
