from django.apps import AppConfig


class DownloadersConfig(AppConfig):
    name = "downloaders"
    verbose_name = "Downloaders"
