from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "hushpost.notifications"
    verbose_name = "Notifications"
