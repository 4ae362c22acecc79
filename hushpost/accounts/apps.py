from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "hushpost.accounts"
    verbose_name = "Accounts"

    def ready(self):
        from hushpost.accounts import emails  # noqa: F401 - registers the e-mails accounts send
