"""Production settings: the embedded defaults made safe to face a network.

`DJANGO_SECRET_KEY` is required; `DEBUG` is off; cookies are secure. Set
`REFINERY_BEHIND_TLS_PROXY=1` when a proxy terminates TLS and sets
`X-Forwarded-Proto`.
"""

import os

from django.core.exceptions import ImproperlyConfigured

from refinery.settings import *  # noqa: F403
from refinery.settings import env_bool, env_int, env_list

if not os.environ.get("DJANGO_SECRET_KEY"):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY must be set in production: generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = False
ALLOWED_HOSTS = env_list("REFINERY_ALLOWED_HOSTS")

SECURE_SSL_REDIRECT = env_bool("REFINERY_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = env_int("REFINERY_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("REFINERY_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if env_bool("REFINERY_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
