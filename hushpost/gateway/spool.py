"""The gateway's spool (``HUSHPOST_SMTPD_SPOOL``): 250 once an e-mail is committed, stored after.

``accept`` runs in the gateway at DATA. Who may relay, for whom and to how many was answered
during the SMTP dialogue, as always; what is left is one INSERT: the envelope and the bytes
sealed under a fresh data key (AES-256-GCM, :mod:`hushpost.crypto.aead`), the data key wrapped
under the organisation's current key, and the send token (:func:`.actions.send_token`) under a
unique constraint, so a relayed retry of an e-mail already spooled inserts nothing and is
answered "already received". The gateway neither parses the e-mail (a header scan finds its
Message-ID) nor stores files: a fraction of a synchronous DATA's CPU. A database that cannot
take the INSERT is answered 451, as before.

``store_due`` runs in ``hushpost worker``, each round: it claims due rows under a lease judged
by the database's clock (as notifications are claimed), opens each, and stores it through the
same :func:`.actions.receive_mail` a synchronous DATA uses, with the sender looked up again (one
disabled meanwhile is refused). A 2xx outcome marks the row stored; a 5xx one (a From that is not
the envelope sender, a file too big, the organisation's policy) marks it refused and queues a
"Secure Messaging Not Sent" e-mail to the sender in the same transaction, once; a 4xx one (the
file store down, a reader that did not answer) is tried again with backoff, for up to
``SMTPD_SPOOL_GIVE_UP_SECONDS``. Storing is idempotent by the send token, so a worker killed
between storing and marking stores nothing twice. A finished row keeps no content and is
deleted after ``SMTPD_SPOOL_KEEP_SECONDS``.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import math
import re
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now

from hushpost.accounts.models import User
from hushpost.audit.actions import current_client
from hushpost.crypto import aead, keys, labels
from hushpost.gateway import actions
from hushpost.gateway.access import Client, sender_of
from hushpost.gateway.models import SpooledMail
from hushpost.gateway.replies import TEMPORARY, Reply, SmtpRefused
from hushpost.notifications import delivery
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification

log = logging.getLogger("hushpost.gateway")

SPOOLED = Reply(250, "2.0.0", "queued to be stored as a secure message")
State = SpooledMail.State
BATCH = 20
# The header block scanned for the Message-ID: the reader refuses more header than this anyway.
HEADER_SCAN_BYTES = 1024 * 1024
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
PURGE_EVERY_SECONDS = 600.0
_purged_at = -math.inf


def takes(raw: bytes) -> bool:
    """Whether DATA spools this e-mail rather than storing it while the client waits."""
    return settings.SMTPD_SPOOL and len(raw) <= settings.SMTPD_SPOOL_MAX_BYTES


def message_id_of(raw: bytes) -> str:
    """The Message-ID header as the reader gives it (unfolded, spaces collapsed), found by a
    scan of the header block: nothing here parses MIME or decodes a header."""
    head = raw[:HEADER_SCAN_BYTES]
    ends = [i for i in (head.find(b"\r\n\r\n"), head.find(b"\n\n")) if i >= 0]
    head = b"\n" + head[:min(ends)] if ends else b"\n" + head
    found = _MESSAGE_ID.search(head)
    if found is None:
        return ""
    value = found.group(1).decode("utf-8", "replace").replace("\x00", "")
    return " ".join(value.split())


# --- the gateway: DATA --------------------------------------------------------------------

_INSERT = (
    "INSERT INTO gateway_spooled_mail (uid, org_id, sender_id, token, key_version, wrapped_key,"
    " sealed, size, state, attempts, lease_owner, outcome, recipients)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 0, '', '', '')"
    " ON CONFLICT (sender_id, token) DO NOTHING RETURNING id"
)


def accept(raw: bytes, *, mail_from: str, rcpt_tos: list[str], client: Client,
           sender: User | None = None, sender_found_at: float = -math.inf) -> Reply:
    """DATA with the spool on: the e-mail committed, sealed, in one statement; the reply."""
    facts = {"id": hashlib.sha256(raw).hexdigest()[:16], "org_slug": "-"}
    try:
        reply = _accept(raw, mail_from=mail_from, rcpt_tos=rcpt_tos, client=client, sender=sender,
                        sender_found_at=sender_found_at, facts=facts)
    except SmtpRefused as refusal:
        reply = refusal.reply
    except Exception as exc:
        log.warning("gateway could not spool message id=%s org=%s (%s); answered 451", facts["id"],
                    facts["org_slug"], type(exc).__name__)
        reply = TEMPORARY
    log.info("gateway message id=%s org=%s bytes=%d recipients=%d spooled reply=%s",
             facts["id"], facts["org_slug"], len(raw), len(rcpt_tos), reply.code)
    return reply


def _accept(raw: bytes, *, mail_from: str, rcpt_tos: list[str], client: Client, sender: User | None,
            sender_found_at: float, facts: dict) -> Reply:
    if sender is None or time.monotonic() - sender_found_at >= actions.SENDER_FRESH_SECONDS:
        sender = sender_of(mail_from, client)
    facts["org_slug"] = sender.org.slug
    recipients = list(dict.fromkeys(a.lower() for a in rcpt_tos))
    if not recipients:
        raise SmtpRefused(554, "5.5.1", "no valid recipients")
    message_id = message_id_of(raw) or "sha256:" + hashlib.sha256(raw).hexdigest()
    facts["id"] = hashlib.sha256(message_id.encode()).hexdigest()[:16]
    token = actions.send_token(message_id, recipients, raw)
    uid = secrets.token_hex(16)
    org_id = sender.org_id
    version, org_key = keys.current_key(sender.org)
    data_key = aead.new_key()
    envelope = json.dumps({"from": mail_from, "to": recipients,
                           "ip": str(client.ip) if client.ip is not None else None,
                           "auth": client.auth_org_id}).encode()
    sealed = aead.seal(data_key, envelope + b"\n" + raw, labels.spool_aad(org_id, uid))
    wrapped = aead.seal(org_key, data_key, labels.spool_key_aad(org_id, uid))
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [uid, org_id, sender.pk, token, version, wrapped, sealed, len(raw),
                                 State.PENDING])
        inserted = cursor.fetchone()
    return SPOOLED if inserted else actions.ALREADY


# --- the worker: storing what was spooled ---------------------------------------------------

def store_due(limit: int = BATCH) -> int:
    """Store (or refuse) up to ``limit`` spooled e-mails that are due; how many were tried."""
    _purge_if_due()
    owner = delivery.worker_id()
    claimed = _claim(owner, limit)
    for index, row in enumerate(claimed):
        if delivery.stopping.is_set():
            _release(owner, [r.pk for r in claimed[index:]])
            break
        try:
            _store(row, owner)
        except BaseException:
            _release(owner, [r.pk for r in claimed[index + 1:]])
            raise
    return len(claimed)


def _lease() -> timedelta:
    # Reading and storing one e-mail takes seconds at most (the reader's CPU budget bounds it);
    # a worker that dies holding it lets it go after this.
    return timedelta(seconds=max(settings.NOTIFY_LEASE_SECONDS, 4 * settings.SMTPD_READ_CPU_SECONDS))


def _claim(owner: str, limit: int) -> list[SpooledMail]:
    with transaction.atomic():
        pks = list(
            SpooledMail.objects.select_for_update(skip_locked=True)
            .filter(state=State.PENDING, next_attempt_at__lte=Now())
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
            .order_by("id").values_list("pk", flat=True)[:limit]
        )
        if not pks:
            return []
        SpooledMail.objects.filter(pk__in=pks).update(lease_until=Now() + _lease(), lease_owner=owner)
    return list(SpooledMail.objects.select_related("org").filter(pk__in=pks, lease_owner=owner).order_by("id"))


def _release(owner: str, pks: list[int]) -> None:
    if pks:
        SpooledMail.objects.filter(pk__in=pks, lease_owner=owner, state=State.PENDING).update(
            lease_until=None, lease_owner="")


def _opened(row: SpooledMail) -> tuple[dict, bytes]:
    org_key = keys.key_version(row.org_id, row.key_version)
    data_key = aead.open_sealed(org_key, bytes(row.wrapped_key), labels.spool_key_aad(row.org_id, row.uid))
    plain = aead.open_sealed(data_key, bytes(row.sealed), labels.spool_aad(row.org_id, row.uid))
    envelope, raw = plain.split(b"\n", 1)
    return json.loads(envelope), raw


def _store(row: SpooledMail, owner: str) -> None:
    try:
        envelope, raw = _opened(row)
    except (aead.DecryptionError, ValueError, LookupError):
        # Nothing can make it readable later: its sender hears now rather than in five days.
        log.error("gateway spooled message %s cannot be opened; refused", row.pk)
        _refuse(row, owner, Reply(554, "5.6.0", "Hushpost could not read the message it received"), [])
        return
    client = Client(ip=ipaddress.ip_address(envelope["ip"]) if envelope["ip"] else None,
                    auth_org_id=envelope["auth"])
    facts: dict = {}
    said = current_client.set(f"smtp {client.ip}" if client.ip else "smtp")
    try:
        # The sender is looked up again: one disabled, or no longer relayed for, is refused.
        reply = actions.receive_mail(raw, mail_from=envelope["from"], rcpt_tos=envelope["to"],
                                     client=client, facts=facts, token=row.token)
    finally:
        current_client.reset(said)
    if reply.accepted:
        SpooledMail.objects.filter(pk=row.pk, lease_owner=owner, state=State.PENDING).update(
            state=State.STORED, message_id=facts.get("message"), sealed=b"", wrapped_key=b"",
            done_at=Now(), lease_until=None, lease_owner="", outcome="")
    elif reply.code >= 500:
        _refuse(row, owner, reply, envelope["to"])
    else:
        _retry(row, owner, reply, envelope["to"])


def _refuse(row: SpooledMail, owner: str, reply: Reply, recipients: list[str]) -> None:
    """The row refused and its sender's e-mail queued, together and once."""
    with transaction.atomic():
        refused = SpooledMail.objects.filter(pk=row.pk, lease_owner=owner, state=State.PENDING).update(
            state=State.REFUSED, sealed=b"", wrapped_key=b"", done_at=Now(), lease_until=None,
            lease_owner="", outcome=reply.text[:500], recipients=", ".join(recipients))
        if not refused:
            return
        sender = User.objects.get(pk=row.sender_id)
        notification = queue_notification(Notification.Kind.NOT_SENT, sender)
        SpooledMail.objects.filter(pk=row.pk).update(notification=notification)
    log.info("gateway spooled message %s refused reply=%s; its sender is told", row.pk, reply.code)


def _retry(row: SpooledMail, owner: str, reply: Reply, recipients: list[str]) -> None:
    waited = SpooledMail.objects.filter(
        pk=row.pk, received_at__lte=Now() - timedelta(seconds=settings.SMTPD_SPOOL_GIVE_UP_SECONDS)).exists()
    if waited:
        _refuse(row, owner, Reply(554, "5.3.0", "Hushpost could not store it as a secure message for "
                                  f"{settings.SMTPD_SPOOL_GIVE_UP_SECONDS // 3600} hours; please send it again"),
                recipients)
        return
    delay = timedelta(seconds=min(30 * 2 ** row.attempts, 3600))
    SpooledMail.objects.filter(pk=row.pk, lease_owner=owner, state=State.PENDING).update(
        attempts=row.attempts + 1, next_attempt_at=Now() + delay, lease_until=None, lease_owner="")
    log.warning("gateway spooled message %s not stored yet (reply=%s); tried again in %d s",
                row.pk, reply.code, delay.total_seconds())


def _purge_if_due() -> None:
    global _purged_at
    if time.monotonic() - _purged_at < PURGE_EVERY_SECONDS:
        return
    _purged_at = time.monotonic()
    SpooledMail.objects.filter(
        state__in=(State.STORED, State.REFUSED),
        done_at__lt=Now() - timedelta(seconds=settings.SMTPD_SPOOL_KEEP_SECONDS)).delete()
