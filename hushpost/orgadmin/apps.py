from django.apps import AppConfig


class OrgAdminConfig(AppConfig):
    name = "hushpost.orgadmin"
    verbose_name = "Organisation administration"
