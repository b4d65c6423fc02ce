"""How an engine's requests are authenticated: DRF token authentication, with
the token, its user and the engine read in one statement.

An engine sends a request every few seconds, and each one starts here: the
statement is written once (names from the models' `_meta`) rather than built by
the ORM on every request, which costs more than running it (see
bench/engine_api.py). Each server process remembers an engine's token for
TOKEN_REMEMBERED_S, so that the three requests of a job's round trip read it
once: removing an engine, a new token or a deactivated user takes effect at
once in the process that makes the change and within that second in the others.
"""

from __future__ import annotations

import time
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed

from api.models import Engine
from common.models.sql_rows import model_rows

TOKEN_REMEMBERED_S = 1.0
# token key -> (until when, its engine); only engines' tokens, so it holds one
# entry per engine at most (a bound, should that ever be wrong).
_remembered: dict[str, tuple[float, Engine]] = {}
REMEMBERED_MAX = 10_000

# Engine fields the engine views use; any other is loaded if asked for.
ENGINE_FIELDS = ("id", "name", "user_id", "created_at", "last_contact_at")


@cache
def engine_of_token_sql(vendor: str) -> str:
    """SELECT an engine's row (and whether its user is active) by its token's key,
    in the SQL of `vendor`'s database."""
    q = connection.ops.quote_name
    token, user = Token._meta, get_user_model()._meta
    engine = Engine._meta
    columns = ", ".join(f"e.{q(engine.get_field(name).column)}" for name in ENGINE_FIELDS[1:])
    token_user = token.get_field("user").column
    engine_user = engine.get_field("user").column
    return (
        f"SELECT e.{q(engine.pk.column)}, {columns}, u.{q(user.get_field('is_active').column)} "
        f"AS user_is_active FROM {q(token.db_table)} t "
        f"JOIN {q(user.db_table)} u ON u.{q(user.pk.column)} = t.{q(token_user)} "
        f"JOIN {q(engine.db_table)} e ON e.{q(engine_user)} = u.{q(user.pk.column)} "
        f"WHERE t.{q(token.pk.column)} = %s"
    )


def engine_of_token(key: str) -> Engine | None:
    """The engine whose token is `key`, with its user (only `id` and `is_active`
    loaded) attached as `engine.user` (and so `user.engine`); None when `key` is
    no engine's token."""
    found = model_rows(Engine, engine_of_token_sql(connection.vendor), [key])
    if not found:
        return None
    engine = found[0]
    user = get_user_model().from_db(
        engine._state.db, ["id", "is_active"], [engine.user_id, bool(engine.user_is_active)]
    )
    engine.user = user  # caches the engine on the user too (a one-to-one)
    return engine


def remembered_engine(key: str) -> Engine | None:
    """`engine_of_token(key)`, read at most once per TOKEN_REMEMBERED_S by this
    process. The instance is shared by the process's requests of that second (its
    last contact, which `touch` keeps, included)."""
    now = time.monotonic()
    found = _remembered.get(key)
    if found is not None and found[0] > now:
        return found[1]
    engine = engine_of_token(key)
    if engine is None:
        _remembered.pop(key, None)
        return None
    if len(_remembered) >= REMEMBERED_MAX:
        _remembered.clear()
    _remembered[key] = (now + TOKEN_REMEMBERED_S, engine)
    return engine


def forget_engine_tokens(**_signal) -> None:
    """Read every token again at its next request: a token, a user or an engine
    changed (connected to their models' saves and deletes in ApiConfig.ready)."""
    _remembered.clear()


class EngineTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, reading the token's user and engine in one
    statement written once, at most once a second per engine and process: an
    engine sends a request every few seconds."""

    def authenticate_credentials(self, key: str):
        engine = remembered_engine(key)
        if engine is None:
            # Not an engine's token: DRF's own answer (401 for an unknown key; a
            # user that is no engine is refused by the view, 403).
            return super().authenticate_credentials(key)
        if not engine.user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        return engine.user, Token.from_db(
            engine._state.db, ["key", "user_id"], [key, engine.user_id]
        )


class EngineTokenScheme(OpenApiAuthenticationExtension):
    """The engines' token in the OpenAPI schema: a scheme of its own name."""

    target_class = "api.engines.auth.EngineTokenAuthentication"
    name = "engineTokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'An engine\'s token (`manage.py engines add NAME`), prefixed "Token "',
        }


ENGINE_AUTH = [EngineTokenAuthentication]
