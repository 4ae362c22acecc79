from django.apps import AppConfig


class RecipientsConfig(AppConfig):
    name = "hushpost.recipients"
    verbose_name = "Recipient portal"
