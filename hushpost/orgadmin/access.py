"""The only way organisation admin pages load an account: within the admin's organisation."""

from __future__ import annotations

from django.http import Http404

from hushpost.accounts.models import User


def access_member_for_admin(admin: User, user_id: int, role: str) -> User:
    if not (admin.is_authenticated and admin.is_sender and admin.is_org_admin):
        raise Http404
    member = User.objects.filter(pk=user_id, org_id=admin.org_id, role=role).first()
    if member is None:
        raise Http404
    return member
