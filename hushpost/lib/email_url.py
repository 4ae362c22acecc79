"""``HUSHPOST_EMAIL_URL`` parsing: one URL chooses how notifications leave.

* ``mailbox:`` keeps every outgoing e-mail in the database and shows it at
  ``/dev/mailbox`` (development and demos only).
* ``smtp://[user:pass@]host:port`` plain SMTP, upgraded with STARTTLS when
  ``?starttls=1`` is given (the default on port 587).
* ``smtps://[user:pass@]host:port`` implicit TLS (port 465 by default).

Extra query parameters: ``timeout`` (seconds, default 10).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from hushpost.lib.env import ConfigError

MAILBOX_BACKEND = "hushpost.notifications.mailbox.MailboxBackend"
SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"


@dataclass(frozen=True)
class EmailConfig:
    backend: str
    host: str = ""
    port: int = 0
    username: str = ""
    password: str = ""
    use_tls: bool = False
    use_ssl: bool = False
    timeout: int = 10

    @property
    def is_mailbox(self) -> bool:
        return self.backend == MAILBOX_BACKEND


def _truthy(values: dict[str, list[str]], key: str) -> bool | None:
    if key not in values:
        return None
    return values[key][-1].lower() in {"1", "true", "yes", "on"}


def parse_email_url(url: str) -> EmailConfig:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "mailbox":
        return EmailConfig(backend=MAILBOX_BACKEND)
    if scheme not in {"smtp", "smtps"}:
        raise ConfigError(
            f"HUSHPOST_EMAIL_URL: unknown scheme {parts.scheme!r}; use mailbox:, smtp:// or smtps://"
        )
    if not parts.hostname:
        raise ConfigError("HUSHPOST_EMAIL_URL: an smtp:// URL needs a host")
    query = parse_qs(parts.query)
    use_ssl = scheme == "smtps"
    port = parts.port or (465 if use_ssl else 25)
    starttls = _truthy(query, "starttls")
    use_tls = (port == 587) if starttls is None else starttls
    if use_ssl and use_tls:
        raise ConfigError("HUSHPOST_EMAIL_URL: smtps:// already uses TLS; drop starttls=1")
    try:
        timeout = int(query.get("timeout", ["10"])[-1])
    except ValueError:
        raise ConfigError("HUSHPOST_EMAIL_URL: timeout must be a whole number of seconds") from None
    return EmailConfig(
        backend=SMTP_BACKEND,
        host=parts.hostname,
        port=port,
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        use_tls=use_tls,
        use_ssl=use_ssl,
        timeout=timeout,
    )
