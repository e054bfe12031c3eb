"""Settings for Portefeuille, read from the environment.

The defaults run out of the box on a laptop (SQLite and a file-based Celery broker under ``var/``);
``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and Redis.
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTEFEUILLE_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"  # noqa: S105 - development only

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "portfolio.admin.PortefeuilleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_filters",
    "crm",
    "scoring",
    "prospecting",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
]

ROOT_URLCONF = "portfolio.urls"
WSGI_APPLICATION = "portfolio.wsgi.application"

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
                "django.template.context_processors.i18n",
                "crm.context_processors.user_role",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'portefeuille.sqlite3'}",
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web app, worker and beat share one file: wait for locks rather than fail at once.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
IS_POSTGRESQL = DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "crm:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "fr")
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"

# Uploads: Django's own limits stay as a backstop; each upload form checks its own size first.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# Security: HTTPS settings come from the environment so a deployment behind TLS can turn them on.
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER"):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Celery: a broker that needs no server by default (kombu's filesystem transport under var/).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = VAR_DIR / "celery" / "queue"
    _processed_dir = VAR_DIR / "celery" / "processed"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_processed_dir),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
# The recovery passes (portfolio.schedules, every JOBS_RECOVERY_INTERVAL_SECONDS) send again the message of a job
# still waiting for a worker after JOBS_REQUEUE_AFTER_SECONDS (a broker that lost it), JOBS_REQUEUE_ATTEMPTS times
# at most, one interval of JOBS_REQUEUE_AFTER_SECONDS apart; a job never picked up after that is failed.
JOBS_RECOVERY_INTERVAL_SECONDS = int(os.environ.get("JOBS_RECOVERY_INTERVAL_SECONDS", "300"))
JOBS_REQUEUE_AFTER_SECONDS = int(os.environ.get("JOBS_REQUEUE_AFTER_SECONDS", "600"))
JOBS_REQUEUE_ATTEMPTS = int(os.environ.get("JOBS_REQUEUE_ATTEMPTS", "3"))

# Product settings.
CRM_REPS_SEE_ONLY_OWN_CLIENTS = env_bool("CRM_REPS_SEE_ONLY_OWN_CLIENTS")
CRM_CLIENTS_PER_PAGE = int(os.environ.get("CRM_CLIENTS_PER_PAGE", "50"))
CRM_EXPORT_MAX_ROWS = int(os.environ.get("CRM_EXPORT_MAX_ROWS", "100000"))
# The client list counts matches up to this number and then says "more than".
CRM_LIST_COUNT_CAP = int(os.environ.get("CRM_LIST_COUNT_CAP", "10000"))
CRM_SEARCH_COUNT_CAP = int(os.environ.get("CRM_SEARCH_COUNT_CAP", "1000"))  # the same, for a text search
# The currency of every amount (ISO 4217 code), shown beside amounts written out in words.
CRM_CURRENCY = os.environ.get("CRM_CURRENCY", "EUR")
# Extension points of the CRM, filled by the other apps: crm itself imports none of them.
# Panels added to the client card: dotted paths of ``panel(request, client) -> {"template", "context"} | None``.
CRM_CARD_PANELS = ["scoring.panels.client_scores_panel", "scoring.panels.persona_suggestion_panel"]
# Panels added to the persona page: dotted paths of ``panel(request, persona) -> {"template", "context"} | None``.
CRM_PERSONA_PANELS = ["scoring.panels.persona_figures_panel"]
# The persona builder the persona list links to (a URL name; blank: no link).
CRM_PERSONA_BUILDER_URL = "scoring:persona-builder"
# The client list's FilterSet (also used by its export and the segments): crm.filters.ClientFilter or a subclass.
CRM_CLIENT_FILTERSET = "scoring.filters.ScoredClientFilter"
# Bulk actions on a selection of clients (crm.bulk): dotted paths of the action objects the menu offers.
CRM_BULK_ACTIONS = [
    "crm.bulk.ASSIGN_OWNER",
    "crm.bulk.ADD_TAG",
    "crm.bulk.REMOVE_TAG",
    "crm.bulk.SET_TIER",
    "crm.bulk.PLAN_FOLLOW_UPS",
    "crm.bulk.EXPORT",
]
CRM_BULK_UNDO_HOURS = int(os.environ.get("CRM_BULK_UNDO_HOURS", "24"))  # a bulk action can be undone this long
CRM_BULK_MAX_CLIENTS = int(os.environ.get("CRM_BULK_MAX_CLIENTS", "50000"))  # largest selection one action takes
# A larger selection (and the undo of an action that touched more clients) is applied by a worker, not the request.
CRM_BULK_INLINE_MAX = int(os.environ.get("CRM_BULK_INLINE_MAX", "2000"))
# An action still running after this long (longer than the task's time limit) has lost its worker: it is failed.
CRM_BULK_STALE_SECONDS = int(os.environ.get("CRM_BULK_STALE_SECONDS", str(30 * 60)))

EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "portefeuille@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# Follow-up reminders and the morning digest (crm.reminders). Reminders are rows in the database: the per-minute
# pass creates them for due follow-ups and sends them, so a missed tick or a broker outage only delays them.
SITE_URL = os.environ.get("SITE_URL", "http://127.0.0.1:8000").rstrip("/")  # links in emails
EMAIL_TIMEOUT = int(os.environ.get("EMAIL_TIMEOUT", "30"))  # seconds per SMTP operation: no send hangs forever
REMINDER_MAX_ATTEMPTS = int(os.environ.get("REMINDER_MAX_ATTEMPTS", "5"))
REMINDER_BACKOFF_SECONDS = int(os.environ.get("REMINDER_BACKOFF_SECONDS", "60"))  # doubled after each failure
REMINDER_BACKOFF_MAX_SECONDS = int(os.environ.get("REMINDER_BACKOFF_MAX_SECONDS", "3600"))
# A pass stops claiming after this long; a claim older than the timeout belongs to a worker that died. The timeout
# must exceed the pass time plus one slow send (a few EMAIL_TIMEOUTs), or a live worker's claim could be taken over.
REMINDER_PASS_SECONDS = int(os.environ.get("REMINDER_PASS_SECONDS", "50"))
REMINDER_CLAIM_TIMEOUT_SECONDS = int(os.environ.get("REMINDER_CLAIM_TIMEOUT_SECONDS", "600"))
# Follow-ups overdue for longer than this get no reminder of their own (the digest lists them).
REMINDER_LOOKBACK_HOURS = int(os.environ.get("REMINDER_LOOKBACK_HOURS", "24"))
# Local time of the morning digest; a pass within the window after it still sends the day's digest.
REMINDER_DIGEST_HOUR = int(os.environ.get("REMINDER_DIGEST_HOUR", "8"))
REMINDER_DIGEST_MINUTE = int(os.environ.get("REMINDER_DIGEST_MINUTE", "0"))
REMINDER_DIGEST_WINDOW_HOURS = int(os.environ.get("REMINDER_DIGEST_WINDOW_HOURS", "4"))
# The queue tasks go to when none is named, beat's periodic tasks included (a test worker listens on its own).
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")

# Campaigns, offers and events (prospecting).
# Campaign email leaves at most this many messages per second, shared by every worker; 0 sends without pause.
CAMPAIGN_SEND_RATE = float(os.environ.get("CAMPAIGN_SEND_RATE", "10"))
# Emails per send task.
CAMPAIGN_BATCH_SIZE = int(os.environ.get("CAMPAIGN_BATCH_SIZE", "100"))
# A purchase within this many days of a campaign email counts as a conversion of that email.
CAMPAIGN_CONVERSION_DAYS = int(os.environ.get("CAMPAIGN_CONVERSION_DAYS", "30"))
CAMPAIGN_FROM_EMAIL = os.environ.get("CAMPAIGN_FROM_EMAIL", DEFAULT_FROM_EMAIL)
# The client card's referrals panel.
CRM_CARD_PANELS = [*CRM_CARD_PANELS, "prospecting.panels.referrals_panel"]
# The persona page's channels panel: lead sources, campaigns and offers that worked for its members.
CRM_PERSONA_PANELS = [*CRM_PERSONA_PANELS, "prospecting.panels.persona_channels_panel"]
# What the campaigns cost and whom they reached, for the profitability per segment (scoring does not import prospecting).
SCORING_CAMPAIGN_COSTS = "prospecting.costs.campaign_costs"
# The "enrol in a campaign" bulk action.
CRM_BULK_ACTIONS = [*CRM_BULK_ACTIONS, "prospecting.bulk.ENROL_IN_CAMPAIGN"]

# Scoring runs (nightly RFM and CLV): analysis window, CLV inputs, lifecycle rules, history kept.
SCORING_WINDOW_MONTHS = int(os.environ.get("SCORING_WINDOW_MONTHS", "0"))  # purchases of the last N months; 0: all
SCORING_LIFESPAN_YEARS = float(os.environ.get("SCORING_LIFESPAN_YEARS", "3"))  # historical CLV's expected lifespan
SCORING_GROSS_MARGIN = float(os.environ.get("SCORING_GROSS_MARGIN", "0.3"))  # share of revenue kept, both CLVs
SCORING_ANNUAL_DISCOUNT_RATE = float(os.environ.get("SCORING_ANNUAL_DISCOUNT_RATE", "0.10"))  # predictive CLV
SCORING_TIME_UNIT_DAYS = int(os.environ.get("SCORING_TIME_UNIT_DAYS", "7"))  # BG/NBD time unit: 7 weeks, 1 days
# A client whose chance of being active is under the threshold, or who has not bought for that many days, is to
# reactivate.
SCORING_P_ALIVE_THRESHOLD = float(os.environ.get("SCORING_P_ALIVE_THRESHOLD", "0.3"))
SCORING_REACTIVATE_AFTER_DAYS = int(os.environ.get("SCORING_REACTIVATE_AFTER_DAYS", "365"))
# The models are fitted on at most this many clients (a fixed pseudo-random sample by client id; 0: all of them).
SCORING_FIT_MAX_CLIENTS = int(os.environ.get("SCORING_FIT_MAX_CLIENTS", "100000"))
SCORING_KEEP_RUNS = int(os.environ.get("SCORING_KEEP_RUNS", "12"))  # completed runs whose per-client scores are kept
SCORING_RUN_TIME_LIMIT = int(os.environ.get("SCORING_RUN_TIME_LIMIT", "3600"))  # seconds; a run older is stale
# The analysis page's profitability figures are cached this many seconds (per run, period and kind of group).
SCORING_PROFITABILITY_CACHE_SECONDS = int(os.environ.get("SCORING_PROFITABILITY_CACHE_SECONDS", "900"))
# A persona made from a larger cluster gets its members from a background task, not in the request.
SCORING_PERSONA_INLINE_ASSIGN_MAX = int(os.environ.get("SCORING_PERSONA_INLINE_ASSIGN_MAX", "5000"))

# Imports (prospecting): upload size limit checked before reading, rows per bulk write, dry-run rows kept for the
# preview page. A dead apply is failed as soon as its worker's PostgreSQL lock is free; on SQLite, after
# IMPORT_STALE_SECONDS (longer than the task's time limit).
IMPORT_MAX_BYTES = int(os.environ.get("IMPORT_MAX_BYTES", str(50 * 1024 * 1024)))
IMPORT_BATCH_SIZE = int(os.environ.get("IMPORT_BATCH_SIZE", "2000"))
IMPORT_PREVIEW_ROWS = int(os.environ.get("IMPORT_PREVIEW_ROWS", "1000"))
IMPORT_STALE_SECONDS = int(os.environ.get("IMPORT_STALE_SECONDS", str(45 * 60)))
# Files with more rows than this are previewed by a worker (the page polls), smaller ones within the request.
PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = int(os.environ.get("PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS", "5000"))
