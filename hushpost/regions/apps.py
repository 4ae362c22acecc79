from django.apps import AppConfig


class RegionsConfig(AppConfig):
    name = "hushpost.regions"
    verbose_name = "Regions"

    def ready(self):
        from hushpost.regions import emails  # noqa: F401 - registers the list of portals
