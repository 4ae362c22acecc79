"""Delivering notifications: each e-mail sent once, in order, and recorded with its audit event.

A worker claims due notifications under a lease (``lease_owner`` until
``lease_until``, both judged by the database's clock, never the worker's own).
Before each e-mail it confirms the notification is still its own and renews the
lease, and the send has a deadline well inside the lease, so no other worker
can take an e-mail over while it is being sent. Once the relay accepts it, its
"sent" state, its audit event and (for a Password Notification) the temporary
password it carries are committed together; a database outage at that moment
is waited out rather than forgotten.

A worker that dies leaves its claims behind; they lapse after one lease and any
worker's next sweep sends them. A recipient's e-mails go in the order they were
queued: nothing is claimed while an earlier one for the same person waits, so
the Password Notification always arrives before the message it unlocks.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Now
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.lib.db import DATABASE_ERRORS, through_outages
from hushpost.notifications import kinds, sql
from hushpost.notifications.emails import build_email
from hushpost.notifications.models import Notification
from hushpost.notifications.relay import Failure, relay

log = logging.getLogger(__name__)

BATCH = 50
# While the relay is down, one connection attempt this often tells when it is back.
PROBE_SECONDS = 10.0
Status = Notification.Status

# Set by a worker that is shutting down: finish the e-mail in hand, send no more.
stopping = threading.Event()


def lease() -> timedelta:
    return timedelta(seconds=settings.NOTIFY_LEASE_SECONDS)


def send_deadline() -> float:
    """The longest one e-mail may take: a third of the lease, so that a send
    that started on a freshly renewed lease always ends inside it."""
    return settings.NOTIFY_LEASE_SECONDS / 3


_identity: tuple[int, str] = (0, "")


def worker_id() -> str:
    """This process's name in leases and task records (new after a fork)."""
    global _identity
    pid = os.getpid()
    if _identity[0] != pid:
        _identity = (pid, f"{socket.gethostname()[:40]}:{pid}:{secrets.token_hex(4)}")
    return _identity[1]


def deliver(key: str) -> str:
    """The task queued with each notification: send what is due, this one
    among them if it may go now. Returns the notification's status after."""
    deliver_due()
    return Notification.objects.filter(key=key).values_list("status", flat=True).first() or "gone"


def deliver_due(limit: int = BATCH) -> int:
    """Claim up to ``limit`` due notifications and send them over one
    connection, for at most a third of a lease. Returns how many it tried."""
    if not _relay_ready():
        return 0
    owner = worker_id()
    started = time.monotonic()
    batch = _claim(owner, limit)
    held_back: set[int] = set()  # people whose earlier e-mail did not go: the rest waits
    tried = 0
    for index, notification in enumerate(batch):
        if stopping.is_set() or time.monotonic() - started > send_deadline() or relay.down:
            _release(owner, [n.pk for n in batch[index:]])
            break
        if notification.user_id in held_back:
            _release(owner, [notification.pk])
            continue
        try:
            status = send(notification, owner)
        except BaseException:
            # The database went away mid-batch: hand back what was not tried.
            _release(owner, [n.pk for n in batch[index + 1:]], quietly=True)
            raise
        tried += 1
        if status not in (Status.SENT, Status.CANCELLED) and notification.user_id is not None:
            held_back.add(notification.user_id)
    return tried


def _relay_ready() -> bool:
    """False while this worker knows the relay is down and a probe says it still is."""
    if not relay.down:
        if time.monotonic() - relay.probed_at > PROBE_SECONDS:
            relay.probed_at = time.monotonic()
            _wake_if_relay_back()
        return True
    if time.monotonic() - relay.probed_at < PROBE_SECONDS:
        return False
    if not relay.probe(within=send_deadline()):
        _give_up_waiting()
        return False
    relay.down = False
    log.info("mail relay answers again; sending what waited for it")
    _wake_relay_waiters()
    return True


def _wake_if_relay_back() -> None:
    """Another worker may have seen the relay down: if e-mails wait for it and it answers, they go now."""
    waiting = Notification.objects.filter(
        status=Status.PENDING, waiting_for_relay=True, next_attempt_at__gt=Now()
    ).exists()
    if waiting and relay.probe(within=send_deadline()):
        _wake_relay_waiters()


def _waited_since():
    """E-mails queued before this have waited for the relay as long as the whole retry schedule."""
    return clock.now() - timedelta(seconds=sum(settings.NOTIFY_RETRY_SCHEDULE))


def _give_up_waiting() -> None:
    """E-mails that have waited for the relay longer than the whole retry schedule fail,
    so their senders see it and can act."""
    cutoff = _waited_since()
    Notification.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lte=Now()),
        status=Status.PENDING, waiting_for_relay=True, created_at__lt=cutoff,
    ).update(status=Status.FAILED, lease_until=None, lease_owner="")


def _wake_relay_waiters() -> None:
    Notification.objects.filter(status=Status.PENDING, waiting_for_relay=True).update(next_attempt_at=Now())


def _claim(owner: str, limit: int) -> list[Notification]:
    """Claim due notifications, oldest first, keeping each person's in order,
    and drop their own queued tasks: this batch sends them."""
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=Now())
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
            .order_by("id")
            .values_list("pk", "user_id", "task_id")[:limit]
        )
        if not rows:
            return []
        waiting: dict[int, list[int]] = {}
        for pk, user_id in (
            Notification.objects.filter(
                user_id__in={user for _, user, _ in rows}, status=Status.PENDING, pk__lt=rows[-1][0]
            ).order_by("id").values_list("pk", "user_id")
        ):
            waiting.setdefault(user_id, []).append(pk)
        claimed: set[int] = set()
        for pk, user_id, _ in rows:
            if all(earlier in claimed for earlier in waiting.get(user_id, []) if earlier < pk):
                claimed.add(pk)
        if not claimed:
            return []
        Notification.objects.filter(pk__in=claimed).update(lease_until=Now() + lease(), lease_owner=owner)
        DBTaskResult.objects.filter(
            id__in=[task for pk, _, task in rows if pk in claimed and task], status=TaskResultStatus.READY
        ).delete()
    return _load(Q(pk__in=claimed))


def _release(owner: str, pks: list[int], *, quietly: bool = False) -> None:
    """Hand claimed notifications back unsent, for the next sweep."""
    if not pks:
        return
    try:
        Notification.objects.filter(pk__in=pks, lease_owner=owner, status=Status.PENDING).update(
            lease_until=None, lease_owner=""
        )
    except DATABASE_ERRORS:
        if not quietly:
            raise  # otherwise they lapse with the lease


def release_all(owner: str | None = None) -> int:
    """Hand back every notification this worker holds (after an outage, or at exit)."""
    return Notification.objects.filter(lease_owner=owner or worker_id(), status=Status.PENDING).update(
        lease_until=None, lease_owner=""
    )


def _load(filter_) -> list[Notification]:
    notifications = list(
        Notification.objects.filter(filter_)
        .select_related("org", "user", "delivery__message__author", "delivery__recipient")
        # An e-mail needs names and addresses, never the ciphertext (up to a
        # megabyte per message) or anyone's password hash.
        .defer(
            "delivery__message__subject_ct", "delivery__message__body_ct",
            "delivery__message__wrapped_key", "delivery__message__author__password",
            "delivery__recipient__password",
        )
        .order_by("id")
    )
    for notification in notifications:
        if notification.user is not None and notification.user.org_id == notification.org_id:
            notification.user.org = notification.org  # the same row: no second query for it
    return notifications


def send(notification: Notification, owner: str) -> str:
    """Send one claimed notification and record the outcome; returns its status."""
    kind = kinds.of(notification)
    try:
        prepared = kind.prepare(notification)  # may take time: a list of portals asks the other regions
    except DATABASE_ERRORS:
        raise
    except Exception as exc:  # this e-mail cannot be written now; the others still go
        return _failed(notification, owner, Failure(False, False, f"{type(exc).__name__}: {exc}"[:300]))
    if prepared is None:  # no longer wanted (a password chosen since, a newer e-mail queued)
        Notification.objects.filter(pk=notification.pk, lease_owner=owner).update(
            status=Status.CANCELLED, lease_until=None, lease_owner=""
        )
        return Status.CANCELLED
    # Still ours, with time for the whole send left on the lease, now that it is
    # written? A batch stops starting e-mails a third of a lease after its claim,
    # so the answer is yes unless this worker was paused or its kind was slow to
    # prepare; then a renewal, if it still holds the claim.
    if not sql.still_ours(notification.pk, owner, for_seconds=send_deadline()) and \
            not Notification.objects.filter(
                pk=notification.pk, status=Status.PENDING, lease_owner=owner, lease_until__gt=Now()
            ).update(lease_until=Now() + lease()):
        return "lost"
    try:
        email = build_email(notification, prepared)
        relay.send(email, within=send_deadline())
    except DATABASE_ERRORS:
        raise
    except Exception as exc:
        return _failed(notification, owner, Failure.of(exc))
    relay_was_down, relay.down = relay.down, False
    through_outages(lambda: _sent(notification, owner, email, kind, prepared), stop=stopping)
    if relay_was_down:
        _wake_relay_waiters()
    return Status.SENT


def _sent(notification: Notification, owner: str, email, kind: kinds.EmailKind,
          prepared: kinds.Prepared) -> None:
    """The relay accepted it: its state, its audit event and what its kind does
    next (a Password Notification's password starts to work), in one transaction."""
    with transaction.atomic():
        if not sql.mark_sent(notification.pk, owner, at=clock.now(),
                             message_id=email.extra_headers.get("Message-ID", "")):
            # Only after an outage longer than the lease: another worker has it now.
            log.error("notification %s was accepted by the relay after its lease ran out", notification.pk)
            return
        log.info("notification %s (%s) sent, attempt %s", notification.pk, notification.kind, notification.attempts + 1)
        if kind.accepted is not None:
            kind.accepted(notification, prepared)
        record(
            AuditEvent.Action.NOTIFICATION, org=notification.org, actor_email=notification.to_address,
            client="worker", object_type="notification", object_id=str(notification.key),
            detail=notification.get_kind_display(),
        )


def _failed(notification: Notification, owner: str, failure: Failure) -> str:
    if failure.relay_down:
        relay.down = True
    schedule = settings.NOTIFY_RETRY_SCHEDULE
    attempts = notification.attempts + 1
    fields = {"attempts": attempts, "last_error": failure.reason[:500], "lease_until": None,
              "lease_owner": "", "waiting_for_relay": failure.relay_down}
    if failure.relay_down:
        # Tried again whenever the relay seems back, so the attempts say
        # little: it gives up after the schedule's whole length instead.
        gives_up = notification.created_at < _waited_since()
    else:
        gives_up = attempts > len(schedule)
    what = f"notification {notification.pk} ({notification.kind}) not sent, attempt {attempts}: {failure.reason}"
    if failure.permanent or gives_up or not schedule:
        fields["status"] = status = Status.FAILED
        log.error("%s; failed for good", what)
    else:
        status = Status.PENDING
        wait = schedule[min(attempts, len(schedule)) - 1]
        fields["next_attempt_at"] = Now() + timedelta(seconds=wait)
        log.warning("%s; %s", what, "waiting for the relay" if failure.relay_down else f"retrying in {wait} s")
    Notification.objects.filter(pk=notification.pk, lease_owner=owner).update(**fields)
    return status
