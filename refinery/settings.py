"""Settings for the Data Refinery, read from the environment.

The defaults are the embedded deployment: SQLite, storage folders and local
worker processes under `REFINERY_HOME`. A cluster sets `DATABASE_URL`, S3
storage and `REFINERY_DISPATCHER=nomad`. Production runs with
`DJANGO_SETTINGS_MODULE=refinery.settings_production`.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from refinery.database_url import parse_database_url, sqlite_database

BASE_DIR = Path(__file__).resolve().parent.parent


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


REFINERY_HOME = Path(os.environ.get("REFINERY_HOME") or BASE_DIR / "var").resolve()

SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "embedded-only-not-secret-" + "refinery-development-key-0123456789"
)
# Django's debug pages show code and settings to anyone who can make an error:
# only for development, and only when asked for (REFINERY_DEBUG=1).
DEBUG = env_bool("REFINERY_DEBUG", False)
ALLOWED_HOSTS = env_list("REFINERY_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "common",
    "runner",
    "surveyor",
    "downloaders",
    "processors",
    "foreman",
    "api",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "refinery.urls"
WSGI_APPLICATION = "refinery.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": parse_database_url(os.environ["DATABASE_URL"])}
else:
    REFINERY_HOME.mkdir(parents=True, exist_ok=True)
    DATABASES = {"default": sqlite_database(REFINERY_HOME / "refinery.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# Dates with seconds and the time zone everywhere (refinery/formats/en/formats.py).
FORMAT_MODULE_PATH = ["refinery.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = REFINERY_HOME / "static"

# --- storage -----------------------------------------------------------------
REFINERY_TEMP_STORAGE = os.environ.get("REFINERY_TEMP_STORAGE") or str(
    REFINERY_HOME / "storage" / "temp"
)
REFINERY_PERMANENT_STORAGE = os.environ.get("REFINERY_PERMANENT_STORAGE") or str(
    REFINERY_HOME / "storage" / "permanent"
)
# Files larger than this go to S3 in parts of this size.
REFINERY_S3_PART_SIZE = env_int("REFINERY_S3_PART_SIZE", 16 * 1024 * 1024)
# Where jobs get a scratch directory of their own.
REFINERY_WORK_DIR = Path(os.environ.get("REFINERY_WORK_DIR") or REFINERY_HOME / "work")
REFINERY_LOG_SPOOL = REFINERY_HOME / "logs"

# --- dispatch and jobs -------------------------------------------------------
REFINERY_DISPATCHER = os.environ.get("REFINERY_DISPATCHER", "local")
if REFINERY_DISPATCHER not in ("local", "nomad"):
    raise ImproperlyConfigured(
        f"REFINERY_DISPATCHER must be 'local' or 'nomad', not {REFINERY_DISPATCHER!r}"
    )
REFINERY_MAX_RETRIES = env_int("REFINERY_MAX_RETRIES", 2)
REFINERY_HEARTBEAT_LEASE_S = env_int("REFINERY_HEARTBEAT_LEASE_S", 60)
# Wall-clock limit of one attempt, per job kind, in seconds.
REFINERY_RUNTIME_LIMITS_S = {
    "survey": env_int("REFINERY_SURVEY_RUNTIME_LIMIT_S", 6 * 3600),
    "downloader": env_int("REFINERY_DOWNLOADER_RUNTIME_LIMIT_S", 12 * 3600),
    "processor": env_int("REFINERY_PROCESSOR_RUNTIME_LIMIT_S", 24 * 3600),
}
# How long a stopping worker waits for a child after SIGTERM before SIGKILL.
REFINERY_KILL_GRACE_S = env_int("REFINERY_KILL_GRACE_S", 10)
REFINERY_WORKER_POLL_S = float(os.environ.get("REFINERY_WORKER_POLL_S", "0.5"))

# --- sources -----------------------------------------------------------------
ENSEMBL_REST_URL = os.environ.get("ENSEMBL_REST_URL", "https://rest.ensembl.org")
ENSEMBL_FTP_URL = os.environ.get("ENSEMBL_FTP_URL", "https://ftp.ensembl.org/pub")
ENSEMBL_GENOMES_FTP_URL = os.environ.get(
    "ENSEMBL_GENOMES_FTP_URL", "https://ftp.ensemblgenomes.ebi.ac.uk/pub"
)
# ENA's Portal API (the `filereport` endpoint lives under it) and the HTTPS base that
# serves the paths ENA lists in `fastq_ftp` (their `ftp.sra.ebi.ac.uk` host is replaced).
ENA_PORTAL_URL = os.environ.get("ENA_PORTAL_URL", "https://www.ebi.ac.uk/ena/portal/api")
ENA_FASTQ_URL = os.environ.get("ENA_FASTQ_URL", "https://ftp.sra.ebi.ac.uk")
# A quantification mapping fewer reads than this share is marked low quality.
REFINERY_MIN_MAPPING_RATE = float(os.environ.get("REFINERY_MIN_MAPPING_RATE", "0.2"))
REFINERY_HTTP_TIMEOUT_S = env_int("REFINERY_HTTP_TIMEOUT_S", 60)
# The first wait before a source's transient failure (5xx, 429, a timeout) is tried
# again; each later wait doubles (at most 10 s), four attempts in all.
REFINERY_HTTP_RETRY_WAIT_S = float(os.environ.get("REFINERY_HTTP_RETRY_WAIT_S", "1"))
# A source's redirects stay on its own host, or go to one of these (exact names, or
# ".example.org" for that domain's hosts). Loopback, private and link-local addresses
# stay refused unless the source's own host is one (see common/source_http.py).
REFINERY_SOURCE_REDIRECT_HOSTS = env_list("REFINERY_SOURCE_REDIRECT_HOSTS")
# The largest REST answer or listing (CHECKSUMS, species tables) read from a source.
REFINERY_MAX_RESPONSE_BYTES = env_int("REFINERY_MAX_RESPONSE_BYTES", 16 * 1024 * 1024)

# --- notifications -------------------------------------------------------------
ADMINS = [("Refinery operator", address) for address in env_list("REFINERY_ADMINS")]
REFINERY_NOTIFY_WEBHOOK = os.environ.get("REFINERY_NOTIFY_WEBHOOK", "")
EMAIL_HOST = os.environ.get("REFINERY_EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("REFINERY_EMAIL_PORT", 25)
DEFAULT_FROM_EMAIL = os.environ.get("REFINERY_EMAIL_FROM", "refinery@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- the lab's own sequencers -------------------------------------------------------
# A run's completion marker must be this old (by ctime: a copy to NFS keeps mtime).
REFINERY_ILLUMINA_GRACE_S = env_int("REFINERY_ILLUMINA_GRACE_S", 900)
# Globs (relative to the run folder) the run archive leaves out, e.g. "Thumbnail_Images/*".
REFINERY_ILLUMINA_ARCHIVE_EXCLUDE = env_list("REFINERY_ILLUMINA_ARCHIVE_EXCLUDE")
# How run archives are compressed: "zstd" (default: multi-threaded, fast at level 1)
# or "gzip" (through isal when installed, for tools that only read gzip).
REFINERY_ARCHIVE_CODEC = os.environ.get("REFINERY_ARCHIVE_CODEC", "zstd")
# Each gets a signed JSON POST on every change of a run's state (see the README).
REFINERY_RUN_WEBHOOKS = env_list("REFINERY_RUN_WEBHOOKS")
REFINERY_WEBHOOK_SECRET = os.environ.get("REFINERY_WEBHOOK_SECRET", "")
# Seconds to wait for a webhook to connect, and then to answer.
REFINERY_WEBHOOK_TIMEOUT_S = env_int("REFINERY_WEBHOOK_TIMEOUT_S", 10)
# A failed delivery is tried again after this many seconds, then twice as long each
# time (at most an hour), and given up after REFINERY_WEBHOOK_MAX_ATTEMPTS attempts
# or once its change is older than REFINERY_WEBHOOK_GIVE_UP_S.
REFINERY_WEBHOOK_RETRY_S = env_int("REFINERY_WEBHOOK_RETRY_S", 30)
REFINERY_WEBHOOK_MAX_ATTEMPTS = env_int("REFINERY_WEBHOOK_MAX_ATTEMPTS", 50)
REFINERY_WEBHOOK_GIVE_UP_S = env_int("REFINERY_WEBHOOK_GIVE_UP_S", 24 * 3600)
# Where people reach this refinery's web pages: the webhooks' links start with it.
REFINERY_PUBLIC_URL = os.environ.get("REFINERY_PUBLIC_URL", "http://127.0.0.1:8000")
# bcl2fastq pipeline: which converter ("auto", "builtin", "bcl-convert", "bcl2fastq"),
# and whether clusters that failed the filter are written too.
REFINERY_BCL_ENGINE = os.environ.get("REFINERY_BCL_ENGINE", "auto")
REFINERY_BCL_INCLUDE_NON_PF = env_bool("REFINERY_BCL_INCLUDE_NON_PF", False)
# Nanopore: complete pod5 files per batch, and the basecaller.
REFINERY_POD5_BATCH_FILES = env_int("REFINERY_POD5_BATCH_FILES", 10)
REFINERY_DORADO = os.environ.get("REFINERY_DORADO", "dorado")
REFINERY_DORADO_MODEL = os.environ.get("REFINERY_DORADO_MODEL", "hac")
REFINERY_DORADO_OUTPUT = os.environ.get("REFINERY_DORADO_OUTPUT", "fastq")
# Basecalling engines (GPU servers that pull work over the API, api/engines/): with
# local storage, each assigned job's pod5 files are links in ASSIGNED_<job>_<engine>/
# under this folder (the engines mount it at the same path); at most this many jobs
# are handed out by one assign.
REFINERY_ENGINE_ASSIGNED_DIR = Path(
    os.environ.get("REFINERY_ENGINE_ASSIGNED_DIR") or REFINERY_HOME / "engines"
)
REFINERY_ENGINE_MAX_BATCH = env_int("REFINERY_ENGINE_MAX_BATCH", 16)
# Pipelines kept for engines (comma-separated, for example `basecalling` when the GPU
# servers are outside the Nomad cluster): their jobs wait in the database for an
# engine instead of being sent to the dispatcher. Engines never take jobs that
# were sent to a cluster.
REFINERY_ENGINE_PIPELINES = env_list("REFINERY_ENGINE_PIPELINES", "")

# --- foreman -------------------------------------------------------------------
# The Foreman's loop (`manage.py foreman`): seconds between passes, and how many
# jobs one query of a pass reads at a time.
REFINERY_FOREMAN_INTERVAL_S = float(os.environ.get("REFINERY_FOREMAN_INTERVAL_S", "15"))
REFINERY_FOREMAN_PAGE_SIZE = env_int("REFINERY_FOREMAN_PAGE_SIZE", 500)
# Caps on dispatched, unfinished jobs (queued + running): in total, and per kind.
# Downloaders have their own, smaller cap so the archives are not overloaded.
# Jobs over a cap stay `created` in the database until the Foreman has room.
REFINERY_MAX_QUEUED_JOBS = env_int("REFINERY_MAX_QUEUED_JOBS", 5000)
REFINERY_MAX_QUEUED_BY_KIND = {
    "survey": env_int("REFINERY_MAX_QUEUED_SURVEYS", 100),
    "downloader": env_int("REFINERY_MAX_QUEUED_DOWNLOADERS", 500),
    "processor": env_int("REFINERY_MAX_QUEUED_PROCESSORS", 5000),
}
# RAM ladders (MB): a retry of an attempt that the kernel killed (exit 137) or that
# died without a reason after it started takes the next step up. Keyed by kind,
# then pipeline (processors) or task (downloaders); "default" covers the rest.
# REFINERY_RAM_LADDERS_MB may hold JSON of the same shape to replace this.
_INDEX_LADDER_MB = [4096, 8192, 12288, 16384, 32768, 65536]
REFINERY_RAM_LADDERS_MB = {
    "survey": {"default": [1024, 2048, 4096]},
    "downloader": {"default": [1024, 4096, 16384]},
    "processor": {
        "transcriptome_index_long": _INDEX_LADDER_MB,
        "transcriptome_index_short": _INDEX_LADDER_MB,
        # Dorado: a retry after "CUDA out of memory" goes one step up, to a larger
        # REFINERY_PROCESSOR_GPU_<RAM> tier.
        "basecalling": [8192, 16384, 32768, 65536],
        "default": [1024, 2048, 4096, 8192, 16384],
    },
}
if os.environ.get("REFINERY_RAM_LADDERS_MB"):
    import json as _json

    try:
        REFINERY_RAM_LADDERS_MB = _json.loads(os.environ["REFINERY_RAM_LADDERS_MB"])
    except ValueError as _error:
        raise ImproperlyConfigured(f"REFINERY_RAM_LADDERS_MB is not JSON: {_error}") from None
# Seconds to wait for the SMTP server or the webhook when telling operators.
REFINERY_NOTIFY_TIMEOUT_S = env_int("REFINERY_NOTIFY_TIMEOUT_S", 10)
# --- end foreman ---------------------------------------------------------------

# --- nomad ---------------------------------------------------------------------
# Cluster mode (REFINERY_DISPATCHER=nomad): runner/nomad/dispatcher.py dispatches
# the job specifications that runner/nomad/specs.py generates (`manage.py nomad`).
import json as _json  # noqa: E402

# The Nomad API, from python-nomad's own variables.
REFINERY_NOMAD_ADDR = os.environ.get("NOMAD_ADDR") or "http://127.0.0.1:4646"
REFINERY_NOMAD_TOKEN = os.environ.get("NOMAD_TOKEN") or ""
REFINERY_NOMAD_NAMESPACE = os.environ.get("NOMAD_NAMESPACE") or ""
REFINERY_NOMAD_REGION = os.environ.get("NOMAD_REGION") or ""
REFINERY_NOMAD_CACERT = os.environ.get("NOMAD_CACERT") or ""
# Seconds to wait for one answer of the Nomad API.
REFINERY_NOMAD_TIMEOUT_S = float(os.environ.get("REFINERY_NOMAD_TIMEOUT_S") or "10")
# Images are <registry>/refinery-<image>:<tag>, as docker/build.sh names them.
REFINERY_NOMAD_REGISTRY = (os.environ.get("REFINERY_NOMAD_REGISTRY") or "").rstrip("/")
REFINERY_NOMAD_IMAGE_TAG = os.environ.get("REFINERY_NOMAD_IMAGE_TAG") or "latest"
REFINERY_NOMAD_IMAGES = {
    "survey": "downloaders",
    "downloader": "downloaders",
    "processor": "transcriptome",
    "foreman": "foreman",
}
REFINERY_NOMAD_DATACENTERS = env_list("REFINERY_NOMAD_DATACENTERS", "dc1")
# CPU (MHz) of one task, per job kind and for the Foreman's service job.
REFINERY_NOMAD_CPU_MHZ = {
    "survey": env_int("REFINERY_NOMAD_SURVEY_CPU_MHZ", 500),
    "downloader": env_int("REFINERY_NOMAD_DOWNLOADER_CPU_MHZ", 1000),
    "processor": env_int("REFINERY_NOMAD_PROCESSOR_CPU_MHZ", 2000),
    "foreman": env_int("REFINERY_NOMAD_FOREMAN_CPU_MHZ", 500),
}
REFINERY_NOMAD_FOREMAN_RAM_MB = env_int("REFINERY_NOMAD_FOREMAN_RAM_MB", 1024)
REFINERY_NOMAD_SCHEDULED_SURVEY_RAM_MB = env_int("REFINERY_NOMAD_SCHEDULED_SURVEY_RAM_MB", 512)
# RAM tiers (MB) per job kind: one parameterized job REFINERY_<KIND>_<RAM> each; a
# job goes to the smallest tier that holds its ram_mb. By default every step of
# the RAM ladders above is a tier. REFINERY_NOMAD_RAM_TIERS_MB may hold JSON
# ({"processor": [1024, 4096], ...}) to replace them.
REFINERY_NOMAD_RAM_TIERS_MB = {
    kind: sorted({int(mb) for ladder in ladders.values() for mb in ladder} | {1024})
    for kind, ladders in REFINERY_RAM_LADDERS_MB.items()
}
if os.environ.get("REFINERY_NOMAD_RAM_TIERS_MB"):
    try:
        REFINERY_NOMAD_RAM_TIERS_MB = _json.loads(os.environ["REFINERY_NOMAD_RAM_TIERS_MB"])
    except ValueError as _error:
        raise ImproperlyConfigured(f"REFINERY_NOMAD_RAM_TIERS_MB is not JSON: {_error}") from None
# Processor pipelines that need a GPU: their jobs go to REFINERY_PROCESSOR_GPU_<RAM>,
# which asks Nomad for one nvidia/gpu device. Basecalling (Dorado) does.
REFINERY_NOMAD_GPU_PIPELINES = env_list("REFINERY_NOMAD_GPU_PIPELINES", "basecalling")
# Seconds Nomad waits after SIGTERM before SIGKILL (run_job needs
# REFINERY_KILL_GRACE_S to stop its job; Nomad clients allow at most 30 s by default).
REFINERY_NOMAD_KILL_TIMEOUT_S = env_int("REFINERY_NOMAD_KILL_TIMEOUT_S", 30)
# The clients' host volume for scratch space, mounted at REFINERY_HOME in the
# tasks ("" for none).
REFINERY_NOMAD_HOST_VOLUME = os.environ.get("REFINERY_NOMAD_HOST_VOLUME", "refinery-data")
REFINERY_NOMAD_TASK_HOME = "/var/lib/refinery"
# Names of further environment variables to copy into the tasks (comma-separated);
# see runner/nomad/specs.py for the ones always copied.
REFINERY_NOMAD_TASK_ENV = env_list("REFINERY_NOMAD_TASK_ENV")
# Run the Foreman as the Nomad service job REFINERY_FOREMAN (`nomad register`).
REFINERY_NOMAD_RUN_FOREMAN = env_bool("REFINERY_NOMAD_RUN_FOREMAN", True)
# A dispatched job Nomad could not place for this long (FailedTGAllocs) is
# unplaceable, not merely waiting for room.
REFINERY_NOMAD_PLACEMENT_TIMEOUT_S = env_int("REFINERY_NOMAD_PLACEMENT_TIMEOUT_S", 6 * 3600)
# Surveys Nomad runs on a schedule, one periodic batch job each: JSON, a list of
# {"name": "yeast", "cron": "0 3 * * 1", "args": ["ensembl", "--division", ...]}
# where args are those of `manage.py survey` (the survey is queued as a job).
try:
    REFINERY_SCHEDULED_SURVEYS = _json.loads(os.environ.get("REFINERY_SCHEDULED_SURVEYS") or "[]")
except ValueError as _error:
    raise ImproperlyConfigured(f"REFINERY_SCHEDULED_SURVEYS is not JSON: {_error}") from None
REFINERY_SCHEDULED_SURVEYS_TIME_ZONE = os.environ.get("REFINERY_SCHEDULED_SURVEYS_TIME_ZONE", "UTC")
# Watchers Nomad runs as service jobs REFINERY_WATCH_<NAME>: JSON, a list of
# {"name": "novaseq", "args": ["illumina_runs", "/runs/novaseq"], "volume": "sequencers",
#  "mount": "/runs"} where args are those of `manage.py watch`, and the optional
# host volume `volume` is mounted read-only at `mount` (where the instruments' share is).
try:
    REFINERY_NOMAD_WATCHES = _json.loads(os.environ.get("REFINERY_NOMAD_WATCHES") or "[]")
except ValueError as _error:
    raise ImproperlyConfigured(f"REFINERY_NOMAD_WATCHES is not JSON: {_error}") from None
REFINERY_NOMAD_WATCH_RAM_MB = env_int("REFINERY_NOMAD_WATCH_RAM_MB", 512)
# --- end nomad -----------------------------------------------------------------

# --- the REST API ----------------------------------------------------------------
# The most rows one page of a list holds, however many `?limit=` asks for.
REFINERY_API_MAX_PAGE_SIZE = env_int("REFINERY_API_MAX_PAGE_SIZE", 1000)
if REFINERY_API_MAX_PAGE_SIZE < 1:
    raise ImproperlyConfigured("REFINERY_API_MAX_PAGE_SIZE must be at least 1")
REST_FRAMEWORK = {
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "PAGE_SIZE": 100,
    "DEFAULT_FILTER_BACKENDS": ["api.filters.FilterBackend"],
    # `?format=` is a filter of /api/results/, not a choice of renderer: a client
    # chooses JSON or the browsable API with its Accept header.
    "URL_FORMAT_OVERRIDE": None,
    # Reading is open; writing (asking for a dataset) needs a session or a token
    # (`manage.py drf_create_token USER` prints one).
    # Token first: an anonymous write is answered 401 with `WWW-Authenticate: Token`.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "datasets": os.environ.get("REFINERY_API_DATASET_RATE", "100/hour"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI schema at /api/schema/, and Swagger UI at /api/docs/ served from this
# server (the sidecar's files: no CDN, works offline).
SPECTACULAR_SETTINGS = {
    "TITLE": "Data Refinery",
    "DESCRIPTION": "Organisms, transcriptome indices, results and their downloads, batches, "
    "samples, studies, datasets, job history, statistics and the lab's sequencing runs.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name for each set of choices that several fields share.
    "ENUM_NAME_OVERRIDES": {
        "JobStateEnum": "common.models.jobs.JobState",
        "RunStateEnum": "common.models.runs.RunState",
        "ProcessorPipelineEnum": "common.models.choices.ProcessorPipeline",
    },
}
# Results (indices, archives, FASTQ, datasets) may be downloaded by authenticated
# users only, unless this says they are public; S3 downloads are presigned URLs
# valid this long.
REFINERY_PUBLIC_DOWNLOADS = env_bool("REFINERY_PUBLIC_DOWNLOADS", False)
REFINERY_DOWNLOAD_URL_EXPIRES_S = env_int("REFINERY_DOWNLOAD_URL_EXPIRES_S", 3600)
# The most samples and experiments one dataset may name.
REFINERY_DATASET_MAX_SAMPLES = env_int("REFINERY_DATASET_MAX_SAMPLES", 5000)

# Error reports (the debug page, the admins' email) and logs mask secrets by one
# rule: common/secrets.py.
DEFAULT_EXCEPTION_REPORTER = "common.secrets.ExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "common.secrets.ExceptionReporterFilter"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "common.secrets.RedactSecretsFilter"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        },
        # Django's own handlers, with the secrets masked.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": ["redact_secrets"],
        },
        "mail_admins": {
            "level": "ERROR",
            "class": "common.secrets.AdminEmailHandler",
            "filters": ["require_debug_false"],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("REFINERY_LOG_LEVEL", "INFO")},
    "loggers": {
        # Replaces Django's default handlers (its console one prints unmasked).
        "django": {"handlers": ["mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        "urllib3": {"level": "WARNING"},
    },
}
