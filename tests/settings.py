"""Settings for the test suite: development mode, a real SMTP sink on loopback."""

import os
import socket
import tempfile


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SMTP_PORT = _free_port()
os.environ["HUSHPOST_MODE"] = "development"
os.environ.setdefault("HUSHPOST_DATA_DIR", tempfile.mkdtemp(prefix="hushpost-test-"))
os.environ["HUSHPOST_EMAIL_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}?timeout=5"
os.environ.setdefault("HUSHPOST_BASE_URL", "http://testserver")
os.environ["HUSHPOST_NOTIFY_RETRY_SCHEDULE"] = "1,1,1"
# Playwright's sync API runs an event loop in the test thread; the ORM calls
# the tests make between browser steps are ordinary synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

from hushpost.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["*"]
# Hashing stays Argon2id as in production: tests prove the real thing.
