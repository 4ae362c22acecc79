"""Crypto-shredding: destroying the content of the messages an organisation's policy says are due.

For each message, in one transaction per small batch: its wrapped data key and
its subject and body ciphertext are emptied and ``purged_at`` set, each of its
files' sealed keyset emptied, and a ``purge`` event recorded in the audit trail.
Without the data key nothing of the message opens again, in this database or in
any copy of it; the files' ciphertext is then deleted from the store once the
transaction has committed (a file whose deletion fails is unreadable all the
same: its key went with the transaction). Everything else stays: who sent what
to whom and when, every delivery's dates, and the audit trail.

A run works from the list planned when it started, but each batch checks it
again under the organisation's policy row, locked: the policy as it is now
(turned off or lengthened meanwhile), the holds (placing one locks that row
too), and the messages' dates (a reply or an opening since the run started), so
nothing is purged that is no longer due, at the run's "now", by the database's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.db import transaction

from hushpost.attachments.models import Attachment
from hushpost.attachments.store import get_store
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.orgs.models import Organization
from hushpost.retention import plan as planning
from hushpost.retention.models import RetentionPolicy

log = logging.getLogger("hushpost.retention")

BATCH = 50
PURGER = "retention policy"  # who the audit trail says did it


@dataclass
class Outcome:
    org: Organization
    due: int = 0
    purged: int = 0
    files: int = 0
    held: int = 0
    no_longer_due: int = 0  # due when the run started, no longer by the time its batch came
    stopped: bool = False  # the run lost its lease: another worker goes on from here

    def line(self) -> str:
        done = f"{self.due} due" if not self.purged else f"{self.purged} purged ({self.files} file(s))"
        later = f", {self.no_longer_due} no longer due" if self.no_longer_due else ""
        return f"{self.org.slug}: {done}, {self.held} held{later}" + ("; stopped" if self.stopped else "")


def purge_org(org: Organization, *, dry_run: bool = False,
              still_ours: Callable[[], bool] | None = None, by: str = PURGER) -> Outcome:
    """Purge what is due in ``org`` now (``dry_run``: only count it).

    ``still_ours`` is asked before each batch; a False stops the run. ``by`` is who the
    audit trail says purged: the policy, run by the worker, or the operator's command."""
    now = planning.database_now(org)
    found = planning.plan(org, now=now)
    outcome = Outcome(org, due=len(found.due), held=found.held)
    if dry_run or not found.due:
        return outcome
    for start in range(0, len(found.due), BATCH):
        if still_ours is not None and not still_ours():
            outcome.stopped = True
            break
        batch = _purge_batch(org, found.due[start:start + BATCH], now=now, by=by)
        outcome.purged += batch.purged
        outcome.files += len(batch.keys)
        outcome.held += batch.held
        outcome.no_longer_due += batch.no_longer_due
        _delete_files(batch.keys)
    return outcome


def purge_all(*, still_ours: Callable[[], bool] | None = None, by: str = PURGER) -> list[Outcome]:
    """Every organisation whose policy is on (the worker's periodic run, or the command line's)."""
    outcomes = []
    for policy in RetentionPolicy.objects.select_related("org").order_by("org_id"):
        if not policy.is_on:
            continue
        outcome = purge_org(policy.org, still_ours=still_ours, by=by)
        outcomes.append(outcome)
        if outcome.stopped:
            break
    return outcomes


@dataclass
class _Batch:
    purged: int = 0
    held: int = 0
    no_longer_due: int = 0
    keys: list[str] = field(default_factory=list)  # the purged files' ciphertext, to delete after commit


def _purge_batch(org: Organization, due: list[planning.Due], *, now: datetime, by: str) -> _Batch:
    """One transaction: the batch's keys, ciphertext and file keysets gone, each message audited;
    only what is still due, under the policy and the holds as they are once its row is locked."""
    batch = _Batch()
    with transaction.atomic():
        # Saving the policy and placing a hold lock this row too: neither commits between this check and the purge.
        policy = RetentionPolicy.objects.select_for_update().filter(org=org).first()
        if policy is None:
            batch.no_longer_due = len(due)
            return batch
        current = planning.plan(org, now=now, policy=policy)
        still_due = {d.message_id: d.why for d in current.due}
        why = {d.message_id: still_due[d.message_id] for d in due if d.message_id in still_due}
        batch.held = sum(1 for d in due if d.message_id in current.kept)
        batch.no_longer_due = len(due) - len(why) - batch.held
        messages = list(Message.objects.select_for_update().filter(
            org=org, pk__in=list(why), purged_at__isnull=True).only("pk", "uid"))
        ids = [m.pk for m in messages]
        files = list(Attachment.objects.filter(message_id__in=ids).values_list("message_id", "store_key"))
        Message.objects.filter(pk__in=ids).update(wrapped_key=b"", subject_ct=b"", body_ct=b"",
                                                  purged_at=clock.now())
        Attachment.objects.filter(message_id__in=ids).update(sealed=b"")
        for m in messages:
            count = sum(1 for message_id, _ in files if message_id == m.pk)
            record(AuditEvent.Action.PURGE, org=org, actor_email=by, obj=m,
                   detail=f"content destroyed, {count} file(s): {why[m.pk]}")
    batch.purged, batch.keys = len(messages), [key for _, key in files]
    return batch


def _delete_files(keys: list[str]) -> None:
    store = get_store()
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # noqa: BLE001 - its keyset is gone already; the ciphertext alone opens nothing
            log.warning("a purged file's ciphertext could not be deleted from the store (key %s)", key)
