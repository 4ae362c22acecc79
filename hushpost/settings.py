"""Hushpost settings, read from ``HUSHPOST_*`` environment variables.

Defaults are the embedded ones (SQLite under the data directory, the dev
mailbox) but only in development mode; production mode (the default) refuses
to start on anything unsafe and says why, see :func:`_production_problems`.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONE, SELF

from hushpost.crypto.master import is_raw_key
from hushpost.lib import zones
from hushpost.lib.email_url import parse_email_url
from hushpost.lib.env import ConfigError, env, envbool, envint, envsecret
from hushpost.regions.config import load_regions

BASE_DIR = Path(__file__).resolve().parent

MODE = (env("MODE", "production") or "production").lower()
if MODE not in {"production", "development"}:
    raise ConfigError("HUSHPOST_MODE must be 'production' or 'development'")
PRODUCTION = MODE == "production"

DATA_DIR = Path(env("DATA_DIR", str(Path.cwd() / "var")) or "var").resolve()


def _dev_secret(filename: str) -> str:
    """In development a missing secret is generated once and kept in the data dir."""
    path = DATA_DIR / filename
    if path.exists():
        return path.read_text().strip()
    DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    value = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


DEBUG = envbool("DEBUG", False)

SECRET_KEY = envsecret("SECRET_KEY") or ("" if PRODUCTION else _dev_secret("secret.key"))
# Earlier secret keys, still accepted while a new one takes over (sessions, reset links,
# recovery codes): comma- or line-separated, inline or in a _FILE.
SECRET_KEY_FALLBACKS = [k.strip() for k in (envsecret("SECRET_KEY_FALLBACKS") or "").replace(",", "\n").splitlines()
                        if k.strip()]
# The master key wraps every organisation key; see hushpost/crypto/master.py.
MASTER_KEY = envsecret("MASTER_KEY") or ("" if PRODUCTION else _dev_secret("master.key"))
# Earlier master keys, still accepted while `hushpost keys rotate-master` re-wraps what they wrapped:
# comma- or line-separated, inline or in a _FILE.
MASTER_KEY_PREVIOUS = [k.strip() for k in (envsecret("MASTER_KEY_PREVIOUS") or "").replace(",", "\n").splitlines()
                       if k.strip()]

BASE_URL = (env("BASE_URL") or "http://" + (env("BIND", "127.0.0.1:8000") or "")).rstrip("/")
BIND = env("BIND", "127.0.0.1:8000")
# `hushpost serve`: gunicorn processes (0: two per core, plus one), threads in each, and the
# reverse proxies whose X-Forwarded-* headers it believes.
WEB_WORKERS = envint("WORKERS", 0)
WEB_THREADS = envint("THREADS", 4)
FORWARDED_ALLOW_IPS = env("FORWARDED_ALLOW_IPS", "127.0.0.1")

# The region this deployment serves, and every region's public URL.
REGION = (env("REGION", "local") or "local").lower()
REGIONS = load_regions(env("REGIONS_FILE"), REGION, BASE_URL)

EMAIL_URL = env("EMAIL_URL", "mailbox:") or "mailbox:"
_email = parse_email_url(EMAIL_URL)
EMAIL_BACKEND = _email.backend
EMAIL_HOST = _email.host
EMAIL_PORT = _email.port
EMAIL_HOST_USER = _email.username
EMAIL_HOST_PASSWORD = _email.password
EMAIL_USE_TLS = _email.use_tls
EMAIL_USE_SSL = _email.use_ssl
EMAIL_TIMEOUT = _email.timeout
DEV_MAILBOX_ENABLED = _email.is_mailbox and not PRODUCTION
DEFAULT_FROM_EMAIL = env("FROM_EMAIL", "no-reply@hushpost.localhost")


def _bounce_address(value: str | None) -> str:
    """Where delivery reports come back (``bounces@bounce.example``): each e-mail's envelope sender is
    this address with a tag after ``+``, so its local part must leave room for one (64 characters)."""
    if not value:
        return ""
    local, at, domain = value.strip().lower().rpartition("@")
    if not at or not local or "." not in domain or "+" in local or len(local) > 20 \
            or not re.fullmatch(r"[a-z0-9._-]+", local) or not re.fullmatch(r"[a-z0-9.-]+", domain):
        raise ConfigError(f"HUSHPOST_BOUNCE_ADDRESS must be an address such as bounces@bounce.example "
                          f"(a local part of at most 20 letters, digits, '.', '_' or '-', no '+'), "
                          f"not {value!r}")
    return f"{local}@{domain}"


# Every notification's envelope sender (Return-Path) is this address tagged per e-mail, and the
# gateway takes delivery reports sent to it (docs/gateway.md, "Bounces"). Empty: the From address.
BOUNCE_ADDRESS = _bounce_address(env("BOUNCE_ADDRESS"))
# The largest delivery report the gateway reads; a bigger one is refused.
BOUNCE_MAX_BYTES = envint("BOUNCE_MAX_BYTES", 256 * 1024)

_host = BASE_URL.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
ALLOWED_HOSTS = [h.strip() for h in (env("ALLOWED_HOSTS") or "").split(",") if h.strip()] or [
    _host,
    "127.0.0.1",
    "localhost",
]

INSTALLED_APPS = [
    # Without autodiscovery: the operators' site lists its models itself (hushpost/ops/admin.py).
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_tasks",
    "django_tasks_db",
    "csp",
    "hushpost.orgs",
    "hushpost.accounts",
    "hushpost.messaging",
    "hushpost.attachments",
    "hushpost.gateway",
    "hushpost.audit",
    "hushpost.notifications",
    "hushpost.senders",
    "hushpost.recipients",
    "hushpost.orgadmin",
    "hushpost.sso",
    "hushpost.scim",
    "hushpost.regions",
    "hushpost.retention",
    "hushpost.server",
    "hushpost.ops",
]

MIDDLEWARE = [
    "hushpost.server.health.HealthMiddleware",  # /healthz, /readyz: before host checks and redirects
    "hushpost.server.metrics.MetricsMiddleware",  # /metrics (token or network), and every request counted
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hushpost.audit.middleware.AuditClientMiddleware",
    "hushpost.attachments.middleware.AbortUnfinishedUploads",
    "hushpost.lib.csrf.HushpostCsrfMiddleware",
    "hushpost.lib.input.RefuseUnusableInput",
    "hushpost.accounts.middleware.AuthenticationMiddleware",  # the session row brings its account
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "hushpost.lib.middleware.ContentSecurityPolicyMiddleware",  # django-csp's, the header built once
    "hushpost.lib.middleware.PrivacyHeadersMiddleware",
    "hushpost.accounts.middleware.SessionLimitsMiddleware",
    "hushpost.accounts.middleware.PasswordChangeRequiredMiddleware",
    "hushpost.accounts.middleware.TwoFactorRequiredMiddleware",
    "hushpost.lib.zones.TimeZoneMiddleware",  # after the user and organisation are loaded
]

ROOT_URLCONF = "hushpost.urls"
WSGI_APPLICATION = "hushpost.wsgi.application"

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
                "hushpost.lib.context.hushpost",
            ],
        },
    },
]

_default_db = "sqlite:///" + str(DATA_DIR / "hushpost.sqlite3")
DATABASE_URL = env("DATABASE_URL", _default_db) or _default_db
_scheme = urlsplit(DATABASE_URL).scheme
if _scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
    # Only the scheme is echoed: the URL may hold a password.
    raise ConfigError(f"HUSHPOST_DATABASE_URL must start with postgres:// or sqlite:///, not {_scheme or '(nothing)'}://")
_db = dj_database_url.parse(DATABASE_URL, conn_max_age=600, conn_health_checks=True)
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while the worker writes; IMMEDIATE takes the
    # write lock at BEGIN so two writers queue instead of failing mid-transaction.
    # secure_delete overwrites what a write frees with zeros, so a purged message's
    # wrapped key does not linger in the file's free pages.
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;",
    }
if _db["ENGINE"] == "django.db.backends.postgresql":
    # The same backend; a kept connection is checked on its socket, not with a round trip.
    _db["ENGINE"] = "hushpost.lib.postgres"
    if envbool("DATABASE_PREPARED_STATEMENTS", True):
        # Values sent apart from the statement, and a statement run five times on a connection
        # prepared there: PostgreSQL then parses and plans each hot path's statements once per
        # connection instead of every time (a send's and an open's database CPU halved and more,
        # docs/benchmarks.md). Off for a connection pooler in transaction mode (PgBouncer's
        # before 1.21), which cannot keep a prepared statement with a connection.
        _db.setdefault("OPTIONS", {}).update({"server_side_binding": True, "prepare_threshold": 5})
DATABASES = {"default": _db}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["hushpost.accounts.backends.HushpostBackend"]
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    # Only for the temporary passwords in Password Notifications (99 random bits).
    "hushpost.accounts.passwords.TemporaryPasswordHasher",
]
LOGIN_URL = "/login"

TASKS = {"default": {"BACKEND": "hushpost.lib.tasks.DatabaseBackend"}}

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("TIME_ZONE", "UTC")
# The zone an organisation's pages and e-mails show times in until it sets its own (the Policy page)
# and an account chooses or a browser reports one (hushpost/lib/zones.py).
DEFAULT_TIME_ZONE = env("DEFAULT_TIME_ZONE", "UTC")
if not zones.valid(DEFAULT_TIME_ZONE):
    raise ConfigError(f"HUSHPOST_DEFAULT_TIME_ZONE must be a time zone such as Europe/Berlin, not {DEFAULT_TIME_ZONE!r}")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "hushpost.lib.static.StaticFiles"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = not PRODUCTION

# Sessions and cookies: HttpOnly everywhere, SameSite=Lax, Secure in production.
SESSION_COOKIE_NAME = "hushpost_session"
# The session table holds a keyed hash of each key, never the cookie's value.
SESSION_ENGINE = "hushpost.accounts.sessions"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_AGE = envint("SESSION_HOURS", 8) * 3600  # also the server-side lifetime
# Minutes without activity before a session ends (an organisation may set its own).
SENDER_IDLE_MINUTES = envint("SENDER_IDLE_MINUTES", 30)
RECIPIENT_IDLE_MINUTES = envint("RECIPIENT_IDLE_MINUTES", 15)
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", PRODUCTION)
CSRF_TRUSTED_ORIGINS = [BASE_URL] if BASE_URL.startswith("https://") else []
CSRF_FAILURE_VIEW = "hushpost.lib.views.csrf_failure"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "no-referrer"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
BEHIND_TLS_PROXY = envbool("BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = envint("HSTS_SECONDS", 31536000 if BASE_URL.startswith("https://") else 0)
# Whether every subdomain serves HTTPS, and whether to ask browsers to preload it, only the
# domain's owner knows: off unless they say so (and Django's reminders of them are not shown).
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = envbool("HSTS_PRELOAD", False)
# Behind the TLS proxy a plain-HTTP request is redirected (the proxy says which were HTTPS).
# /healthz and /readyz are answered before this, so probes by address still work.
SECURE_SSL_REDIRECT = BEHIND_TLS_PROXY and BASE_URL.startswith("https://")
SILENCED_SYSTEM_CHECKS = [
    "security.W003",  # CSRF: HushpostCsrfMiddleware is Django's, extended; hushpost.E001 checks it is there
    "security.W005", "security.W021",  # HSTS subdomains and preload: the settings above
]

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [NONE],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
        "frame-src": [NONE],
        "base-uri": [NONE],
        "object-src": [NONE],
    }
}

# Message limits and policy.
MAX_BODY_BYTES = envint("MAX_BODY_BYTES", 1_000_000)
MAX_RECIPIENTS = envint("MAX_RECIPIENTS", 50)
TEMP_PASSWORD_DAYS = envint("TEMP_PASSWORD_DAYS", 7)
# How long the one session a temporary password opens may take to choose a password.
TEMP_SESSION_MINUTES = envint("TEMP_SESSION_MINUTES", 30)
MIN_PASSWORD_LENGTH = 12
# "Forgot your password?" links work once, for this long.
PASSWORD_RESET_TIMEOUT = envint("RESET_LINK_MINUTES", 30) * 60
# A new sender's invitation: the link to choose their first password.
INVITATION_DAYS = envint("INVITATION_DAYS", 7)
# An admin's changes to accounts and policy ask for the password (and code) again after this long.
REAUTH_MINUTES = envint("REAUTH_MINUTES", 10)
# Brute force: failures per account name before it locks, and per client address.
LOCKOUT_FAILURES = envint("LOCKOUT_FAILURES", 5)
LOCKOUT_WINDOW_MINUTES = envint("LOCKOUT_WINDOW_MINUTES", 15)
LOCKOUT_MINUTES = envint("LOCKOUT_MINUTES", 15)
CLIENT_FAILURES = envint("CLIENT_FAILURES", 30)
# Look-ups that ask the other regions (login "Next", /find-my-portal), per client address per window.
LOOKUPS_PER_WINDOW = envint("LOOKUPS_PER_WINDOW", 30)
# /find-my-portal e-mails an address its portals at most once in this many minutes.
PORTAL_LIST_MINUTES = envint("PORTAL_LIST_MINUTES", 15)
# Seconds between delivery attempts of a notification; its length is the
# number of retries before a notification is marked failed.
# How long a worker's claim on a notification lasts if the worker stops
# answering (killed, or its machine gone): its e-mails go out from another
# worker within this long. One e-mail may take at most a third of it.
NOTIFY_LEASE_SECONDS = max(3, envint("NOTIFY_LEASE_SECONDS", 60))
# The worker runs the retention purge at most this often; the database's clock decides,
# across every worker on every machine (``hushpost.server.periodic``).
RETENTION_INTERVAL = max(1, envint("RETENTION_INTERVAL", 3600))
# The worker looks for reminders due (``messaging/reminders.py``) at most this often, the same way.
REMINDER_INTERVAL = max(1, envint("REMINDER_INTERVAL", 900))
# How often each worker asks the database whether a periodic job is due: the latest a job
# starts after it falls due, and one small UPDATE per worker each time.
PERIODIC_CHECK_SECONDS = max(1, envint("PERIODIC_CHECK_SECONDS", 30))
NOTIFY_RETRY_SCHEDULE = [
    int(s) for s in (env("NOTIFY_RETRY_SCHEDULE", "30,60,300,900,1800,3600,7200,14400") or "").split(",")
]

# Files: ciphertext only, in the data directory or S3-compatible storage.
FILE_STORAGE = {
    "kind": (env("STORAGE", "local") or "local").lower(),
    "root": str(Path(env("FILES_DIR", str(DATA_DIR / "files")) or DATA_DIR / "files")),
    "bucket": env("S3_BUCKET", "") or "",
    "endpoint_url": env("S3_ENDPOINT_URL", "") or "",
    "region": env("S3_REGION", "") or "",
    "access_key_id": env("S3_ACCESS_KEY_ID", "") or "",
    "secret_access_key": envsecret("S3_SECRET_ACCESS_KEY") or "",
}
if FILE_STORAGE["kind"] not in {"local", "s3"}:
    raise ConfigError("HUSHPOST_STORAGE must be local or s3")
if FILE_STORAGE["kind"] == "s3" and not FILE_STORAGE["bucket"]:
    raise ConfigError("HUSHPOST_STORAGE=s3 needs HUSHPOST_S3_BUCKET")
# Uploads are streamed through Hushpost's own handlers: attachments are encrypted as they
# arrive, the admin area's list of senders (256 KB at most) is read into memory; nothing
# is ever spooled to a plaintext temporary file.
FILE_UPLOAD_HANDLERS = ["hushpost.orgadmin.uploads.AdminUploadHandler",
                        "hushpost.attachments.uploads.EncryptingUploadHandler"]
# Draft uploads not attached to a message within this time are deleted.
UPLOAD_DRAFT_HOURS = envint("UPLOAD_DRAFT_HOURS", 24)

# `hushpost serve` (hushpost/server/worker.py): seconds a client has to send a request's
# headers; its body gets as long again plus a second per REQUEST_MIN_RATE bytes received.
REQUEST_TIMEOUT = envint("REQUEST_TIMEOUT", 10)
REQUEST_MIN_RATE = envint("REQUEST_MIN_RATE", 500)

# SMTP gateway (`hushpost smtpd`, docs/gateway.md): organisations' mail servers
# relay mail here and it becomes secure messages.  STARTTLS (and with it SMTP
# AUTH) needs a certificate and key; with one, TLS is required unless turned off.
SMTPD_BIND = env("SMTPD_BIND", "127.0.0.1:2525") or "127.0.0.1:2525"
SMTPD_HOSTNAME = env("SMTPD_HOSTNAME", "") or ""  # the name in the greeting; default the host's
SMTPD_TLS_CERT = env("SMTPD_TLS_CERT", "") or ""
SMTPD_TLS_KEY = env("SMTPD_TLS_KEY", "") or ""
SMTPD_REQUIRE_TLS = envbool("SMTPD_REQUIRE_TLS", True)
# Production refuses plain text on a non-loopback address unless this says it is a private network.
SMTPD_ALLOW_PLAINTEXT = envbool("SMTPD_ALLOW_PLAINTEXT", False)
SMTPD_MAX_BYTES = envint("SMTPD_MAX_BYTES", 150 * 1024 * 1024)
SMTPD_THREADS = envint("SMTPD_THREADS", 8)  # per process
# Gateway processes accepting on the one port (`hushpost smtpd --processes`), each up to a core.
SMTPD_PROCESSES = envint("SMTPD_PROCESSES", 1)
# CPU seconds a reader process may spend parsing one message, plus 0.1 s per MB of it.
SMTPD_READ_CPU_SECONDS = envint("SMTPD_READ_CPU_SECONDS", 5)
# Open connections in all and per client address (beyond them: 421), and seconds a session
# may sit without a command, or take to send its message.
SMTPD_MAX_CONNECTIONS = envint("SMTPD_MAX_CONNECTIONS", 200)
SMTPD_MAX_PER_CLIENT = envint("SMTPD_MAX_PER_CLIENT", 20)
SMTPD_IDLE_TIMEOUT = envint("SMTPD_IDLE_TIMEOUT", 300)
SMTPD_DATA_TIMEOUT = envint("SMTPD_DATA_TIMEOUT", 600)
# Answer DATA once the e-mail is committed to the spool (sealed, one INSERT) and let the worker
# store it; a refusal only parsing can find is then an e-mail to the sender rather than a 5xx.
# E-mails over SPOOL_MAX_BYTES are stored while the client waits, as with the spool off.
SMTPD_SPOOL = envbool("SMTPD_SPOOL", False)
SMTPD_SPOOL_MAX_BYTES = envint("SMTPD_SPOOL_MAX_BYTES", 4 * 1024 * 1024)
# E-mails an organisation may have waiting in the spool; past that they are stored while the
# client waits, so a flood is slowed to what storing costs rather than filling the database.
SMTPD_SPOOL_MAX_PENDING = envint("SMTPD_SPOOL_MAX_PENDING", 1000)
# A spooled e-mail that cannot be stored for this long (the file store down, say) is refused,
# and its sender told, as a mail server gives up on a message after days of retries.
SMTPD_SPOOL_GIVE_UP_SECONDS = envint("SMTPD_SPOOL_GIVE_UP_SECONDS", 5 * 24 * 3600)
# Stored and refused e-mails are kept (without their content) this long, so a relay's late
# retry of one is still answered "already received".
SMTPD_SPOOL_KEEP_SECONDS = envint("SMTPD_SPOOL_KEEP_SECONDS", 7 * 24 * 3600)

# Prometheus metrics (hushpost/server/metrics.py): every process of the deployment on this
# machine (serve's workers, worker, smtpd) counts into files here, and /metrics adds them up.
METRICS_DIR = Path(env("METRICS_DIR", str(DATA_DIR / "metrics")) or DATA_DIR / "metrics")
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(METRICS_DIR))  # read by prometheus_client at import
# Who may read /metrics: a bearer token, or a client address in these networks (loopback by default).
METRICS_TOKEN = envsecret("METRICS_TOKEN")
METRICS_NETWORKS = [n.strip() for n in (env("METRICS_NETWORKS", "127.0.0.1/32,::1/128") or "").split(",") if n.strip()]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "filters": {"storage_full_once": {"()": "hushpost.lib.diskfull.SkipStorageFullResponses"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # "ERROR hushpost.storage storage full: ..." is the one line to alert on.
        "django.request": {"filters": ["storage_full_once"]},
        "django.tasks": {"level": "WARNING"},
        "django_tasks": {"level": "WARNING"},
        "django_tasks_db": {"level": "WARNING"},
        # pysaml2 logs addresses at INFO and whole responses (assertions) at DEBUG: never here.
        "saml2": {"level": "WARNING"},
        "xmlschema": {"level": "WARNING"},  # pysaml2's schemas, at each metadata it reads
    },
}


def _production_problems() -> list[str]:
    """Why this configuration must not serve real users (empty when it may)."""
    problems = []
    if not SECRET_KEY:
        problems.append("HUSHPOST_SECRET_KEY (or HUSHPOST_SECRET_KEY_FILE) is not set")
    elif len(SECRET_KEY) < 32:
        problems.append("HUSHPOST_SECRET_KEY is shorter than 32 characters")
    if not MASTER_KEY:
        problems.append("HUSHPOST_MASTER_KEY (or HUSHPOST_MASTER_KEY_FILE) is not set")
    elif not is_raw_key(MASTER_KEY):
        problems.append(
            "HUSHPOST_MASTER_KEY must be 32 random bytes in base64 (openssl rand -base64 32)"
        )
    if any(not is_raw_key(key) for key in MASTER_KEY_PREVIOUS):
        problems.append("HUSHPOST_MASTER_KEY_PREVIOUS: each key must be 32 random bytes in base64")
    if not env("BASE_URL"):
        problems.append("HUSHPOST_BASE_URL is not set; e-mailed links need the portal's public URL")
    elif not BASE_URL.startswith("https://") and _host not in {"127.0.0.1", "localhost", "[::1]"}:
        problems.append(
            "HUSHPOST_BASE_URL must start with https:// so e-mailed links and cookies are protected"
        )
    if _email.is_mailbox:
        problems.append(
            "HUSHPOST_EMAIL_URL is the dev mailbox; set smtp://host:port so recipients get their e-mail"
        )
    if DEBUG:
        problems.append("HUSHPOST_DEBUG is on; it shows internals to anyone who hits an error")
    for region in REGIONS.regions.values():
        host = urlsplit(region.base_url).hostname
        if not region.base_url.startswith("https://") and host not in {"127.0.0.1", "localhost", "::1"}:
            problems.append(f"HUSHPOST_REGIONS_FILE: region {region.code}'s base_url must be https://")
    return problems


# Checked by every `hushpost` command and by the WSGI entry point before serving.
PRODUCTION_PROBLEMS = _production_problems() if PRODUCTION else []
if not SECRET_KEY:
    # Django refuses an empty SECRET_KEY with a vague error; the start-up check
    # (hushpost/server/startup.py) reports the full list of reasons instead.
    SECRET_KEY = "unset-" + secrets.token_hex(16)
