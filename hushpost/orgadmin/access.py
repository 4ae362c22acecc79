"""The only way organisation admin pages load an account: within the admin's organisation."""

from __future__ import annotations

from django.http import Http404

from hushpost.accounts.models import User
from hushpost.messaging.models import Message


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
