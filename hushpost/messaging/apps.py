from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "hushpost.messaging"
    verbose_name = "Messages"
