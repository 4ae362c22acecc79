"""The only way organisation admin pages load an account, a message, a legal hold or the branding: within
the admin's organisation."""

from __future__ import annotations

from django.http import Http404

from hushpost.accounts.models import User
from hushpost.messaging.models import Message
from hushpost.orgs.models import Organization
from hushpost.retention.models import LegalHold


def access_member_for_admin(admin: User, user_id: int, role: str) -> User:
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    member = User.objects.filter(pk=user_id, org_id=admin.org_id, role=role).first()
    if member is None:
        raise Http404
    return member


def access_message_for_admin(admin: User, uid: str) -> Message:
    """A sender's message of the admin's organisation: its metadata, never its content."""
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    message = Message.objects.filter(uid=uid, org_id=admin.org_id, kind=Message.Kind.MESSAGE).first()
    if message is None:
        raise Http404
    return message


def member_by_address_for_admin(admin: User, email: str, role: str) -> User | None:
    """An account of the admin's organisation typed by address (a form's field: None is its error)."""
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    return User.objects.filter(email=email.strip().lower(), org_id=admin.org_id, role=role).first()


def access_hold_for_admin(admin: User, hold_id: int) -> LegalHold:
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    hold = LegalHold.objects.filter(pk=hold_id, org_id=admin.org_id).first()
    if hold is None:
        raise Http404
    return hold


def organisation_for_admin(admin: User) -> Organization:
    """The organisation whose settings (its branding) the admin may change: their own, and only as its admin."""
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    return admin.org
