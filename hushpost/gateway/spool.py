"""The gateway's spool (``HUSHPOST_SMTPD_SPOOL``): 250 once an e-mail is committed, stored after.

``accept`` runs in the gateway at DATA. Who may relay, for whom and to how many was answered
during the SMTP dialogue, as always; what is left is one INSERT: the envelope and the bytes
sealed under a fresh data key (AES-256-GCM, :mod:`hushpost.crypto.aead`), the data key wrapped
under the organisation's current key, and the send token (:func:`.actions.send_token`) under a
unique constraint, so a relayed retry of an e-mail already spooled inserts nothing and is
answered "already received". The gateway neither parses the e-mail (a header scan finds its
Message-ID) nor stores files: a fraction of a synchronous DATA's CPU. A database that cannot
take the INSERT is answered 451, as before.

An organisation may have at most ``SMTPD_SPOOL_MAX_PENDING`` e-mails waiting: past that the
INSERT adds nothing and the e-mail is stored while the client waits, as with the spool off, so a
relay that floods the spool is slowed to what storing costs instead of filling the database.

``store_due`` runs in ``hushpost worker``, each round, for a few seconds at most: it claims due
rows under a lease judged by the database's clock (as notifications are claimed), takes each
again (lease renewed, the sealed bytes read fresh) just before opening it, and stores it through
the same :func:`.actions.receive_mail` a synchronous DATA uses, with the sender looked up again:
one disabled meanwhile, no longer relayed for, or now a different account, is refused. A 2xx
outcome marks the row stored; a 5xx one (a From that is not the envelope sender, a file too big,
the organisation's policy) marks it refused and queues a "Secure Messaging Not Sent" e-mail to the
sender in the same transaction, once, naming the kind of refusal in Hushpost's own words (never
the reply's text, which quotes the e-mail); a 4xx one (the file store down, a reader that did not
answer, a key not readable) is tried again with backoff, for up to
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
from hushpost.lib import clock, rows
from hushpost.lib.db import DATABASE_ERRORS
from hushpost.messaging.models import Message
from hushpost.notifications import delivery
from hushpost.notifications.actions import queue_notification
from hushpost.notifications.models import Notification

log = logging.getLogger("hushpost.gateway")

SPOOLED = Reply(250, "2.0.0", "queued to be stored as a secure message")
State = SpooledMail.State
Reason = SpooledMail.Reason
BATCH = 10
# A worker's round stores spooled e-mails for about this long, then sees to the e-mails due.
ROUND_SECONDS = 5.0
# The header block scanned for the Message-ID: the reader refuses more header than this anyway.
HEADER_SCAN_BYTES = 1024 * 1024
_MESSAGE_ID = re.compile(rb"^message-id:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)", re.IGNORECASE | re.MULTILINE)
_HEADER_ENDS = (b"\r\n\r\n", b"\n\n", b"\n\r\n")
PURGE_EVERY_SECONDS = 600.0
_purged_at = -math.inf
# A sender hears of at most this many refused e-mails an hour; the others are refused in silence
# (and logged): a relay cannot fill a colleague's mailbox with "not sent" e-mails.
NOT_SENT_PER_HOUR = 10


def takes(raw: bytes) -> bool:
    """Whether DATA spools this e-mail rather than storing it while the client waits."""
    return settings.SMTPD_SPOOL and len(raw) <= settings.SMTPD_SPOOL_MAX_BYTES


def message_id_of(raw: bytes) -> str:
    """The Message-ID header, unfolded and its spaces collapsed, found by a scan of the header
    block: nothing here parses MIME or decodes a header. For an ordinary Message-ID it is what
    the reader finds; one written as encoded words, or lines ended by a bare CR, it reads
    differently, so such an e-mail retried across the spool and the synchronous path (the spool
    turned on, or its size limit changed, between the tries) could be stored twice."""
    head = raw[:HEADER_SCAN_BYTES]
    ends = [i for i in (head.find(end) for end in _HEADER_ENDS) if i >= 0]
    head = b"\n" + (head[:min(ends)] if ends else head)
    found = _MESSAGE_ID.search(head)
    if found is None:
        return ""
    value = found.group(1).decode("utf-8", "replace").replace("\x00", "")
    return " ".join(value.split())


# --- the gateway: DATA --------------------------------------------------------------------

# One statement: the row, unless the organisation already has its fill waiting (counted no
# further than the cap), or the same e-mail from the same sender is spooled already.
_INSERT = (
    "INSERT INTO gateway_spooled_mail (uid, org_id, sender_id, token, key_version, wrapped_key,"
    " sealed, size, state, attempts, lease_owner, outcome, recipients)"
    " SELECT %s, %s, %s, %s, %s, %s, %s, %s, 'pending', 0, '', '', ''"
    " WHERE (SELECT count(*) FROM (SELECT 1 FROM gateway_spooled_mail"
    "        WHERE org_id = %s AND state = 'pending' LIMIT %s) AS waiting) < %s"
    " ON CONFLICT (sender_id, token) DO NOTHING"
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
    if reply is None:  # the organisation's spool is full: stored while the client waits
        log.info("gateway spool full for org=%s; message id=%s stored now", facts["org_slug"], facts["id"])
        return actions.receive_mail(raw, mail_from=mail_from, rcpt_tos=rcpt_tos, client=client,
                                    sender=sender, sender_found_at=sender_found_at)
    log.info("gateway message id=%s org=%s bytes=%d recipients=%d spooled reply=%s",
             facts["id"], facts["org_slug"], len(raw), len(rcpt_tos), reply.code)
    return reply


def _accept(raw: bytes, *, mail_from: str, rcpt_tos: list[str], client: Client, sender: User | None,
            sender_found_at: float, facts: dict) -> Reply | None:
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
    sealed = aead.seal(data_key, envelope + b"\n" + raw, labels.spool_aad(org_id, uid, sender.pk, token))
    wrapped = aead.seal(org_key, data_key, labels.spool_key_aad(org_id, uid))
    cap = settings.SMTPD_SPOOL_MAX_PENDING
    with connection.cursor() as cursor:
        cursor.execute(_INSERT, [uid, org_id, sender.pk, token, version, wrapped, sealed, len(raw),
                                 org_id, cap, cap])
        if cursor.rowcount == 1:
            return SPOOLED
    if SpooledMail.objects.filter(sender=sender, token=token).exists():
        return actions.ALREADY
    return None


# --- the worker: storing what was spooled ---------------------------------------------------

def store_due(limit: int = BATCH) -> int:
    """Store (or refuse) spooled e-mails that are due, for about ``ROUND_SECONDS``; how many
    were tried."""
    _purge_if_due()
    owner = delivery.worker_id()
    started = time.monotonic()
    claimed = _claim(owner, limit)
    for index, pk in enumerate(claimed):
        if delivery.stopping.is_set() or time.monotonic() - started > ROUND_SECONDS:
            _release(owner, claimed[index:])
            return index
        try:
            _store(pk, owner, started)
        except DATABASE_ERRORS:
            _release(owner, claimed[index + 1:])
            raise
        except Exception:  # noqa: BLE001 - one e-mail that fails must not stop the worker
            log.exception("gateway spooled message %s could not be stored; tried again later", pk)
            row = SpooledMail.objects.filter(pk=pk).only("pk", "sender_id", "attempts").first()
            if row is not None:
                _retry(row, owner, [])
    return len(claimed)


def _lease() -> timedelta:
    # Reading and storing one e-mail takes seconds at most (the reader's CPU budget bounds it) and
    # a round a few seconds: the lease outlasts a round many times over, is renewed should one run
    # long, and a worker that dies holding rows lets them go after it.
    return timedelta(seconds=max(settings.NOTIFY_LEASE_SECONDS, 4 * settings.SMTPD_READ_CPU_SECONDS))


def _claim(owner: str, limit: int) -> list[int]:
    with transaction.atomic():
        pks = list(
            SpooledMail.objects.select_for_update(skip_locked=True)
            .filter(state=State.PENDING, next_attempt_at__lte=Now())
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
            .order_by("id").values_list("pk", flat=True)[:limit]
        )
        if pks:
            SpooledMail.objects.filter(pk__in=pks).update(lease_until=Now() + _lease(), lease_owner=owner)
    return pks


# Each e-mail's row read again just before it is stored, and marked stored after: written out
# rather than compiled by the ORM each time (they were half the worker's CPU per e-mail).
_ROW = rows.Columns(SpooledMail, "s")
_TAKE = (f"SELECT {_ROW.sql} FROM gateway_spooled_mail s"  # noqa: S608 - the model's own columns
         " WHERE s.id = %s AND s.lease_owner = %s AND s.state = 'pending'")
_STORED = ("UPDATE gateway_spooled_mail SET state = 'stored', message_id = %s, sealed = %s, wrapped_key = %s,"
           " done_at = %s, lease_until = NULL, lease_owner = '', outcome = ''"
           " WHERE id = %s AND lease_owner = %s AND state = 'pending'")


def _take(pk: int, owner: str, claimed_at: float) -> SpooledMail | None:
    """The row as it is now, if this worker still holds it. The lease outlasts a round many
    times over; should this round have run long, it is renewed first (or found lost)."""
    if time.monotonic() - claimed_at > _lease().total_seconds() / 3:
        renewed = SpooledMail.objects.filter(pk=pk, state=State.PENDING, lease_owner=owner,
                                             lease_until__gt=Now()).update(lease_until=Now() + _lease())
        if not renewed:
            return None
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, [pk, owner])
        row = cursor.fetchone()
    return rows.build((_ROW,), row)[0] if row else None


def _mark_stored(row: SpooledMail, owner: str, message_pk: int | None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_STORED, [message_pk, b"", b"", connection.ops.adapt_datetimefield_value(clock.now()),
                                 row.pk, owner])


def _release(owner: str, pks: list[int]) -> None:
    if pks:
        SpooledMail.objects.filter(pk__in=pks, lease_owner=owner, state=State.PENDING).update(
            lease_until=None, lease_owner="")


def _data_key(row: SpooledMail) -> bytes:
    org_key = keys.key_version(row.org_id, row.key_version)
    return aead.open_sealed(org_key, bytes(row.wrapped_key), labels.spool_key_aad(row.org_id, row.uid))


def _opened(row: SpooledMail, data_key: bytes) -> tuple[dict, bytes]:
    aad = labels.spool_aad(row.org_id, row.uid, row.sender_id, row.token)
    plain = aead.open_sealed(data_key, bytes(row.sealed), aad)
    envelope, raw = plain.split(b"\n", 1)
    return json.loads(envelope), raw


def _store(pk: int, owner: str, claimed_at: float = -math.inf) -> None:
    row = _take(pk, owner, claimed_at)
    if row is None:
        return  # another worker took it over, or it is done
    try:
        data_key = _data_key(row)
    except Exception:  # noqa: BLE001 - a key version not (yet, or any longer) readable here
        log.exception("gateway spooled message %s: its key cannot be read; tried again later", pk)
        _retry(row, owner, [])
        return
    try:
        envelope, raw = _opened(row, data_key)
    except (aead.DecryptionError, ValueError, LookupError):
        # Its key opens, its bytes do not: nothing will make them readable later.
        log.error("gateway spooled message %s cannot be opened; refused", pk)
        _refuse(row, owner, Reason.DAMAGED, [])
        return
    client = Client(ip=ipaddress.ip_address(envelope["ip"]) if envelope["ip"] else None,
                    auth_org_id=envelope["auth"])
    facts: dict = {}
    said = current_client.set(f"smtp {client.ip}" if client.ip else "smtp")
    try:
        # The sender is looked up again: one disabled, no longer relayed for, or whose address
        # now names another account, is refused.
        try:
            sender = sender_of(envelope["from"], client)
        except SmtpRefused as refusal:
            reply = refusal.reply
        else:
            if sender.pk != row.sender_id or sender.org_id != row.org_id:
                reply = Reply(550, "5.7.1", "the sender is no longer the account that relayed it")
            else:
                reply = actions.receive_mail(raw, mail_from=envelope["from"], rcpt_tos=envelope["to"],
                                             client=client, sender=sender, sender_found_at=time.monotonic(),
                                             facts=facts, token=row.token)
    finally:
        current_client.reset(said)
    stored = reply.accepted or (
        reply.code >= 500 and Message.objects.filter(author_id=row.sender_id, send_token=row.token).exists())
    if stored:  # a 5xx for an e-mail already stored (a sender disabled since) changes nothing
        _mark_stored(row, owner, facts.get("message"))
    elif reply.code >= 500:
        _refuse(row, owner, reason_of(reply), envelope["to"])
    else:
        _retry(row, owner, envelope["to"])


def reason_of(reply: Reply) -> str:
    """The kind of refusal, by its enhanced status code: the reply's own text quotes the e-mail
    (a file's name, an option, an address), so it is never kept or e-mailed."""
    return {"5.7.1": Reason.SENDER, "5.7.0": Reason.POLICY, "5.3.4": Reason.SIZE,
            "5.6.0": Reason.FORM}.get(reply.status, Reason.OTHER)


def _refuse(row: SpooledMail, owner: str, reason: str, recipients: list[str]) -> None:
    """The row refused and its sender's e-mail queued, together and once."""
    with transaction.atomic():
        refused = SpooledMail.objects.filter(pk=row.pk, lease_owner=owner, state=State.PENDING).update(
            state=State.REFUSED, sealed=b"", wrapped_key=b"", done_at=Now(), lease_until=None,
            lease_owner="", outcome=reason, recipients=", ".join(recipients))
        if not refused:
            return
        sender = User.objects.select_related("org").get(pk=row.sender_id)
        told = Notification.objects.filter(user=sender, kind=Notification.Kind.NOT_SENT,
                                           created_at__gt=clock.now() - timedelta(hours=1)).count()
        if sender.is_active and sender.org.is_active and told < NOT_SENT_PER_HOUR:
            notification = queue_notification(Notification.Kind.NOT_SENT, sender)
            SpooledMail.objects.filter(pk=row.pk).update(notification=notification)
    log.info("gateway spooled message %s refused (%s); its sender is told unless told %d times "
             "this hour or no longer active", row.pk, reason, NOT_SENT_PER_HOUR)


def _retry(row: SpooledMail, owner: str, recipients: list[str]) -> None:
    waited = SpooledMail.objects.filter(
        pk=row.pk, received_at__lte=Now() - timedelta(seconds=settings.SMTPD_SPOOL_GIVE_UP_SECONDS)).exists()
    if waited:
        _refuse(row, owner, Reason.GAVE_UP, recipients)
        return
    delay = timedelta(seconds=min(30 * 2 ** row.attempts, 3600))
    SpooledMail.objects.filter(pk=row.pk, lease_owner=owner, state=State.PENDING).update(
        attempts=row.attempts + 1, next_attempt_at=Now() + delay, lease_until=None, lease_owner="")
    log.warning("gateway spooled message %s not stored yet; tried again in %d s", row.pk, delay.total_seconds())


def _purge_if_due() -> None:
    global _purged_at
    if time.monotonic() - _purged_at < PURGE_EVERY_SECONDS:
        return
    _purged_at = time.monotonic()
    SpooledMail.objects.filter(
        state__in=(State.STORED, State.REFUSED),
        done_at__lt=Now() - timedelta(seconds=settings.SMTPD_SPOOL_KEEP_SECONDS)).delete()
