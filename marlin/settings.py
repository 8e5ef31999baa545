"""Settings for every environment, read from environment variables with safe local defaults.

Production sets DEBUG=false, SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
"""

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_int_or_off, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
_LOCAL_SECRET = "insecure-local-only-secret-key-never-used-in-production"
SECRET_KEY = env_str("SECRET_KEY", _LOCAL_SECRET if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is false")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_fsm",
    "django_htmx",
    "accounts",
    "audit",
    "idempotency",
    "tasks",
    "reviews",
    "rubrics",
    "web",
    "operations",
]

MIDDLEWARE = [
    "core.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "marlin.urls"
WSGI_APPLICATION = "marlin.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
# The web workspace signs people in with sessions; the API also takes tokens.
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "web:login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

# PostgreSQL is the only database: the audit trail, the queue and the locks rely on it.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://marlin@127.0.0.1:54329/marlin"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
# A database that does not answer fails the request (503) within this, instead of hanging it.
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = env_int("DB_CONNECT_TIMEOUT", 5)
# Server-side binding lets psycopg prepare the statements a connection runs again and again, and
# PostgreSQL then reuses their plans: planning was about half of the database's time in a review.
# Statements are prepared from their second run (psycopg waits for the sixth by default); never
# from the first, which may hold several statements (a migration's RunSQL) that cannot be.
# "off" for a pooler that hands one server session to several clients' transactions (PgBouncer
# in transaction mode before 1.21, or without max_prepared_statements).
DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env_int_or_off("DB_PREPARE_THRESHOLD", 1)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL")
DATABASES["default"]["TEST"] = {"NAME": env_str("TEST_DATABASE_NAME", "test_marlin")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Request bodies beyond this are refused with a 400 (prompts and reviews are far smaller).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("MAX_REQUEST_BYTES", 2 * 1024 * 1024)

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# Security: strict whenever DEBUG is off (production sits behind a TLS-terminating proxy).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.errors.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.AnonRateThrottle",
        "core.throttling.RoleRateThrottle",
        "rest_framework.throttling.ScopedRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("THROTTLE_ANON", "60/min"),
        "user": env_str("THROTTLE_USER", "600/min"),
        "role_author": env_str("THROTTLE_AUTHOR", "600/min"),
        "role_reviewer": env_str("THROTTLE_REVIEWER", "600/min"),
        "role_arbiter": env_str("THROTTLE_ARBITER", "600/min"),
        "role_auditor": env_str("THROTTLE_AUDITOR", "1200/min"),
        "role_lead": env_str("THROTTLE_LEAD", "2400/min"),
        "login": env_str("THROTTLE_LOGIN", "10/min"),
    },
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Marlin API",
    "DESCRIPTION": "Expert review of AI-generated code: author, reviewers, arbiter, auditor.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.add_error_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "TaskStateEnum": "tasks.models.TaskState",
        "CandidateStateEnum": "tasks.models.CandidateState",
        "AssignmentStateEnum": "reviews.models.AssignmentState",
        "ArbitrationStateEnum": "reviews.models.ArbitrationState",
        "TaskKindEnum": "tasks.models.Task.Kind",
        "WorkLogStateEnum": "reviews.models.WorkLogState",
        "WorkLogKindEnum": "reviews.models.WorkLogKind",
    },
}

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:63799/0")
# The cache holds throttle counters and the blinded turns reviewers read
# (`reviews.selectors.attach_blind_turns`): while Redis is down it answers as empty (throttles
# let requests through, turns are read from the database) instead of failing requests that need
# nothing but the database.
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("CACHE_KEY_PREFIX", "marlin"),
        "OPTIONS": {
            "IGNORE_EXCEPTIONS": True,
            "SOCKET_CONNECT_TIMEOUT": 0.5,
            "SOCKET_TIMEOUT": 0.5,
        },
    }
}
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_RESULT_EXPIRES = 3600
# Longer than the longest job, so a slow job is not redelivered while it still runs.
# The socket timeouts bound a publish to an unreachable broker (without them it waits forever);
# the worker's BRPOP answers every second, well within them.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A request that queues work waits at most about 2 s for a broker that is down; the work is then
# left to the sweep (tasks.generation.dispatch_on_commit).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_TASK_ALWAYS_EAGER = False
# Celery's Django fixup closes every database connection around each job unless this is set;
# reconnecting cost each generation job about 13 ms and 28 ms of PostgreSQL CPU. The job
# signals in celery_app.py still close connections that are too old or broken.
CELERY_DB_REUSE_MAX = env_int("CELERY_DB_REUSE_MAX", 1000)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "core.logging.ContextFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "at", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["context"]}
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Requests are logged once by marlin.request; Django adds tracebacks of 500s only.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "celery": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
    },
}

# Generation of candidates by the model providers.
GENERATION_TIMEOUT_SECONDS = float(env_int("GENERATION_TIMEOUT_SECONDS", 120))
GENERATION_MAX_ATTEMPTS = env_int("GENERATION_MAX_ATTEMPTS", 5)
GENERATION_BACKOFF_BASE = float(env_str("GENERATION_BACKOFF_BASE", "1.0"))
GENERATION_BACKOFF_MAX = float(env_str("GENERATION_BACKOFF_MAX", "60"))
# Longer than a provider call plus the longest backoff, so live work is never swept.
GENERATION_STUCK_AFTER_SECONDS = env_int("GENERATION_STUCK_AFTER_SECONDS", 300)
REPLAY_RECORDINGS_DIR = Path(
    env_str("REPLAY_RECORDINGS_DIR", str(BASE_DIR / "demo" / "recordings"))
)
REPLAY_RECORD_TO = env_str("REPLAY_RECORD_TO", "") or None
CELERY_BEAT_SCHEDULE = {
    "expire-review-assignments": {"task": "reviews.expire_assignments", "schedule": 60.0},
    "prune-idempotency-keys": {"task": "idempotency.prune", "schedule": 3600.0},
    "seal-audit-trail": {"task": "audit.seal", "schedule": 10.0},
    "sweep-stuck-candidates": {
        "task": "tasks.sweep_stuck_candidates",
        "schedule": float(env_int("GENERATION_SWEEP_EVERY_SECONDS", 30)),
    },
    "sweep-overdue-evidence": {
        "task": "tasks.sweep_overdue_evidence",
        "schedule": float(env_int("EVIDENCE_SWEEP_EVERY_SECONDS", 60)),
    },
}

# Executable evidence: each candidate's change applied and checked in a sandbox (tasks/evidence).
# Work trees and the repository cache live under EVIDENCE_DIR.
EVIDENCE_DIR = Path(env_str("EVIDENCE_DIR", "/tmp/marlin-evidence"))  # noqa: S108
EVIDENCE_CACHE_MAX_BYTES = env_int("EVIDENCE_CACHE_MAX_MB", 2048) * 1024**2
EVIDENCE_CPU_SECONDS = env_int("EVIDENCE_CPU_SECONDS", 300)
# A run's deadline, after which the sweep sends its job again: longer than the longest run
# (EVIDENCE_CPU_SECONDS, a campaign's timeout) plus a queue's wait. Runs are bounded in number.
EVIDENCE_STUCK_AFTER_SECONDS = env_int("EVIDENCE_STUCK_AFTER_SECONDS", 900)
EVIDENCE_MAX_ATTEMPTS = env_int("EVIDENCE_MAX_ATTEMPTS", 3)
EVIDENCE_MEMORY_BYTES = env_int("EVIDENCE_MEMORY_MB", 2048) * 1024**2
EVIDENCE_MAX_PROCESSES = env_int("EVIDENCE_MAX_PROCESSES", 64)
EVIDENCE_MAX_FILE_BYTES = env_int("EVIDENCE_MAX_FILE_MB", 256) * 1024**2
EVIDENCE_MAX_OUTPUT_BYTES = env_int("EVIDENCE_MAX_OUTPUT_KB", 1024) * 1024
EVIDENCE_TMP_BYTES = env_int("EVIDENCE_TMP_MB", 256) * 1024**2
# One uid per running sandbox, from a range no real user holds.
EVIDENCE_SANDBOX_UID_BASE = env_int("EVIDENCE_SANDBOX_UID_BASE", 1_900_000_000)
EVIDENCE_SANDBOX_UIDS = env_int("EVIDENCE_SANDBOX_UIDS", 64)
# Read-only toolchain inside the sandbox (default: this Python and its virtualenv).
EVIDENCE_TOOLCHAIN = env_list("EVIDENCE_TOOLCHAIN", [])
