"""SMTP replies: what the gateway answers the mail server that relays to it.

A 2xx reply is given only once a message is committed; a 4xx one tells the
mail server to keep the message and try again later; a 5xx one makes it
bounce the message to its sender with the text given here, so that text is
written for that person.
"""

from __future__ import annotations

from dataclasses import dataclass

from hushpost.lib.refusals import Refused


@dataclass(frozen=True)
class Reply:
    code: int
    status: str  # the enhanced status code (RFC 3463), e.g. "5.7.1"
    text: str

    @property
    def accepted(self) -> bool:
        return self.code < 400

    def __str__(self) -> str:
        # One line of ASCII, as SMTP wants: an address or name that is not is escaped.
        text = " ".join(self.text.split()).encode("ascii", "backslashreplace").decode()
        return f"{self.code} {self.status} {text[:400]}"


class SmtpRefused(Refused):
    """A command or message is refused for good; the reply says why, for its sender."""

    def __init__(self, code: int, status: str, text: str):
        self.reply = Reply(code, status, text)
        super().__init__(str(self.reply))


TEMPORARY = Reply(451, "4.3.0", "Hushpost cannot take messages right now; please try again later")
