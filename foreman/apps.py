from django.apps import AppConfig


class ForemanConfig(AppConfig):
    name = "foreman"
    verbose_name = "Foreman"
