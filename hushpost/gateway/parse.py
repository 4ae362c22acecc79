"""A relayed e-mail, read: its addresses, subject, body and files.

Pure parsing, no database: ``parse_mail`` turns the raw bytes into a
:class:`Mail` of plain data (the gateway runs it in a reader process, see
:mod:`.reader`).  The body is the text the person wrote (HTML preferred over
plain text, from whatever nesting of multiparts the mail client built); every
other part is a file, byte for byte as it was attached: an inline image too,
its Content-ID read only to find the body of a ``multipart/related`` and never
kept (mail clients put host and file names in it).  Charsets and transfer
encodings are decoded by the standard library's ``email`` package; a part that
names a charset Python does not know is read as UTF-8 with replacement
characters rather than refused.
"""

from __future__ import annotations

import email
import email.policy
import mimetypes
from dataclasses import dataclass, field
from email.message import EmailMessage

from hushpost.gateway.replies import SmtpRefused
from hushpost.lib.sanitize import text_to_html

BODY_TYPES = ("text/html", "text/plain")
MAX_CONTENT_ID = 200
# Header fields are counted and measured as the parser meets them, before any
# is read: reading one costs time that grows faster than its length.
MAX_HEADER_BYTES = 32 * 1024  # one field, its folded lines included (a long To list fits)
MAX_HEADER_FIELDS = 10_000  # every part's fields together (fifty forwarded e-mails fit)
MAX_HEADERS_BYTES = 1024 * 1024  # every part's fields together


@dataclass
class MailFile:
    """A part that becomes an attached file, decoded."""

    name: str
    content_type: str
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass
class Mail:
    message_id: str
    from_addresses: list[str]
    to: list[str]
    cc: list[str]
    subject: str
    options_header: str
    body: str
    body_format: str  # "html" or "text", as Compose's body_format
    files: list[MailFile] = field(default_factory=list)


class _Tally:
    fields = 0
    size = 0


class _CountingPolicy(email.policy.EmailPolicy):
    """The standard policy, refusing (552) headers over the limits before they are parsed."""

    tally: _Tally | None = None

    def header_source_parse(self, sourcelines):
        size = sum(len(line) for line in sourcelines)
        self.tally.fields += 1
        self.tally.size += size
        if size > MAX_HEADER_BYTES:
            name = "".join(c for c in sourcelines[0].split(":", 1)[0][:40] if c.isalnum() or c in "-_")
            raise SmtpRefused(552, "5.3.4", f"the message has a {name or 'header'} field of {size // 1024} KB; "
                                        f"Hushpost reads header fields of at most {MAX_HEADER_BYTES // 1024} KB")
        if self.tally.fields > MAX_HEADER_FIELDS:
            raise SmtpRefused(552, "5.3.4", f"the message has more than {MAX_HEADER_FIELDS:,} header fields")
        if self.tally.size > MAX_HEADERS_BYTES:
            raise SmtpRefused(552, "5.3.4", f"the message's header fields come to more than "
                                        f"{MAX_HEADERS_BYTES // (1024 * 1024)} MB")
        return super().header_source_parse(sourcelines)


def parse_mail(raw: bytes) -> Mail:
    msg = email.message_from_bytes(raw, policy=_CountingPolicy(tally=_Tally()))
    body_parts: list[EmailMessage] = []
    files: list[MailFile] = []
    _walk(msg, body_parts, files)
    body, body_format = _join_body(body_parts)
    return Mail(
        message_id=" ".join(_header(msg, "Message-ID").split()),
        from_addresses=_addresses(msg, "From"),
        to=_addresses(msg, "To"),
        cc=_addresses(msg, "Cc"),
        subject=_header(msg, "Subject"),
        options_header=_header(msg, "X-Hushpost-Options"),
        body=body,
        body_format=body_format,
        files=files,
    )


def _walk(part: EmailMessage, body: list[EmailMessage], files: list[MailFile]) -> None:
    ctype = part.get_content_type()
    if ctype == "message/rfc822":  # a forwarded e-mail stays one file, not more body
        files.append(_file(part, files))
        return
    if part.is_multipart():
        subparts = list(part.iter_parts())
        if ctype == "multipart/alternative":
            # The same content several ways: keep the richest, drop the others.
            best = _best_alternative(subparts)
            if best is not None:
                _walk(best, body, files)
        elif ctype == "multipart/related":
            # The root is the body; the rest are what it shows inline (images by cid:).
            root = _related_root(part, subparts)
            for sub in subparts:
                if sub is root:
                    _walk(sub, body, files)
                else:
                    _collect_files(sub, files)
        else:  # mixed, signed, report, digest...: the text parts in order are the body
            for sub in subparts:
                _walk(sub, body, files)
        return
    if ctype in BODY_TYPES and not _is_attachment(part):
        body.append(part)
    else:
        files.append(_file(part, files))


def _collect_files(part: EmailMessage, files: list[MailFile]) -> None:
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        for sub in part.iter_parts():
            _collect_files(sub, files)
    else:
        files.append(_file(part, files))


def _contains(part: EmailMessage, ctype: str) -> bool:
    if part.get_content_type() == "message/rfc822":
        return False
    if part.is_multipart():
        return any(_contains(sub, ctype) for sub in part.iter_parts())
    return part.get_content_type() == ctype and not _is_attachment(part)


def _best_alternative(parts: list[EmailMessage]) -> EmailMessage | None:
    # RFC 2046: alternatives go from plainest to richest.
    for wanted in BODY_TYPES:
        for part in reversed(parts):
            if _contains(part, wanted):
                return part
    return parts[-1] if parts else None


def _related_root(part: EmailMessage, subparts: list[EmailMessage]) -> EmailMessage | None:
    start = _content_id(part.get_param("start") or "")
    if start:
        for sub in subparts:
            if _content_id(_header(sub, "Content-ID")) == start:
                return sub
    return subparts[0] if subparts else None


def _is_attachment(part: EmailMessage) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _file(part: EmailMessage, files: list[MailFile]) -> MailFile:
    ctype = part.get_content_type()
    name = _clean(part.get_filename() or "")
    if not name:
        ext = ".eml" if ctype == "message/rfc822" else (mimetypes.guess_extension(ctype) or ".bin")
        stem = "forwarded-message" if ctype == "message/rfc822" else "attachment"
        name = f"{stem}-{len(files) + 1}{ext}"
    return MailFile(name=name, content_type=ctype, content=_payload(part))


def _payload(part: EmailMessage) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner = inner[0] if isinstance(inner, list) and inner else inner
        return inner.as_bytes() if hasattr(inner, "as_bytes") else b""
    return part.get_payload(decode=True) or b""


def _text(part: EmailMessage) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError):  # a charset Python does not know
        text = _payload(part).decode("utf-8", "replace")
    return _clean(text.replace("\r\n", "\n").replace("\r", "\n"))


def _join_body(parts: list[EmailMessage]) -> tuple[str, str]:
    if any(p.get_content_type() == "text/html" for p in parts):
        html = [_text(p) if p.get_content_type() == "text/html" else text_to_html(_text(p)) for p in parts]
        return "\n".join(html), "html"
    return "\n\n".join(_text(p).strip("\n") for p in parts), "text"


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header too broken to decode reads as absent
        return ""
    return _clean(str(value)) if value is not None else ""


def _addresses(msg: EmailMessage, name: str) -> list[str]:
    found: list[str] = []
    try:
        headers = msg.get_all(name) or []
        for header in headers:
            for address in getattr(header, "addresses", ()):
                spec = _clean(address.addr_spec).strip().lower()
                if "@" in spec and spec not in found:
                    found.append(spec)
    except Exception:  # unreadable: as if the header named nobody
        return found
    return found


def _content_id(value: str) -> str:
    value = "".join(value.split()).strip("<>")
    return "".join(ch for ch in value if ch.isprintable())[:MAX_CONTENT_ID]


def _clean(text: str) -> str:
    """Text as it can be stored: undecodable bytes (surrogates) replaced, no NULs."""
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
