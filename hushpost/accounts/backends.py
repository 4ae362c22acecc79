from __future__ import annotations

from hushpost.accounts.models import User


class HushpostBackend:
    """Restores the signed-in user from the session.

    Portal sign-in goes through :mod:`hushpost.accounts.flows`, never through
    ``authenticate()``; ``authenticate`` here serves only Django's admin, and
    only for platform operators.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        """Operators at /ops/: throttled, locked and audited like every other sign-in."""
        from hushpost.accounts import throttle
        from hushpost.audit.actions import record
        from hushpost.audit.models import AuditEvent

        if not username or not password:
            return None
        email = username.strip().lower()[:254]
        client = throttle.client_address(request) if request is not None else "unknown"
        account = throttle.account_key("ops", email)
        if throttle.check(client, account) is not None:
            return None
        user = User.objects.filter(role=User.Role.OPERATOR, email=email, is_active=True).first()
        if user is None:
            User().set_password(password)  # same work whether or not the account exists
        elif user.check_password(password):
            throttle.succeeded(account, client)
            record(AuditEvent.Action.SIGN_IN, actor=user, client=client, detail="operators' admin")
            return user
        throttle.failed(client, account, user=user)
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
