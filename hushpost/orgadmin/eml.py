"""A message of a conversation as an RFC 5322 e-mail (an ``.eml`` file), for an export.

Built with the standard library's ``email`` package: From, To, Cc (and Bcc, as the
sender's own copy of a message sent through the gateway would show it), Date, Subject,
a Message-ID made from the message's uid, In-Reply-To and References naming the
messages above it, the body as HTML with a plain-text alternative, and each file as an
attachment part with its name and type.

A file can be as large as the organisation allows (gigabytes), so it is never held
whole: the e-mail is written with a marker where each file's base64 goes, and the
file's decrypted chunks are encoded into that place as they are read.
"""

from __future__ import annotations

import base64
import email.policy
import email.utils
import secrets
from collections.abc import Iterable, Iterator
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage

from hushpost.accounts.models import User
from hushpost.attachments.actions import FileInfo
from hushpost.lib.sanitize import html_to_text
from hushpost.messaging.content import Content
from hushpost.messaging.models import Delivery, Message

POLICY = email.policy.default.clone(linesep="\r\n")
# A part of these types holds other parts or a whole e-mail, never base64: a file declared
# as one goes as application/octet-stream, its name unchanged.
CONTAINER_TYPES = ("multipart", "message")


def message_id(message: Message, domain: str) -> str:
    return f"<{message.uid}@{domain}>"


def _address(user: User) -> Address:
    """The person's address, with their name unless it holds text shaped like an encoded word
    (``=?``): the email package decodes such text as it writes an address header, so a name
    like ``=?utf-8?q?=0D=0ABcc:...?=`` would become header fields of its own. The manifest
    lists every name as it is."""
    name = user.name or ""
    return Address(display_name="" if "=?" in name else name, addr_spec=user.email)


def _subject(text: str) -> str:
    """The subject as encoded words of our own making: the package decodes them back to
    exactly ``text``, and a subject that itself spells an encoded word (``=?utf-8?q?=0D=0A...``)
    stays text instead of being decoded into line breaks and forged header fields."""
    return Header(text, "utf-8").encode(maxlinelen=10**6)


def eml(message: Message, content: Content, deliveries: list[Delivery], above: list[Message], domain: str,
        files: list[tuple[FileInfo, Iterator[bytes]]]) -> Iterator[bytes]:
    """The e-mail's bytes, piece by piece; ``above``: the messages it answers, nearest first.
    Everything but the files is written at once; each file is read as its turn comes."""
    mail = EmailMessage(policy=POLICY)
    mail["From"] = _address(message.author)
    for field, header in ((Delivery.Field.TO, "To"), (Delivery.Field.CC, "Cc"), (Delivery.Field.BCC, "Bcc")):
        people = [_address(d.recipient) for d in deliveries if d.field == field]
        if people:
            mail[header] = people
    mail["Date"] = email.utils.format_datetime(message.created_at)
    mail["Subject"] = _subject(content.subject)
    mail["Message-ID"] = message_id(message, domain)
    if above:
        mail["In-Reply-To"] = message_id(above[0], domain)
        mail["References"] = " ".join(message_id(m, domain) for m in reversed(above))
    mail.set_content(html_to_text(content.body_html) + "\n")
    mail.add_alternative(content.body_html, subtype="html")
    token = secrets.token_hex(16)  # where each file goes: a string no body or header holds
    for n, (info, _) in enumerate(files):
        maintype, subtype = info.content_type.split("/", 1)
        if maintype in CONTAINER_TYPES:
            maintype, subtype = "application", "octet-stream"
        mail.add_attachment(b"", maintype, subtype, filename=info.name, cte="base64")
        mail.get_payload()[-1].set_payload(f"{token}{n:04d}")
    return _spliced(mail.as_bytes(policy=POLICY), token, files)


def _spliced(written: bytes, token: str, files: list[tuple[FileInfo, Iterator[bytes]]]) -> Iterator[bytes]:
    rest = written
    for n, (_, chunks) in enumerate(files):
        head, rest = rest.split(f"{token}{n:04d}".encode(), 1)
        yield head
        yield from _base64_lines(chunks)
    yield rest


def _base64_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Base64 in lines of 76 characters, CRLF between them (the boundary after brings its own)."""
    pending, started = b"", False
    for chunk in chunks:
        pending += chunk
        whole = len(pending) - len(pending) % 57  # 57 bytes make one line
        if whole:
            encoded = base64.encodebytes(pending[:whole]).rstrip(b"\n").replace(b"\n", b"\r\n")
            yield (b"\r\n" if started else b"") + encoded
            started, pending = True, pending[whole:]
    if pending:
        yield (b"\r\n" if started else b"") + base64.b64encode(pending)
