from __future__ import annotations

from hushpost.accounts.models import User


class HushpostBackend:
    """Restores the signed-in user from the session.

    Nothing signs in through ``authenticate()``: the portals go through
    :mod:`hushpost.accounts.flows` and operators through :mod:`hushpost.ops.signin`,
    both throttled and both with their second factor, so no path here can open a
    session with a password alone.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        return None

    def get_user(self, user_id):
        user = User.objects.select_related("org").filter(pk=user_id, is_active=True).first()
        if user is not None and user.org_id and not user.org.is_active:
            return None
        return user

    def has_perm(self, user_obj, perm, obj=None):
        return user_obj.is_active and user_obj.is_superuser

    def has_module_perms(self, user_obj, app_label):
        return user_obj.is_active and user_obj.is_superuser
