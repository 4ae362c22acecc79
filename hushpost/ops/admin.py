"""What operators see and may change at /ops/.

Operators keep the platform running; they never need to read a message or
send as anyone, so nothing here lets them.  They may:

* disable and re-enable accounts and organisations (a disabled one is signed
  out at once), and unlock an account locked by failed sign-ins;
* see accounts, organisations (their policy and gateway settings, read-only)
  and the delivery state of notifications.

Everything that decides who someone is or who may send stays read-only: an
account's e-mail address, name, role, organisation and admin flag, an
organisation's name, slug, domains and policy, every gateway setting.  Changing
an address and asking for a reset, adding a domain, or adding a network would
each let an operator read mail or send as someone; those changes are made with
``hushpost user``/``org``/``gateway`` on the server itself.  Nothing is added
or deleted here (deleting an account or an organisation deletes its messages).
Password hashes, TOTP secrets, wrapped keys and the gateway's password hash are
not fields of any form or list.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html_join

from hushpost.accounts import actions as accounts
from hushpost.accounts import throttle, twofactor
from hushpost.accounts.models import User
from hushpost.gateway.config import describe
from hushpost.notifications.models import Notification
from hushpost.ops.audit import AuditedAdmin, SwitchedAdmin
from hushpost.ops.site import site
from hushpost.orgs.models import Organization


@admin.register(User, site=site)
class UserAdmin(SwitchedAdmin):
    noun = "account"
    list_display = ("email", "name", "role", "org", "is_org_admin", "is_active", "two_factor", "locked",
                    "last_login", "created_at")
    list_filter = ("role", "is_active", "is_org_admin", "org")
    list_select_related = ("org",)
    search_fields = ("email", "name")
    fields = ("email", "name", "role", "org", "is_org_admin", "is_active", "two_factor", "locked",
              "must_change_password", "temp_password_expires_at", "password_changed_at", "last_login",
              "created_at")
    actions = [*SwitchedAdmin.actions, "unlock"]

    def get_readonly_fields(self, request, obj=None):
        editable = {"is_active"} if obj is None or obj.pk != request.user.pk else set()  # not oneself
        return [f for f in self.fields if f not in editable]

    @admin.display(description="Two-factor sign-in", boolean=True)
    def two_factor(self, obj):
        return twofactor.enabled(obj)

    @admin.display(description="Locked until")
    def locked(self, obj):
        return throttle.locked_until(obj) or "-"

    def switchable(self, request, queryset):
        return queryset.exclude(pk=request.user.pk)  # never oneself

    def set_active(self, obj, active: bool) -> None:
        accounts.set_active(obj, active)

    @admin.action(description="Unlock the selected users")
    def unlock(self, request, queryset):
        self.apply(request, queryset, throttle.unlock, "unlocked", self.noun)


@admin.register(Organization, site=site)
class OrganizationAdmin(SwitchedAdmin):
    noun = "organisation"
    list_display = ("name", "slug", "domain_names", "is_active", "created_at")
    search_fields = ("name", "slug", "domains__name")
    fieldsets = [
        (None, {"fields": ("name", "slug", "domain_names", "sender_name", "is_active", "created_at")}),
        ("Policy, set by the organisation's admins", {"fields": (
            "notify_from_email", "default_read_receipt", "default_restriction", "default_expire_days",
            "allowed_expiry_days", "temp_password_days", "receipt_includes_subject", "max_file_mb",
            "max_message_mb", "sender_idle_minutes", "recipient_idle_minutes", "require_2fa_senders",
            "require_2fa_recipients", "remind_after_days", "remind_times", "remind_tells_sender")}),
        ("SMTP gateway, set with hushpost gateway set", {"fields": ("gateway",)}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("domains")

    def get_readonly_fields(self, request, obj=None):
        return [f for _, spec in self.fieldsets for f in spec["fields"] if f != "is_active"]

    def audit_org(self, obj):
        return obj

    @admin.display(description="Domains")
    def domain_names(self, obj):
        return ", ".join(sorted(d.name for d in obj.domains.all())) or "-"

    @admin.display(description="Gateway")
    def gateway(self, obj):
        return format_html_join("", "<div>{}: {}</div>", describe(obj)[2:])

    def set_active(self, obj, active: bool) -> None:
        Organization.objects.filter(pk=obj.pk).update(is_active=active)


@admin.register(Notification, site=site)
class NotificationAdmin(AuditedAdmin):
    """Delivery state only: a notification holds no message content."""

    list_display = ("id", "kind", "to_address", "org", "status", "attempts", "last_error", "created_at",
                    "sent_at")
    list_filter = ("status", "kind", "org")
    list_select_related = ("user", "org")
    search_fields = ("user__email", "address")
    fields = ("kind", "user", "address", "org", "status", "attempts", "last_error", "next_attempt_at",
              "created_at", "sent_at")
    readonly_fields = fields

    def has_change_permission(self, request, obj=None):
        return False
