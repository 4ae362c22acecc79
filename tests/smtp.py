"""A real SMTP server on loopback (aiosmtpd) that tests can read and break."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes = b""  # the bytes as received, for what checks signatures and scores

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return self.rcpt_tos[0]

    def part(self, subtype: str) -> str:
        found = self.message.get_body(preferencelist=(subtype,))
        return found.get_content() if found is not None else ""

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    def link(self) -> str:
        return re.search(r"https?://\S+", self.text).group(0)

    def temporary_password(self) -> str:
        return re.search(r"^\s+([a-z2-9]{5}(?:-[a-z2-9]{5}){3})\s*$", self.text, re.M).group(1)


@dataclass
class Handler:
    received: list[Received] = field(default_factory=list)
    # Replies to give instead of accepting, one per incoming message.
    refusals: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            if self.refusals:
                return self.refusals.pop(0)
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), msg,
                                          envelope.original_content))
        return "250 Message accepted for delivery"


class SmtpSink:
    def __init__(self, port: int):
        self.port = port
        self.handler = Handler()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    def clear(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.refusals.clear()

    def refuse_next(self, *replies: str) -> None:
        with self.handler.lock:
            self.handler.refusals.extend(replies)

    def to(self, address: str, subject: str | None = None) -> list[Received]:
        return [
            m for m in self.messages
            if address in m.rcpt_tos and (subject is None or m.subject == subject)
        ]

    def wait_for(self, address: str, subject: str, count: int = 1, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address, subject)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(
            f"expected {count} '{subject}' e-mail(s) to {address}; got "
            f"{[(m.subject, m.rcpt_tos) for m in self.messages]}"
        )
