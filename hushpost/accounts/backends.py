from __future__ import annotations

from hushpost.accounts.models import User
from hushpost.accounts.sessions import restoring


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
        # The account read with the session row, when it is the one the session names;
        # otherwise (a row written before it named its account) read on its own. The
        # rules are the same either way, applied to the row as it stands now.
        store = restoring.get()
        user = store.account if store is not None else None
        if user is None or str(user.pk) != str(user_id):
            user = User.objects.select_related("org").filter(pk=user_id).first()
        if user is None or not user.is_active:
            return None
        if user.org_id and not user.org.is_active:
            return None
        return user

    def has_perm(self, user_obj, perm, obj=None):
        return user_obj.is_active and user_obj.is_superuser

    def has_module_perms(self, user_obj, app_label):
        return user_obj.is_active and user_obj.is_superuser
