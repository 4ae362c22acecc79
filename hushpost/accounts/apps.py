from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hushpost.accounts"
    verbose_name = "Accounts"
