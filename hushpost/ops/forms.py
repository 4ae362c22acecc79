from __future__ import annotations

from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError

from hushpost.accounts import throttle
from hushpost.accounts.passwords import password_problems
from hushpost.audit.actions import current_client, record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock


class OperatorPasswordChangeForm(PasswordChangeForm):
    """Django's form, with the current password throttled and the portals' strength rules."""

    def clean_old_password(self):
        # Counted with the operator's sign-in attempts: a session holder gets no extra guesses.
        attempt = throttle.check_secret(current_client.get(), throttle.sign_in_key(self.user),
                                        lambda: self.user.check_password(self.cleaned_data["old_password"]),
                                        owner=self.user)
        if not attempt.passed:
            raise ValidationError(str(attempt.refusal) if attempt.refusal else "Your current password is not right.")
        return self.cleaned_data["old_password"]

    def clean(self):
        cleaned = super().clean()
        new = cleaned.get("new_password1")
        if new:
            for problem in password_problems(new, email=self.user.email, name=self.user.name):
                self.add_error("new_password1", problem)
        return cleaned

    def save(self, commit=True):
        self.user.set_password(self.cleaned_data["new_password1"])
        self.user.password_changed_at = clock.now()
        self.user.save(update_fields=["password", "password_changed_at"])
        record(AuditEvent.Action.PASSWORD_CHANGE, actor=self.user, detail="operators' admin")
        return self.user
