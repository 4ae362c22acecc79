"""What every single sign-on ends in, whichever protocol carried it: the organisation's rules
applied to who the identity provider says this is, then a session, or a refusal page.

A protocol module (:mod:`hushpost.sso.oidc`, :mod:`hushpost.sso.saml`) turns the identity
provider's answer into an :class:`Identity`, or raises :class:`SSORefused` naming what was wrong
with it. Everything after that is here, the same for both: the address must be at one of the
organisation's domains, the sender must exist (or be created, where the organisation allows it)
and be enabled, and the admin role follows the admin group where one is named. Each refusal is
recorded in the audit trail and explained on a page; none says more than the person can act on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import login
from django.db import IntegrityError, transaction
from django.shortcuts import render

from hushpost.accounts import reauth
from hushpost.accounts.flows import BACKEND
from hushpost.accounts.middleware import SSO_SESSION
from hushpost.accounts.models import User
from hushpost.accounts.sessions import SEEN, STARTED
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import macs
from hushpost.lib import clock
from hushpost.sso.models import SeenAssertion, SingleSignOn


@dataclass
class Identity:
    """Who the identity provider vouched for."""

    email: str
    name: str = ""
    groups: list[str] = field(default_factory=list)
    subject: str = ""  # the provider's own identifier (OIDC ``sub``, SAML NameID)
    # When the person last proved who they are to the identity provider (OIDC ``auth_time``, SAML
    # ``AuthnInstant``), if it said; a sign-on counts as "confirm it's you" only if that was just now.
    authenticated_at: datetime | None = None


# Why a sign-on was refused: the audit trail's word, and what the person is told.
REASONS = {
    "issuer": "The answer did not come from your organisation's identity provider.",
    "audience": "The answer from your identity provider was meant for another service.",
    "expired": "The answer from your identity provider has expired. Sign in again.",
    "not_yet_valid": "The answer from your identity provider is not valid yet. "
                     "Check that the identity provider's clock is right, then sign in again.",
    "unsigned": "The answer from your identity provider was not signed, so it cannot be trusted.",
    "signature": "The signature on the answer from your identity provider does not hold.",
    "replay": "That sign-in answer was already used. Start again from the sign-in page.",
    "state": "That sign-in was not started here, or has already finished. Start again from the sign-in page.",
    "idp_error": "Your identity provider did not sign you in.",
    "no_email": "Your identity provider did not say what your e-mail address is.",
    "domain": "That address is not at one of your organisation's domains.",
    "no_account": "There is no Secure Messaging account for that address. Ask your organisation's admin to add you.",
    "disabled": "Your Secure Messaging account is disabled. Ask your organisation's admin.",
    "misconfigured": "Single sign-on is not set up correctly for your organisation. "
                     "Tell your organisation's admin.",
    "off": "Your organisation does not use single sign-on here.",
}


class SSORefused(Exception):
    """A sign-on that must not open a session. ``reason``: a key of :data:`REASONS`;
    ``detail``: for the audit trail (never a token or an assertion)."""

    def __init__(self, reason: str, detail: str = "", *, email: str = ""):
        assert reason in REASONS, reason  # noqa: S101 - a programming error, not input
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.email = reason, detail, email


def refused(request, sso: SingleSignOn | None, refusal: SSORefused, *, protocol: str = ""):
    """Record the refusal and explain it (403: nothing here will change by trying again at once)."""
    org = sso.org if sso is not None else None
    detail = f"{protocol or (sso.protocol if sso else '')}: {refusal.reason}"
    if refusal.detail:
        detail += f" ({refusal.detail})"
    record(AuditEvent.Action.SSO_REFUSED, org=org, actor_email=refusal.email, request=request, detail=detail)
    return render(request, "sso/refused.html", {
        "message": REASONS[refusal.reason], "org": org,
        "password_allowed": sso is not None and not sso.required,
    }, status=403)


def first_use(issuer: str, assertion_id: str, expires_at: datetime) -> bool:
    """True the first time an assertion (or token) is presented; False for a replay."""
    key = macs.sso_assertion(issuer, assertion_id)
    SeenAssertion.objects.filter(expires_at__lt=clock.now()).delete()
    try:
        with transaction.atomic():
            SeenAssertion.objects.create(key=key, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def complete(request, sso: SingleSignOn, identity: Identity, *, protocol: str) -> User:
    """The organisation's rules applied to ``identity``; a signed-in sender, or ``SSORefused``."""
    org = sso.org
    email = (identity.email or "").strip().lower()
    if not email or "@" not in email:
        raise SSORefused("no_email")
    domain = email.rsplit("@", 1)[1]
    if not org.domains.filter(name=domain).exists():
        raise SSORefused("domain", domain, email=email)
    if not org.is_active:
        raise SSORefused("disabled", "organisation disabled", email=email)
    user = User.objects.filter(org=org, role=User.Role.SENDER, email=email).first()
    created = False
    if user is None:
        if not sso.create_accounts:
            raise SSORefused("no_account", email=email)
        user = User(org=org, email=email, name=identity.name.strip()[:200], role=User.Role.SENDER)
        user.set_unusable_password()  # signs in through the identity provider; may set one later by reset
        try:
            with transaction.atomic():
                user.save()
        except IntegrityError:  # the same person's second tab got there first
            user = User.objects.get(org=org, role=User.Role.SENDER, email=email)
        else:
            created = True
    if not user.is_active:
        raise SSORefused("disabled", email=email)
    if created:
        record(AuditEvent.Action.SSO_ACCOUNT_CREATED, org=org, actor=user, request=request, obj=user,
               detail=f"{protocol}: created {email} at first sign-in")
    if sso.admin_group:
        admin = sso.admin_group in identity.groups
        if admin != user.is_org_admin:
            User.objects.filter(pk=user.pk).update(is_org_admin=admin)
            user.is_org_admin = admin
            record(AuditEvent.Action.ADMIN, org=org, actor=user, request=request, obj=user,
                   detail=f"{protocol}: {'made' if admin else 'no longer'} an admin by group {sso.admin_group}"[:300])
    return user


def start_session(request, user: User, identity: Identity, *, protocol: str) -> None:
    """Sign in: a new session key (no fixation), marked as single sign-on, and confirmed ("confirm
    it's you") only when the identity provider says the person authenticated just now: an identity
    provider's own session, hours old, answers without asking anyone anything."""
    if user.must_change_password:
        # A password someone else chose (``hushpost user add``) is never needed again once they come
        # in through the identity provider: it stops working rather than waiting to be replaced.
        user.set_unusable_password()
        user.must_change_password = False
        user.save(update_fields=["password", "must_change_password"])
    login(request, user, backend=BACKEND)
    now = clock.now()
    request.session[STARTED] = request.session[SEEN] = now.timestamp()
    request.session[SSO_SESSION] = protocol
    if fresh(identity.authenticated_at, now):
        reauth.mark_confirmed(request, user, at=identity.authenticated_at.timestamp())
    record(AuditEvent.Action.SSO_SIGN_IN, actor=user, request=request, detail=protocol)


CLOCK_SKEW = timedelta(minutes=2)


def fresh(authenticated_at: datetime | None, now: datetime) -> bool:
    """An authentication within the confirmation window (allowing for the provider's clock)."""
    if authenticated_at is None:
        return False
    return now - timedelta(minutes=settings.REAUTH_MINUTES) <= authenticated_at <= now + CLOCK_SKEW


def is_sso_session(request) -> bool:
    return bool(request.session.get(SSO_SESSION))
