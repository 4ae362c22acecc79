from django.apps import AppConfig


class RetentionConfig(AppConfig):
    name = "hushpost.retention"
    verbose_name = "Retention and legal hold"
