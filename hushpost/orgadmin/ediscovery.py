"""A conversation exported for e-discovery: a deliberate way out for plaintext.

An organisation admin (after "confirm it's you") gets one ZIP: each message of the
conversation (its top message and every reply under it) as an ``.eml`` file
(:mod:`.eml`), the conversation's audit events as CSV (the admin area's own export,
:mod:`.audit_csv`), and ``manifest.json``: the organisation, who exported it and when,
how many messages, and each file's size and SHA-256. The export is an audit event of
its own, with who and which conversation, in the same organisation's chain.

Content is opened only where it always is (``messaging.content``, ``attachments.actions``).
The ZIP is streamed to the admin as it is written, never stored: no plaintext copy is left
on the server's disk, and memory holds about one segment of a file at a time, whatever its
size. The price: the download's length is not known in advance, and a file that fails to
decrypt half-way ends the download there, leaving a ZIP without its directory (which no
tool opens) rather than one quietly missing a file. Subjects, bodies and files are opened
before the export is recorded, so a message that cannot be opened refuses the export whole.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q

from hushpost.accounts.models import User
from hushpost.attachments.actions import files_to_export
from hushpost.audit.actions import now_label, record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.refusals import Refused
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.threads import conversation
from hushpost.notifications.models import Notification
from hushpost.orgadmin import audit_csv, eml

AUDIT_FILE, MANIFEST_FILE = "audit-events.csv", "manifest.json"
HANDED_ON = 256 * 1024  # bytes of ZIP gathered before they go to the admin
MAX_MESSAGES = 2000  # a conversation longer than this is refused rather than exported in part


@dataclass(frozen=True)
class Export:
    filename: str
    chunks: Iterator[bytes]  # the ZIP


def export_conversation(message: Message, *, by: User, request=None) -> Export:
    """The conversation ``message`` is part of (loaded through the admin's gate), recorded as exported by ``by``."""
    messages = conversation(message)
    top, org = messages[0], by.org
    if any(m.org_id != by.org_id for m in messages):
        raise Refused("This conversation is not your organisation's to export.")
    if len(messages) > MAX_MESSAGES:
        raise Refused(f"This conversation has {len(messages)} messages; an export holds at most {MAX_MESSAGES}.")
    domain = (org.domains.order_by("pk").values_list("name", flat=True).first() or "hushpost.invalid")
    deliveries = _deliveries(messages)
    by_pk = {m.pk: m for m in messages}
    file_count = 0
    for m in messages:  # every message must open before the export is recorded; each is opened again as it is written
        open_content(m)
        file_count += len(files_to_export(m))
    letters = [(_entry(f"messages/{n:03d}-{m.uid}.eml", m.created_at),
                _letter(m, deliveries.get(m.pk, []), _above(m, by_pk), domain))
               for n, m in enumerate(messages, 1)]
    with transaction.atomic():
        record(AuditEvent.Action.EXPORT, actor=by, request=request, obj=top,
               detail=f"conversation of {len(messages)} message(s), {file_count} file(s)")
    now = clock.now()
    events = list(_events(org, messages, deliveries))
    audit = (_entry(AUDIT_FILE, now), (line.encode() for line in audit_csv.lines(events)))
    about = {"organisation": org.name, "conversation": top.uid, "exported_by": by.email,
             "exported_at": now.isoformat(), "messages": len(messages), "audit_events": len(events),
             "people": _people(messages, deliveries)}
    return Export(filename=f"conversation-{org.slug}-{top.uid}-{now_label()}.zip",
                  chunks=_zip([*letters, audit], about, now))


def _letter(message: Message, deliveries: list[Delivery], above: list[Message], domain: str) -> Iterator[bytes]:
    """One message's e-mail, written only when its turn in the ZIP comes, so a long
    conversation holds one message's content in memory at a time."""
    yield from eml.eml(message, open_content(message), deliveries, above, domain, files_to_export(message))


def _people(messages: list[Message], deliveries: dict[int, list[Delivery]]) -> list[dict]:
    """Everyone in the conversation with their name as the portal has it (an ``.eml`` header
    leaves out a name it cannot carry safely)."""
    people = {m.author.email: m.author.name for m in messages}
    for found in deliveries.values():
        people.update({d.recipient.email: d.recipient.name for d in found})
    return [{"email": address, "name": name} for address, name in sorted(people.items())]


def _deliveries(messages: list[Message]) -> dict[int, list[Delivery]]:
    found: dict[int, list[Delivery]] = {}
    for d in Delivery.objects.filter(message__in=messages).select_related("recipient").order_by("pk"):
        found.setdefault(d.message_id, []).append(d)
    return found


def _above(message: Message, by_pk: dict[int, Message]) -> list[Message]:
    """The messages ``message`` answers, nearest first (the conversation holds them all)."""
    chain = []
    while message.in_reply_to_id in by_pk:
        message = by_pk[message.in_reply_to_id]
        chain.append(message)
    return chain


def _events(org, messages: list[Message], deliveries: dict[int, list[Delivery]]):
    """What the trail says of the conversation, oldest first: its messages (sent, opened,
    printed, downloaded, recalled, exported...) and the e-mails that told people of them."""
    delivery_ids = [d.pk for found in deliveries.values() for d in found]
    keys = [str(k) for k in Notification.objects.filter(delivery_id__in=delivery_ids).values_list("key", flat=True)]
    return AuditEvent.objects.filter(org=org).filter(
        Q(object_type="message", object_id__in=[m.uid for m in messages])
        | Q(object_type="notification", object_id__in=keys)).order_by("at", "id")


def _entry(name: str, at: datetime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=at.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


class _Held:
    """Where the ZIP is written: held only until it is handed on. It cannot seek, so each
    entry's sizes and checksum follow its data (a data descriptor), as any unzip tool expects."""

    def __init__(self):
        self.data = bytearray()

    def write(self, data) -> int:
        self.data += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = bytes(self.data)
        self.data.clear()
        return data


def _zip(entries: list[tuple[zipfile.ZipInfo, Iterable[bytes]]], about: dict, now: datetime) -> Iterator[bytes]:
    held, listed = _Held(), []
    with zipfile.ZipFile(held, "w") as archive:
        for info, pieces in entries:
            digest, size = hashlib.sha256(), 0
            with archive.open(info, "w", force_zip64=True) as entry:
                for piece in pieces:
                    entry.write(piece)
                    digest.update(piece)
                    size += len(piece)
                    if len(held.data) >= HANDED_ON:
                        yield held.take()
            listed.append({"name": info.filename, "bytes": size, "sha256": digest.hexdigest()})
        manifest = json.dumps({**about, "files": listed}, indent=2, ensure_ascii=False) + "\n"
        archive.writestr(_entry(MANIFEST_FILE, now), manifest.encode())
    yield held.take()
