from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "hushpost.gateway"
    label = "gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from hushpost.gateway import emails  # noqa: F401 - registers the spool's "not sent" e-mail
