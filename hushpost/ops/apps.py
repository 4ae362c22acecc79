from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "hushpost.ops"
    verbose_name = "Operators' admin"

    def ready(self):
        # The operators' site registers its models explicitly (no autodiscovery):
        # only what is listed in hushpost/ops/admin.py is reachable at /ops/.
        from hushpost.ops import admin  # noqa: F401
