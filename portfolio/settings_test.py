"""Settings for the test suite: the product's settings with fast hashing, mail kept in memory, and Celery run
in-process unless a real broker is configured."""

import os

os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("SECURE_HSTS_SECONDS", "0")
os.environ.setdefault("PORTEFEUILLE_VAR_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), "var", "test"))

from portfolio.settings import *  # noqa: E402,F403
from portfolio.settings import CELERY_BROKER_URL, STORAGES  # noqa: E402

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
LANGUAGE_CODE = "en"
# Without a real broker the suite runs tasks in-process; integration tests start a real worker when one is set.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "filesystem://"
