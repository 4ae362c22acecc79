"""Every change made at /ops/ joins the audit trail: who, which object, which fields.

Django's admin calls ``save_model`` (change forms and editable lists alike)
inside the transaction that makes the change; the actions of
:mod:`hushpost.ops.admin` call :meth:`audit`.  Nothing is added or deleted here.
Details name fields, never their values.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db import transaction

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.ops.signin import WHERE


class AuditedAdmin(admin.ModelAdmin):
    """The base of every model admin of the operators' site."""

    view_on_site = False

    # Nothing is made or removed at /ops/ (the CLI makes accounts and organisations;
    # deleting one would delete its messages): disabling is the way to stop one.
    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def audit_org(self, obj):
        """The organisation whose chain the event joins (None: the chain of no organisation)."""
        return getattr(obj, "org", None)

    def audit(self, request, obj, detail: str) -> None:
        record(AuditEvent.Action.ADMIN, actor=request.user, org=self.audit_org(obj), obj=obj,
               request=request, detail=f"{WHERE}: {detail}")

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.changed_data:
            self.audit(request, obj, "changed " + ", ".join(form.changed_data))

    def apply(self, request, objects, change, verb: str, noun: str) -> None:
        """An action: ``change`` each object in one transaction, record those it changed (it
        returns False for one it left alone), and say how many."""
        done = 0
        with transaction.atomic():
            for obj in objects:
                if change(obj) is not False:
                    self.audit(request, obj, f"{verb} the {noun}")
                    done += 1
        self.message_user(request, f"{done} {noun}{'s' if done != 1 else ''} {verb}.", messages.SUCCESS)


class SwitchedAdmin(AuditedAdmin):
    """Objects operators may disable (which signs their people out at once) and re-enable."""

    noun = ""
    actions = ["disable", "enable"]

    def set_active(self, obj, active: bool) -> None:
        raise NotImplementedError

    def switchable(self, request, queryset):
        return queryset

    def _switch(self, request, queryset, active: bool, verb: str) -> None:
        objects = self.switchable(request, queryset).exclude(is_active=active)
        self.apply(request, objects, lambda obj: self.set_active(obj, active), verb, self.noun)

    @admin.action(description="Disable the selected %(verbose_name_plural)s (signed out at once)")
    def disable(self, request, queryset):
        self._switch(request, queryset, False, "disabled")

    @admin.action(description="Re-enable the selected %(verbose_name_plural)s")
    def enable(self, request, queryset):
        self._switch(request, queryset, True, "re-enabled")
