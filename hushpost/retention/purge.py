"""Crypto-shredding: destroying the content of the messages an organisation's policy says are due.

For each message, in one transaction per small batch: its wrapped data key and
its subject and body ciphertext are emptied and ``purged_at`` set, each of its
files' sealed keyset emptied, and a ``purge`` event recorded in the audit trail.
Without the data key nothing of the message opens again, in this database or in
any copy of it; the files' ciphertext is then deleted from the store once the
transaction has committed (a file whose deletion fails is unreadable all the
same: its key went with the transaction). Everything else stays: who sent what
to whom and when, every delivery's dates, and the audit trail.

A hold placed while a purge runs is honoured: placing one locks the
organisation's policy row, which each batch locks too before it checks the
holds again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

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
    stopped: bool = False  # the run lost its lease: another worker goes on from here

    def line(self) -> str:
        done = f"{self.due} due" if not self.purged else f"{self.purged} purged ({self.files} file(s))"
        return f"{self.org.slug}: {done}, {self.held} held" + ("; stopped" if self.stopped else "")


def purge_org(org: Organization, *, dry_run: bool = False,
              still_ours: Callable[[], bool] | None = None) -> Outcome:
    """Purge what is due in ``org`` now (``dry_run``: only count it).

    ``still_ours`` is asked before each batch; a False stops the run."""
    found = planning.plan(org)
    outcome = Outcome(org, due=len(found.due), held=found.held)
    if dry_run or not found.due:
        return outcome
    for start in range(0, len(found.due), BATCH):
        if still_ours is not None and not still_ours():
            outcome.stopped = True
            break
        messages, files, keys = _purge_batch(org, found.due[start:start + BATCH])
        outcome.purged += messages
        outcome.files += files
        outcome.held += len(found.due[start:start + BATCH]) - messages
        _delete_files(keys)
    return outcome


def purge_all(*, still_ours: Callable[[], bool] | None = None) -> list[Outcome]:
    """Every organisation whose policy is on (the worker's periodic run)."""
    outcomes = []
    for policy in RetentionPolicy.objects.select_related("org").order_by("org_id"):
        if not policy.is_on:
            continue
        outcome = purge_org(policy.org, still_ours=still_ours)
        outcomes.append(outcome)
        if outcome.stopped:
            break
    return outcomes


def _purge_batch(org: Organization, due: list[planning.Due]) -> tuple[int, int, list[str]]:
    """One transaction: the batch's keys, ciphertext and file keysets gone, each message audited."""
    why = {d.message_id: d.why for d in due}
    with transaction.atomic():
        # Placing a hold locks this row too, so no hold commits between this check and the purge.
        RetentionPolicy.objects.select_for_update().filter(org=org).first()
        held = planning.held_messages(org)
        messages = list(Message.objects.select_for_update().filter(
            org=org, pk__in=[pk for pk in why if pk not in held], purged_at__isnull=True).only("pk", "uid"))
        ids = [m.pk for m in messages]
        files = list(Attachment.objects.filter(message_id__in=ids).values_list("message_id", "store_key"))
        now = clock.now()
        Message.objects.filter(pk__in=ids).update(wrapped_key=b"", subject_ct=b"", body_ct=b"", purged_at=now)
        Attachment.objects.filter(message_id__in=ids).update(sealed=b"")
        for m in messages:
            count = sum(1 for message_id, _ in files if message_id == m.pk)
            record(AuditEvent.Action.PURGE, org=org, actor_email=PURGER, obj=m,
                   detail=f"content destroyed, {count} file(s): {why[m.pk]}")
    return len(messages), len(files), [key for _, key in files]


def _delete_files(keys: list[str]) -> None:
    store = get_store()
    for key in keys:
        try:
            store.delete(key)
        except Exception:  # noqa: BLE001 - its keyset is gone already; the ciphertext alone opens nothing
            log.warning("a purged file's ciphertext could not be deleted from the store (key %s)", key)
