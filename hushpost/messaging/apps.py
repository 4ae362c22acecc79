from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "hushpost.messaging"
    verbose_name = "Messages"

    def ready(self):
        from hushpost.messaging import emails  # noqa: F401 - registers the e-mails messages cause
