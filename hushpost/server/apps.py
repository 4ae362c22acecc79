from django.apps import AppConfig


class ServerConfig(AppConfig):
    name = "hushpost.server"
    verbose_name = "Server and operations"
