"""What the fault tests do to and read from Hushpost's database, as separate processes.

``python -m tests.faults.dbscript seed --recipients M --messages N`` sets up an
organisation with one sender and sends N messages, each to the same M new
external recipients, through the real send action: each recipient is owed a
Password Notification and N Secure Messaging Notifications.

``python -m tests.faults.dbscript inspect`` reads, on standard input, the
temporary passwords the relay saw ([[address, password], ...]) and prints, as
JSON, every notification's state, the audit events recorded per notification,
and whether each password is one the recipient can sign in with now.

``python -m tests.faults.dbscript organisation --senders N`` sets up the
organisation alone, with N senders who sign in with PASSWORD and whose mail
server on loopback may relay to the SMTP gateway. ``python -m
tests.faults.dbscript messages`` prints every stored message: its uid, send
token, recipients and the storage keys of its files; ``chains``, the state of
the audit chains; ``spool``, the gateway's spooled e-mails by state and the subject of every
message stored from the gateway, opened as its recipients would read it.

``python -m tests.faults.dbscript retention policy|hold-lease|due-later|release-lease|state``
sets a policy purging every conversation at once (``archive``: adds messages from forty days
ago, already notified, to the organisation ``organisation`` set up, and a policy purging only
those), holds or releases the retention job's lease
as another machine would, makes the newest message due only five minutes from now, and prints
how many messages are purged and how often each was.

``python -m tests.faults.dbscript reminders policy|sent-days-ago|state`` turns reminders on (one,
a day after sending), back-dates every message two days by the database's clock, and prints each
delivery's reminder count and the reminder e-mails owed.

All run under the same HUSHPOST_* environment as the workers, so they read
the same database with the same keys.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from collections import Counter
from datetime import timedelta

SENDER = "nadia@harbour.example"
# Twenty purge batches: a run of several seconds, longer than an interval of one, so that another
# worker asking meanwhile finds the job due and only its lease keeps it off.
ARCHIVED = 1000
PASSWORD = "Quiet-harbour-lantern-42"


def recipient(i: int) -> str:
    return f"patient{i:03d}@mail.example"


def seed(recipients: int, messages: int) -> dict:
    from hushpost.accounts.actions import create_sender
    from hushpost.messaging.actions import Addressees, SendOptions, send_message
    from hushpost.orgs.actions import create_organization

    create_organization(name="Harbour Clinic", domains=["harbour.example"])
    author = create_sender(email=SENDER, name="Nadia Okafor", password=PASSWORD)
    to = [recipient(i) for i in range(recipients)]
    for n in range(messages):
        send_message(author=author, addressees=Addressees(to=to), subject=f"Test results {n + 1}",
                     body_html=f"<p>Your results, part {n + 1}.</p>", options=SendOptions(),
                     send_token=uuid.uuid4().hex)
    return {"recipients": to, "messages": messages}


def sender(i: int) -> str:
    return f"sender{i}@harbour.example"


def organisation(senders: int) -> dict:
    from hushpost.accounts.actions import create_sender
    from hushpost.gateway.config import configure
    from hushpost.orgs.actions import create_organization

    org = create_organization(name="Harbour Clinic", domains=["harbour.example"])
    addresses = [sender(i) for i in range(senders)]
    for i, address in enumerate(addresses):
        create_sender(email=address, name=f"Sender {i}", password=PASSWORD)
    configure(org, networks="127.0.0.1/32")
    return {"senders": addresses}


def messages() -> list[dict]:
    from hushpost.attachments.models import Attachment
    from hushpost.messaging.models import Delivery, Message
    from hushpost.notifications.links import message_reference

    recipients: dict[int, list[str]] = {}
    for message_id, email in Delivery.objects.values_list("message_id", "recipient__email"):
        recipients.setdefault(message_id, []).append(email)
    files: dict[int, list[str]] = {}
    for message_id, key in Attachment.objects.filter(message__isnull=False).values_list("message_id", "store_key"):
        files.setdefault(message_id, []).append(key)
    # Its reference code: how a test tells which message an e-mail is about (links name the e-mail).
    return [{"uid": uid, "send_token": token, "author": author, "recipients": sorted(recipients.get(pk, [])),
             "files": files.get(pk, []), "reference": message_reference(uid)}
            for pk, uid, token, author in Message.objects.order_by("id").values_list(
                "id", "uid", "send_token", "author__email")]


def spool() -> dict:
    from hushpost.gateway.models import SpooledMail
    from hushpost.messaging.content import open_content
    from hushpost.messaging.models import Message

    states = Counter(SpooledMail.objects.values_list("state", flat=True))
    relayed = Message.objects.filter(send_token__startswith="gw-").order_by("id")
    return {"states": dict(states), "subjects": [open_content(message).subject for message in relayed]}


def chains() -> dict:
    """Each organisation's audit chain as the linkers left it: how many events wait unchained,
    and each chain's positions, which are 1, 2, 3... once each if no two linkers overlapped."""
    from hushpost.audit.models import AuditEvent

    positions: dict[str, list[int]] = {}
    for org_id, seq in AuditEvent.objects.filter(seq__isnull=False).order_by("seq").values_list("org_id", "seq"):
        positions.setdefault(str(org_id or 0), []).append(seq)
    return {"unchained": AuditEvent.objects.filter(hash__isnull=True).count(), "positions": positions}


def inspect(passwords: list[list[str]]) -> dict:
    from django.contrib.auth.hashers import check_password

    from hushpost.accounts.models import User
    from hushpost.audit.models import AuditEvent
    from hushpost.lib import clock
    from hushpost.notifications.models import Notification

    notifications = [
        {"key": str(key), "kind": kind, "status": status, "email": email}
        for key, kind, status, email in Notification.objects.order_by("id").values_list(
            "key", "kind", "status", "user__email")
    ]
    audit = Counter(AuditEvent.objects.filter(action=AuditEvent.Action.NOTIFICATION)
                    .values_list("object_id", flat=True))
    works = []
    for address, password in passwords:
        user = User.objects.get(role=User.Role.RECIPIENT, email=address)
        # The hasher's own check, not user.check_password(), which would rehash
        # and save the password: looking must not change what is looked at.
        works.append(
            check_password(password, user.password)
            and user.must_change_password
            and user.temp_password_expires_at is not None
            and user.temp_password_expires_at > clock.now()
        )
    return {"notifications": notifications, "audit": dict(audit), "passwords_work": works}


def retention(step: str) -> dict:
    from django.db.models.functions import Now

    from hushpost.accounts.models import User
    from hushpost.audit.models import AuditEvent
    from hushpost.messaging.models import Message
    from hushpost.retention.actions import set_policy
    from hushpost.server import periodic
    from hushpost.server.models import PeriodicRun

    if step == "policy":
        admin = User.objects.get(email=SENDER)
        set_policy(admin.org, by=admin, after_expiry_days=None, after_deletion_days=None, after_activity_days=0)
        return {}
    if step == "hold-lease":
        # A purge that began two minutes ago and still renews its lease: the interval has
        # passed, only the lease keeps another worker off it.
        held = periodic.claim("retention", "another-machine") is not None
        PeriodicRun.objects.filter(job="retention").update(last_started_at=Now() - timedelta(minutes=2))
        return {"held": held}
    if step == "due-later":
        # The newest conversation is due in five minutes by the database's clock: already, by the
        # clock of a worker ten minutes ahead.
        message = Message.objects.order_by("-pk").first()
        Message.objects.filter(pk=message.pk).update(created_at=Now() + timedelta(minutes=5))
        return {"uid": message.uid}
    if step == "archive":
        return archive()
    if step == "release-lease":
        periodic.Lease("retention", "another-machine").finish("released")
        return {}
    events = Counter(AuditEvent.objects.filter(action=AuditEvent.Action.PURGE).values_list("object_id", flat=True))
    return {"messages": Message.objects.count(), "purged": Message.objects.filter(purged_at__isnull=False).count(),
            "purge_events": dict(events)}


def reminders(step: str) -> dict:
    from django.db.models.functions import Now

    from hushpost.messaging.models import Delivery, Message
    from hushpost.notifications.models import Notification
    from hushpost.orgs.models import Organization

    if step == "policy":
        Organization.objects.update(remind_after_days=1, remind_times=1, remind_tells_sender=True)
        return {}
    if step == "sent-days-ago":
        Message.objects.update(created_at=Now() - timedelta(days=2))
        return {}
    return {"reminders_sent": sorted(Delivery.objects.values_list("reminders_sent", flat=True)),
            "reminder_emails": Notification.objects.filter(kind=Notification.Kind.REMINDER).count()}


def archive() -> dict:
    """ARCHIVED messages from the first sender, to an address of their own, written forty days ago
    and notified long since (their e-mails are no longer owed), and a policy that purges a
    conversation a day after its last activity: these are due at once, what is sent today is not."""
    from django.db.models.functions import Now
    from django_tasks_db.models import DBTaskResult

    from hushpost.accounts.models import User
    from hushpost.messaging.actions import Addressees, SendOptions, send_message
    from hushpost.messaging.models import Message
    from hushpost.notifications.models import Notification
    from hushpost.retention.actions import set_policy

    author = User.objects.get(email=sender(0))
    to = ["archive@mail.example"]
    uids = [send_message(author=author, addressees=Addressees(to=to), subject=f"Old results {n + 1}",
                         body_html=f"<p>Old results, part {n + 1}.</p>", options=SendOptions(),
                         send_token=f"archived-{uuid.uuid4().hex}").uid for n in range(ARCHIVED)]
    owed = Notification.objects.filter(user__email__in=to)
    keys = {str(key) for key in owed.values_list("key", flat=True)}
    DBTaskResult.objects.filter(pk__in=[pk for pk, args in DBTaskResult.objects.values_list("pk", "args_kwargs")
                                        if keys & set(map(str, args.get("args", [])))]).delete()
    owed.delete()
    Message.objects.filter(uid__in=uids).update(created_at=Now() - timedelta(days=40))
    set_policy(author.org, by=author, after_expiry_days=None, after_deletion_days=None, after_activity_days=1)
    return {"uids": uids}


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="action", required=True)
    seeding = sub.add_parser("seed")
    seeding.add_argument("--recipients", type=int, required=True)
    seeding.add_argument("--messages", type=int, required=True)
    sub.add_parser("inspect")
    setting_up = sub.add_parser("organisation")
    setting_up.add_argument("--senders", type=int, required=True)
    sub.add_parser("messages")
    sub.add_parser("chains")
    sub.add_parser("spool")
    sub.add_parser("retention").add_argument("step", choices=["policy", "archive", "hold-lease", "due-later",
                                                                    "release-lease", "state"])
    sub.add_parser("reminders").add_argument("step", choices=["policy", "sent-days-ago", "state"])
    args = parser.parse_args()

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hushpost.settings")
    import django

    django.setup()
    if args.action == "seed":
        result = seed(args.recipients, args.messages)
    elif args.action == "organisation":
        result = organisation(args.senders)
    elif args.action == "messages":
        result = messages()
    elif args.action == "chains":
        result = chains()
    elif args.action == "spool":
        result = spool()
    elif args.action == "retention":
        result = retention(args.step)
    elif args.action == "reminders":
        result = reminders(args.step)
    else:
        result = inspect(json.load(sys.stdin))
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
