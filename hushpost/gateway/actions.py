"""What the gateway does with each SMTP command: check, then store, then answer.

``receive_mail`` turns one relayed e-mail into a secure message through the
same ``send_message`` Compose uses, and answers 250 only once it is committed.
Whatever is not a deliberate refusal (a database or file store that is down,
a bug) answers 451, so the relaying server keeps the message and tries again:
nothing it handed over is lost, and its retry is stored once, because the
send token comes from the Message-ID (or, without one, from the bytes).

Logs name the message by a hash of its Message-ID, never its content,
subject or addresses.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from hushpost.accounts.models import User
from hushpost.attachments import actions as files
from hushpost.attachments import cleanup
from hushpost.attachments.actions import FileRefused
from hushpost.attachments.models import Attachment
from hushpost.gateway import options as mail_options
from hushpost.gateway.access import Client, sender_of
from hushpost.gateway.parse import Mail, MailFile
from hushpost.gateway.reader import read_mail
from hushpost.gateway.replies import TEMPORARY, Reply, SmtpRefused
from hushpost.lib.db import DATABASE_ERRORS
from hushpost.lib.refusals import Refused
from hushpost.messaging.actions import Addressees, send_message
from hushpost.messaging.forms import BodyField
from hushpost.messaging.models import Message
from hushpost.notifications import bounces

log = logging.getLogger("hushpost.gateway")
MAX_ADDRESS = User._meta.get_field("email").max_length
CHUNK = 1024 * 1024
ALREADY = Reply(250, "2.0.0", "already received; stored once")


def takes_bounces(address: str) -> bool:
    """MAIL FROM:<>, the null sender of a delivery report, with a bounce address set: any
    client may send one, to the bounce address only (``check_bounce_recipient``)."""
    return address in ("", "<>") and bool(settings.BOUNCE_ADDRESS)  # aiosmtpd gives "<>"


def check_envelope_sender(address: str, client: Client) -> tuple[Reply, User | None]:
    """MAIL FROM: the envelope sender must be an active sender this client relays for
    (or the null sender of a delivery report, see ``takes_bounces``).  With the reply, the
    sender's account, which the transaction's DATA uses rather than looking it up again."""
    if takes_bounces(address):
        return Reply(250, "2.1.0", "sender OK"), None
    try:
        sender = sender_of(address, client)
    except SmtpRefused as refusal:
        log.info("gateway refused sender client=%s reply=%s", client.ip, refusal.reply.code)
        return refusal.reply, None
    except DATABASE_ERRORS as exc:  # an outage: one line each, not a traceback
        log.warning("gateway could not check a sender client=%s (%s) reply=451", client.ip, type(exc).__name__)
        return TEMPORARY, None
    except Exception:
        log.exception("gateway could not check a sender client=%s reply=451", client.ip)
        return TEMPORARY, None
    return Reply(250, "2.1.0", "sender OK"), sender


def check_recipient(address: str, accepted: list[str]) -> Reply:
    """RCPT TO: any valid address, up to the recipients Compose allows on one message."""
    address = address.strip().lower()
    try:
        if len(address) > MAX_ADDRESS:
            raise ValidationError("too long")
        validate_email(address)
    except ValidationError:
        return Reply(553, "5.1.3", f"{address} is not an address Hushpost can send to")
    if bounces.is_bounce_address(address):
        return Reply(550, "5.7.1", "this address takes delivery reports only, from the null sender")
    if address not in accepted and len(accepted) >= settings.MAX_RECIPIENTS:
        # RFC 5321 4.5.3.1.10: the client sends to the others in another transaction.
        return Reply(452, "4.5.3", f"too many recipients; at most {settings.MAX_RECIPIENTS} at once")
    return Reply(250, "2.1.5", "recipient OK")


def check_bounce_recipient(address: str, accepted: list[str]) -> Reply:
    """RCPT TO after MAIL FROM:<>: the bounce address, tagged or not, and nothing else.
    Whether a tag is genuine is not said here, nor anywhere in a reply."""
    if not bounces.is_bounce_address(address) or len(address) > MAX_ADDRESS:
        return Reply(550, "5.7.1", "mail from the null sender is taken for the bounce address only")
    if address.lower() not in accepted and len(accepted) >= settings.MAX_RECIPIENTS:
        return Reply(452, "4.5.3", f"too many recipients; at most {settings.MAX_RECIPIENTS} at once")
    return Reply(250, "2.1.5", "recipient OK")


def receive_bounce(raw: bytes, *, rcpt_tos: list[str], client: Client | None = None) -> Reply:
    """DATA of a delivery report: 250 whether it counted or not (a forged or unknown tag is
    dropped without a word); only a report too big to read, or a failure to store, says so.
    ``client``: the reporting server, which the audit event names."""
    report_id = bounces.fingerprint(raw)
    if len(raw) > settings.BOUNCE_MAX_BYTES:
        log.info("gateway bounce id=%s bytes=%d reply=552", report_id, len(raw))
        return Reply(552, "5.3.4", f"a delivery report is read up to {settings.BOUNCE_MAX_BYTES} bytes")
    try:
        outcome = bounces.receive(raw, rcpt_tos)
    except Exception as exc:
        log.warning("gateway could not record bounce id=%s (%s); answered 451", report_id, type(exc).__name__)
        return TEMPORARY
    log.info("gateway bounce id=%s bytes=%d outcome=%s reply=250", report_id, len(raw), outcome)
    return Reply(250, "2.0.0", "delivery report received")


# DATA stores as the sender MAIL FROM found if it was found less than this long ago, judged
# when the message is about to be stored (after any wait for a worker thread and the parsing);
# older, the sender is looked up again, so one disabled meanwhile is refused.
SENDER_FRESH_SECONDS = 60.0


def receive_mail(raw: bytes, *, mail_from: str, rcpt_tos: list[str], client: Client,
                 sender: User | None = None, sender_found_at: float = -math.inf,
                 facts: dict | None = None, token: str | None = None) -> Reply:
    """DATA: store the e-mail as a secure message; the reply for the relaying server.

    ``sender``: the envelope sender's account as this transaction's MAIL FROM found it, at
    ``sender_found_at`` (``time.monotonic()``); looked up again when not given or too old.
    ``facts``: filled in with what the log line says, and the stored message's key as "message".
    ``token``: the send token the spool judged the e-mail by (:func:`send_token` otherwise).
    """
    facts = facts if facts is not None else {}
    facts.update(id=hashlib.sha256(raw).hexdigest()[:16], org_slug="-", files=0)
    try:
        reply = _receive(raw, mail_from=mail_from, rcpt_tos=rcpt_tos, client=client, sender=sender,
                         sender_found_at=sender_found_at, facts=facts, token=token)
    except SmtpRefused as refusal:
        reply = refusal.reply
    except FileRefused as exc:
        reply = Reply(552, "5.3.4", str(exc))
    except Refused as exc:  # the organisation's policy, checked again as the message is stored
        reply = Reply(550, "5.7.0", str(exc))
    except Exception as exc:
        # The exception's type only: some messages quote header values.
        log.warning("gateway could not store message id=%s org=%s (%s); answered 451", facts["id"], facts["org_slug"],
                    type(exc).__name__)
        reply = TEMPORARY
    log.info("gateway message id=%s org=%s bytes=%d files=%d recipients=%d reply=%s",
             facts["id"], facts["org_slug"], len(raw), facts["files"], len(rcpt_tos), reply.code)
    return reply


def _receive(raw: bytes, *, mail_from: str, rcpt_tos: list[str], client: Client, sender: User | None,
             sender_found_at: float, facts: dict, token: str | None) -> Reply:
    mail = read_mail(raw, settings.SMTPD_READ_CPU_SECONDS)
    if time.monotonic() - sender_found_at >= SENDER_FRESH_SECONDS:
        sender = None
    message_id = mail.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()
    facts["id"] = hashlib.sha256(message_id.encode()).hexdigest()[:16]
    facts["files"] = len(mail.files)
    envelope_sender = sender or sender_of(mail_from, client)
    if len(mail.from_addresses) != 1:
        raise SmtpRefused(550, "5.7.1", "the From header must name exactly one sender")
    from_address = mail.from_addresses[0]
    same = from_address.strip().lower() == mail_from.strip().lower()
    author = envelope_sender if same else sender_of(from_address, client)  # the usual case: one look-up
    facts["org_slug"] = author.org.slug
    if author.pk != envelope_sender.pk:
        # The message is stored as its From address's: only that sender may relay it.
        raise SmtpRefused(550, "5.7.1", "the From address must be the envelope sender")
    recipients = list(dict.fromkeys(a.lower() for a in rcpt_tos))
    if not recipients:
        raise SmtpRefused(554, "5.5.1", "no valid recipients")
    token = token or send_token(message_id, recipients, raw)
    # A retry of a stored e-mail (its 250 lost on the way) is answered 250, even if the
    # organisation's settings changed since.  The unique send token finds it as the message
    # is stored; only a refusal, or files about to be stored again, ask first.
    if mail.files and (stored := _stored(author, token)):
        facts["message"] = stored
        return ALREADY
    drafts: list[Attachment] = []
    try:
        org = author.org
        subject, options = mail_options.read_options(
            mail_options.secure_subject(mail.subject, org), mail.options_header, org)
        body = _body(mail)
        drafts = _store_files(author, mail.files)
        message = send_message(
            author=author, addressees=addressees(recipients, mail), subject=subject, body_html=body,
            options=options, send_token=token, file_uids=[d.uid for d in drafts],
        )
    except Refused:
        if stored := _stored(author, token):
            facts["message"] = stored
            return ALREADY
        raise
    finally:
        # Drafts not on a message now (a refusal, a failure, or the same e-mail
        # stored a moment ago by another session) are nobody's: remove them.
        _discard_unsent(author, drafts)
    facts["message"] = message.pk
    return ALREADY if message.stored_before else Reply(250, "2.0.0", "stored as a secure message")


def _stored(author: User, token: str) -> int | None:
    """The message this e-mail was stored as before, if it was: a retry's answer names it too
    (the spool records which message its row became)."""
    return Message.objects.filter(author=author, send_token=token).values_list("pk", flat=True).first()


def send_token(message_id: str, recipients: list[str], raw: bytes = b"") -> str:
    """The same e-mail to the same recipients is one message, however often it is relayed.

    The recipients count too: a server that splits one e-mail's recipients over
    several transactions gets one message per transaction, none lost. So does
    the body: a different e-mail that reuses a Message-ID never passes for a
    retry of the first one (nor stops the first one, sent later, from arriving).
    """
    body = raw.split(b"\r\n\r\n", 1)[-1] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[-1]
    key = message_id + "\n" + ",".join(sorted(recipients)) + "\n" + hashlib.sha256(body).hexdigest()
    return "gw-" + hashlib.sha256(key.encode()).hexdigest()[:40]


def addressees(recipients: list[str], mail: Mail) -> Addressees:
    """Every envelope recipient; To and Cc as the headers say, the others Bcc.

    The envelope decides who receives (as for any e-mail): a header address
    that is not an envelope recipient was delivered some other way.
    """
    to = [a for a in mail.to if a in recipients]
    cc = [a for a in mail.cc if a in recipients and a not in to]
    bcc = [a for a in recipients if a not in to and a not in cc]
    return Addressees(to=to, cc=cc, bcc=bcc)


def _body(mail: Mail) -> str:
    """The body cleaned exactly as Compose cleans one."""
    try:
        return BodyField().clean_body(mail.body, mail.body_format)
    except ValidationError as exc:
        if len(mail.body.encode()) > settings.MAX_BODY_BYTES:
            raise SmtpRefused(552, "5.3.4", exc.messages[0]) from None
        if mail.files:
            return ""  # files and no text: the files are the message
        raise SmtpRefused(550, "5.6.0", "the message has no text and no attached files") from None


def _store_files(author: User, mail_files: list[MailFile]) -> list[Attachment]:
    if len(mail_files) > files.MAX_FILES:
        raise FileRefused(f"A message can carry at most {files.MAX_FILES} files.")
    files.check_total(author, mail_files)  # before storing anything (each file's size is checked as it is stored)
    drafts: list[Attachment] = []
    try:
        for f in mail_files:
            data = f.content
            drafts.append(files.receive(author, f.name, f.content_type,
                                        (data[i:i + CHUNK] for i in range(0, len(data), CHUNK))))
    except BaseException:
        _discard_unsent(author, drafts)
        raise
    return drafts


def _discard_unsent(author: User, drafts: list[Attachment]) -> None:
    if not drafts:
        return
    try:
        unsent = Attachment.objects.filter(pk__in=[d.pk for d in drafts], message__isnull=True)
        for uid in unsent.values_list("uid", flat=True):
            cleanup.discard_draft(author, uid)
    except Exception:  # the database is away: the stale-draft purge removes them later
        log.warning("gateway could not remove unsent drafts now; the draft purge will", exc_info=True)
