from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "hushpost.regions"
    verbose_name = "Regions"
