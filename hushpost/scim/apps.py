from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "hushpost.scim"
    verbose_name = "Provisioning (SCIM)"
