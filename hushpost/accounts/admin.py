from django.contrib import admin

from hushpost.accounts.models import User


@admin.register(User)
class UserAdmin(admin.ModelAdmin):
    """Operators manage accounts here; passwords and content are never shown."""

    list_display = ("email", "name", "role", "org", "is_org_admin", "is_active", "created_at")
    list_filter = ("role", "is_active", "is_org_admin", "org")
    search_fields = ("email", "name")
    fields = ("email", "name", "role", "org", "is_org_admin", "is_active", "must_change_password",
              "temp_password_expires_at", "password_changed_at", "last_login", "created_at")
    readonly_fields = ("role", "org", "temp_password_expires_at", "password_changed_at",
                       "last_login", "created_at")
