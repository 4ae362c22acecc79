"""What the gateway tests need around it: e-mails as mail clients write them, an SMTP
client that reports every reply instead of raising, a TCP proxy to cut the database, and
`hushpost smtpd` started and stopped as a process."""

from __future__ import annotations

import contextlib
import email.policy
import os
import signal
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.utils import formatdate, getaddresses, make_msgid, parseaddr

from django.db import connection

from tests.helpers import ROOT
from tests.personas import ALICE, BOB
from tests.settings import _free_port

DAVE = "dave@client.example"


def mail(subject="[secure] Your test results", body="Dear Bob,\n\nYour results are normal.\n",
         *, sender=ALICE, to=(BOB,), cc=(), message_id: str | None = "", headers=None) -> EmailMessage:
    """A plain-text e-mail as a mail client sends it (Message-ID "" makes one; None leaves it out)."""
    msg = EmailMessage()
    msg["From"] = f"Alice Moreno <{sender}>"
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    if message_id is not None:
        msg["Message-ID"] = message_id or make_msgid(domain="northwind.example")
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    return msg


def semicolons(size: int) -> bytes:
    """A folded header value of about ``size`` bytes of ``;``: the costliest thing for Python's
    header parser to read (its time grows faster than the square of the length)."""
    line = b" " + b";" * 76 + b"\r\n"
    return line * (size // len(line))


def slow_to_parse(parts: int, size: int) -> bytes:
    """An e-mail from Alice whose ``parts`` files each carry a Content-Disposition of ``size`` bytes."""
    raw = (b"From: alice@northwind.example\r\nTo: bob@client.example\r\nSubject: [secure] Slow\r\n"
           b"Message-ID: <slow@northwind.example>\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\n\r\nThe files.\r\n")
    for _ in range(parts):
        raw += (b"--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n"
                + semicolons(size) + b"\r\n%PDF-1.7\r\n")
    return raw + b"--b--\r\n"


def as_bytes(message: EmailMessage | bytes) -> bytes:
    if isinstance(message, bytes):
        return message
    return message.as_bytes(policy=email.policy.SMTP)


def submit(port: int, message: EmailMessage | bytes, *, mail_from: str | None = None,
           rcpts: list[str] | None = None, host: str = "127.0.0.1", starttls: ssl.SSLContext | None = None,
           login: tuple[str, str] | None = None, size: bool = True) -> tuple[int, str]:
    """Relay ``message`` as a mail server would; the first refusal, or the DATA reply."""
    with smtplib.SMTP(host, port, timeout=60) as client:
        client.ehlo()
        if starttls is not None:
            client.starttls(context=starttls)
            client.ehlo()
        if login is not None:
            try:
                client.login(*login)
            except smtplib.SMTPAuthenticationError as exc:
                return exc.smtp_code, exc.smtp_error.decode()
        return transaction(client, message, mail_from=mail_from, rcpts=rcpts, size=size)


def transaction(client: smtplib.SMTP, message: EmailMessage | bytes, *, mail_from: str | None = None,
                rcpts: list[str] | None = None, size: bool = True) -> tuple[int, str]:
    """One mail transaction on an open session; the first refusal, or the DATA reply."""
    raw = as_bytes(message)
    if mail_from is None or rcpts is None:
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        mail_from = mail_from or parseaddr(str(parsed["From"]))[1]
        headers = [str(h) for name in ("To", "Cc") for h in parsed.get_all(name) or []]
        rcpts = rcpts or [a for _, a in getaddresses(headers)]
    options = [f"SIZE={len(raw)}"] if size and client.has_extn("size") else []
    code, text = client.mail(mail_from, options)
    if code != 250:
        return code, text.decode()
    for rcpt in rcpts:
        code, text = client.rcpt(rcpt)
        if code != 250:
            client.rset()
            return code, text.decode()
    code, text = client.data(raw)
    return code, text.decode()


class TcpProxy:
    """A TCP proxy on loopback: ``stop`` cuts every connection and refuses new ones, as a
    database that went away does; ``start`` lets them through again on the same port."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = _free_port()
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            self._listener.close()
            self._listener = None
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# `hushpost smtpd` as a process ----------------------------------------------------------

def start_smtpd(env: dict, port: int, *args: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "hushpost.cli", "smtpd", "--bind", f"127.0.0.1:{port}", *args], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"hushpost smtpd exited: {process.communicate()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("hushpost smtpd did not start listening")


def stop_smtpd(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    return out, err


def smtpd_env_through(proxy: TcpProxy, settings, **extra: str) -> dict:
    """The environment of a `hushpost smtpd` on the test's PostgreSQL database, its connection
    through ``proxy`` (to be cut), its files where the test's are; ``extra``: more settings."""
    db = connection.settings_dict
    credentials = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return env | {
        "HUSHPOST_DATABASE_URL": f"postgres://{credentials}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "HUSHPOST_STORAGE": "local", "HUSHPOST_FILES_DIR": settings.FILE_STORAGE["root"], **extra,
    }


def delivery_report(envelope_sender: str, recipient: str, original_headers: str, *, action: str = "failed",
                    status: str = "5.1.1", diagnostic: str = "smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: "
                    "User unknown in virtual mailbox table") -> bytes:
    """A delivery report as Postfix writes one (RFC 3464): to the envelope sender of the e-mail it
    could not deliver, with the human part, the delivery-status part and the original's headers."""
    diagnostic = diagnostic.format(rcpt=recipient)
    boundary = "7D1B2C3A4E.1732981234/mx1.client.example"
    human = ("I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more "
             "recipients.\r\n" if action == "failed" else
             "Your message could not be delivered for 4 hours.\r\nIt will be retried until it is 5 days old.\r\n")
    return (
        f"Return-Path: <>\r\n"
        f"From: MAILER-DAEMON@mx1.client.example (Mail Delivery System)\r\n"
        f"Subject: {'Undelivered Mail Returned to Sender' if action == 'failed' else 'Delayed Mail (still being retried)'}\r\n"
        f"To: {envelope_sender}\r\n"
        f"Auto-Submitted: auto-replied\r\n"
        f"MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="{boundary}"\r\n'
        f"Message-Id: <20261130221500.7D1B2C3A4E@mx1.client.example>\r\n"
        f"Date: {formatdate(localtime=False)}\r\n"
        f"\r\n"
        f"This is a MIME-encapsulated message.\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Notification\r\n"
        f"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
        f"This is the mail system at host mx1.client.example.\r\n\r\n{human}\r\n"
        f"                   The mail system\r\n\r\n<{recipient}>: host mx1.client.example said: "
        f"{diagnostic.split('; ', 1)[-1]}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Delivery report\r\n"
        f"Content-Type: message/delivery-status\r\n\r\n"
        f"Reporting-MTA: dns; mx1.client.example\r\n"
        f"X-Postfix-Queue-ID: 7D1B2C3A4E\r\n"
        f"X-Postfix-Sender: rfc822; {envelope_sender}\r\n"
        f"Arrival-Date: {formatdate(localtime=False)}\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Original-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Remote-MTA: dns; mx1.client.example\r\n"
        f"Diagnostic-Code: {diagnostic}\r\n\r\n"
        f"--{boundary}\r\n"
        f"Content-Description: Undelivered Message Headers\r\n"
        f"Content-Type: text/rfc822-headers\r\n\r\n"
        f"{original_headers.strip()}\r\n\r\n"
        f"--{boundary}--\r\n"
    ).encode()


def headers_of(message: EmailMessage, envelope_sender: str) -> str:
    """The headers of an e-mail as the receiving server kept them (Return-Path added)."""
    head = message.as_string().replace("\r\n", "\n").split("\n\n", 1)[0]
    return f"Return-Path: <{envelope_sender}>\r\n" + head.replace("\n", "\r\n")


def send_report(port: int, raw: bytes, rcpt: str, *, mail_from: str = "") -> list[tuple[int, str]]:
    """Hand a delivery report to the gateway as the recipient's mail server does: MAIL FROM:<>
    (the null sender), RCPT TO the envelope sender of the e-mail it reports on. Every reply."""
    replies = []
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo("mx1.client.example")
        for code, text in (client.mail(mail_from), client.rcpt(rcpt)):
            replies.append((code, text.decode()))
            if code != 250:
                return replies
        code, text = client.data(raw)
        replies.append((code, text.decode()))
    return replies
