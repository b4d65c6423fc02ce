from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from rest_framework.authtoken.models import Token

        from api.engines.auth import forget_engine_tokens
        from api.models import Engine

        # A server process remembers engines' tokens for a second (api/engines/auth.py);
        # a change it makes itself takes effect at once.
        for model in (Token, Engine, get_user_model()):
            post_save.connect(forget_engine_tokens, sender=model, dispatch_uid=f"engines-{model}")
            post_delete.connect(forget_engine_tokens, sender=model, dispatch_uid=f"del-{model}")
