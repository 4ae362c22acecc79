from django.contrib import admin

from hushpost.notifications.models import Notification


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    """Delivery state only: a notification holds no message content."""

    list_display = ("id", "kind", "user", "org", "status", "attempts", "last_error", "created_at", "sent_at")
    list_filter = ("status", "kind", "org")
    search_fields = ("user__email",)
    readonly_fields = [f.name for f in Notification._meta.fields]

    def has_add_permission(self, request):
        return False
