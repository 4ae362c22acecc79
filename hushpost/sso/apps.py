from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "hushpost.sso"
    verbose_name = "Single sign-on"
