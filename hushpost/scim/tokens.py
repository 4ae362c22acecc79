"""Provisioning tokens: made and revoked by an organisation admin, checked on every SCIM request.

A token is 256 random bits after a fixed ``hpscim_`` start (so a leaked one is easy
to recognise in a scanner's rules). Only its keyed hash is stored, and a request's
token is found by that hash: there is no stored value to compare it with byte by
byte.

Identity providers provision from shared addresses (Entra ID from Microsoft's
ranges, for every tenant), so one organisation's broken token must not hold off
another's. A valid, unrevoked token is therefore never refused by the brute-force
throttle: looking it up costs one keyed hash, and 256 random bits are not guessed.
A wrong one goes through :func:`throttle.check_secret`, counted against the client's
address *and* the token's first characters (the address alone for one that is not
a token at all): repeating it slows down, then holds off, that token from that
client only; ``CLIENT_FAILURES`` wrong tokens of any kind from one address hold off
its wrong tokens, which keeps the audit trail from filling with them.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q

from hushpost.accounts import throttle
from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import macs
from hushpost.lib import clock
from hushpost.scim.models import ScimToken

START = "hpscim_"
SHOWN = len(START) + 6  # the characters kept for display: the start and 36 bits of the token
MAX_LENGTH = 200  # far longer than a token; a longer header is not worth hashing
LAST_USED_EVERY = timedelta(minutes=1)


def issue(org, name: str, *, by: User) -> tuple[ScimToken, str]:
    """A new token of ``org`` and the token itself, which is never shown again."""
    raw = START + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ScimToken.objects.create(org=org, name=name, digest=macs.scim_token(raw), prefix=raw[:SHOWN],
                                         created_by=by)
        record(AuditEvent.Action.SCIM, actor=by, obj=token, detail=f"created provisioning token {token}")
    return token, raw


def revoke(token: ScimToken, *, by: User) -> None:
    """The token stops working with the next request."""
    with transaction.atomic():
        if ScimToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=clock.now()):
            record(AuditEvent.Action.SCIM, actor=by, obj=token, detail=f"revoked provisioning token {token}")


def active_tokens(org):
    return ScimToken.objects.filter(org=org, revoked_at__isnull=True).order_by("-created_at")


def _find(raw: str) -> ScimToken | None:
    if not _well_formed(raw):
        return None
    token = ScimToken.objects.select_related("org").filter(
        digest=macs.scim_token(raw), revoked_at__isnull=True, org__is_active=True).first()
    now = clock.now()
    if token is not None and (token.last_used_at is None or token.last_used_at <= now - LAST_USED_EVERY):
        # Conditional, so requests at the same moment write it once.
        ScimToken.objects.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - LAST_USED_EVERY),
                                 pk=token.pk).update(last_used_at=now)
    return token


def _well_formed(raw: str) -> bool:
    return raw.startswith(START) and len(raw) <= MAX_LENGTH


def authenticate(raw: str, client: str) -> throttle.Attempt[ScimToken]:
    """The token ``raw`` names, if it is valid; a wrong one is counted under its own throttle."""
    token = _find(raw)
    if token is not None:
        return throttle.Attempt(value=token)
    requests_like_it = f"scim:{client}:{raw[:SHOWN]}" if _well_formed(raw) else f"scim:{client}"
    return throttle.check_secret(client, requests_like_it, lambda: None, client_key=f"scim:{client}")
