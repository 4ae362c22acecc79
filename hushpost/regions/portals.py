"""Finding a recipient's portals: "which organisations' Secure Messaging do I have an account with?"

A recipient who arrives at the wrong deployment (or lost their notification)
asks with their address; the answer goes by e-mail to that address only, so
the page says the same whether or not any account exists. Each region
reports the portals it hosts for the address, signed like every question
between deployments; only login URLs and organisation names cross regions.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from email.utils import formataddr
from urllib.parse import urlencode

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django_tasks import task

from hushpost.accounts.models import User
from hushpost.regions.discovery import SIGNATURE, TIMEOUT, sign, verify

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


def _ask(region, email: str) -> list[dict[str, str]]:
    body = json.dumps({"email": email, "from": settings.REGIONS.here, "ts": time.time()}).encode()
    request = urllib.request.Request(  # noqa: S310 - base_url comes from the regions file
        region.base_url + "/regions/v1/portals", data=body, method="POST",
        headers={"Content-Type": "application/json", SIGNATURE: sign(body)},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        answer = verify(response.read(), response.headers.get(SIGNATURE, ""))
    if not answer or answer.get("email") != email:
        return []
    # Links must point at that region's own deployment, as the regions file says.
    return [p for p in answer.get("portals", []) if str(p.get("url", "")).startswith(region.base_url + "/")]


@task()
def send_portal_list(email: str) -> int:
    portals = local_portals(email)
    others = settings.REGIONS.others
    if others:
        with ThreadPoolExecutor(max_workers=len(others)) as pool:
            futures = [pool.submit(_ask, region, email) for region in others]
            for future in futures:
                try:
                    portals += future.result()
                except Exception as exc:  # one region down: the others still answer
                    log.info("a region did not answer the portal question: %s", type(exc).__name__)
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
