from django.apps import AppConfig


class ForemanConfig(AppConfig):
    name = "foreman"
    verbose_name = "Foreman"

    def ready(self) -> None:
        from foreman import checks  # noqa: F401 (registers them)
