from django.apps import AppConfig


class OrgsConfig(AppConfig):
    name = "hushpost.orgs"
    verbose_name = "Organisations"
