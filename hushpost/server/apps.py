from django.apps import AppConfig


class ServerConfig(AppConfig):
    name = "hushpost.server"
    verbose_name = "Server and operations"

    def ready(self):
        from hushpost.server import checks  # noqa: F401 - registers the system checks
