"""One word for "not allowed": :class:`Refused`.

An action that may not happen raises it (the throttle returns it instead: each
of its callers answers a throttled attempt in its own flow); its text says why,
written for the person who asked, so a view shows it as it is and a command
prints it.  An app subclasses it only where a caller answers one kind
differently from the others: the gateway's
:class:`~hushpost.gateway.replies.SmtpRefused` carries its SMTP reply, and
:class:`~hushpost.attachments.actions.FileRefused` its HTTP status.

Not refusals, and kept apart: typed text that cannot be used at all, with a
control character or too long (:class:`~hushpost.lib.input.InputError`),
settings Hushpost cannot run with (:class:`~hushpost.lib.env.ConfigError`), and
ciphertext that fails its check (:class:`~hushpost.crypto.aead.DecryptionError`,
:class:`~hushpost.crypto.streams.StreamError`).
"""

from __future__ import annotations


class Refused(Exception):
    """An action not allowed; its text says why, for the person who asked.

    ``retry_after`` (seconds) is set when trying again later can succeed: the
    throttle's refusals say when.
    """

    def __init__(self, text: str = "", *, retry_after: int | None = None):
        super().__init__(text)
        self.retry_after = retry_after
