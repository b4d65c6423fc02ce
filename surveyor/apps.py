from django.apps import AppConfig


class SurveyorConfig(AppConfig):
    name = "surveyor"
    verbose_name = "Surveyors"
