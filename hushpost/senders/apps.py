from django.apps import AppConfig


class SendersConfig(AppConfig):
    name = "hushpost.senders"
    verbose_name = "Sender portal"
