"""The deployment's mail relay, as one worker process sees it.

One SMTP connection per worker, reused across e-mails; a hard deadline on each
send, so a relay that accepts the connection and then says nothing cannot hold
an e-mail past its lease; and what a failure means for the e-mail (give up, try
again later, or wait for the relay to come back).
"""

from __future__ import annotations

import contextlib
import signal
import smtplib
import threading
import time
from dataclasses import dataclass

from django.core.mail import get_connection


class SendDeadline(TimeoutError):
    """The relay took longer than the deadline for one e-mail."""


@dataclass(frozen=True)
class Failure:
    permanent: bool  # the relay refused this address or message for good
    relay_down: bool  # the relay itself could not be reached or would not serve
    reason: str  # what the relay said, for the sender's message page

    @classmethod
    def of(cls, exc: BaseException) -> Failure:
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            code, reply = next(iter(exc.recipients.values()))
            return cls(code >= 500, False, f"{code} {_text(reply)}")
        if isinstance(exc, smtplib.SMTPResponseException):
            # Even a 421 (shutting down, overloaded) is an answer: the relay is
            # up, and the retry schedule decides when to ask again.
            return cls(exc.smtp_code >= 500, False, f"{exc.smtp_code} {_text(exc.smtp_error)}")
        if isinstance(exc, ConnectionRefusedError):
            return cls(False, True, "mail server refused the connection")
        if isinstance(exc, TimeoutError):  # socket timeouts and SendDeadline alike
            return cls(False, True, "mail server did not answer in time")
        if isinstance(exc, OSError):  # smtplib's disconnects among them
            return cls(False, True, f"mail server unreachable: {type(exc).__name__}: {exc}"[:300])
        return cls(False, False, f"{type(exc).__name__}: {exc}"[:300])


def _text(reply) -> str:
    return reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)


@contextlib.contextmanager
def deadline(seconds: float):
    """Raise :class:`SendDeadline` in this thread after ``seconds``.

    Socket timeouts bound each read; this bounds the whole conversation. Only
    the main thread receives signals, so elsewhere the socket timeouts alone
    apply.
    """
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expired(signum, frame):
        raise SendDeadline(f"no answer within {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Relay:
    """The worker's connection to the relay, and whether the relay was last seen down."""

    def __init__(self) -> None:
        self.conn = None
        self.down = False  # the last attempt failed for the relay's sake
        self.probed_at = 0.0

    def send(self, email, *, within: float) -> None:
        try:
            with deadline(within):
                self._send(email)
        except BaseException:
            self.close()
            raise

    def _send(self, email) -> None:
        for attempt in (1, 2):
            fresh = self.conn is None
            if fresh:
                self.conn = get_connection(fail_silently=False)
                self.conn.open()
            try:
                smtp = getattr(self.conn, "connection", None)
                if isinstance(smtp, smtplib.SMTP):
                    # What the SMTP backend's send_messages does, with the e-mail's bytes written directly.
                    smtp.sendmail(*email.envelope(), email.signed_bytes())
                else:  # another backend (the development mailbox)
                    self.conn.send_messages([email])
                return
            except smtplib.SMTPServerDisconnected:
                # A kept connection the relay has since closed: one new one.
                self.close()
                if fresh or attempt == 2:
                    raise

    def probe(self, *, within: float) -> bool:
        """Whether the relay answers now (a connection and NOOP), kept open if so."""
        self.probed_at = time.monotonic()
        try:
            with deadline(within):
                if self.conn is None:
                    self.conn = get_connection(fail_silently=False)
                    self.conn.open()
                code, _ = self.conn.connection.noop()
            if code != 250:
                raise smtplib.SMTPResponseException(code, b"")
        except Exception:
            self.close()
            return False
        return True

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: S110 - already broken, nothing to save
                pass
            self.conn = None


relay = Relay()
