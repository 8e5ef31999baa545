"""The test suite's settings: production settings plus what a test run needs."""

import os

os.environ.setdefault(
    "SECRET_KEY", "test-only-secret-key-with-enough-length-and-entropy-0123456789"
)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# A queue of this run's own, inherited by the worker processes the integration tests start.
os.environ.setdefault("CELERY_TASK_DEFAULT_QUEUE", f"marlin-test-{os.getpid()}")

from marlin.settings import *  # noqa: F403
from marlin.settings import CACHES, REST_FRAMEWORK, STATIC_ROOT

CELERY_TASK_DEFAULT_QUEUE = os.environ["CELERY_TASK_DEFAULT_QUEUE"]
CACHES["default"]["KEY_PREFIX"] = CELERY_TASK_DEFAULT_QUEUE
# Fast hashing: the suite creates many users; production keeps Django's default hasher.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    "anon": "1000/min",
    "user": "100000/min",
    **{
        f"role_{role}": "100000/min"
        for role in ("author", "reviewer", "arbiter", "auditor", "lead")
    },
    "login": "5/min",
}
# Static files come from the apps' folders; no collectstatic before a test run.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
