"""Jobs the workers run every so often, each by one worker at a time, whichever machine it is on.

A job is taken with one conditional UPDATE of its ``PeriodicRun`` row: only when no
live lease is on it (and, for the worker's own schedule, when its interval has
passed since it last started), both judged by the database's ``now()``. PostgreSQL
re-checks that condition on the row a concurrent UPDATE just committed, and SQLite
runs one writer at a time, so of several workers asking at once exactly one gets
the job. A long job renews its lease as it goes (``Lease.renew``) and stops if it
has lost it; a worker killed mid-job leaves a lease that lapses on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Q
from django.db.models.functions import Now

from hushpost.server.models import PeriodicRun

log = logging.getLogger("hushpost.worker")

LEASE = timedelta(minutes=5)


@dataclass
class Lease:
    """A job held by ``owner``: ``renew`` before each further step, ``finish`` at the end."""

    job: str
    owner: str
    again: bool = False  # the job stopped with more to do: due again at the next ask, not a whole interval on

    def renew(self) -> bool:
        """Extend the lease if it is still ours; False means another worker took the job over."""
        return PeriodicRun.objects.filter(job=self.job, lease_owner=self.owner, lease_until__gt=Now()).update(
            lease_until=Now() + LEASE) == 1

    def finish(self, result: str) -> None:
        more = {"last_started_at": None} if self.again else {}
        PeriodicRun.objects.filter(job=self.job, lease_owner=self.owner).update(
            lease_owner="", lease_until=None, last_finished_at=Now(), last_result=result[:300], **more)


def claim(job: str, owner: str, *, interval: timedelta | None = None) -> Lease | None:
    """The job's lease for ``owner``, or None while another holds it (or, with ``interval``,
    while it last started less than ``interval`` ago)."""
    PeriodicRun.objects.bulk_create([PeriodicRun(job=job)], ignore_conflicts=True)
    free = PeriodicRun.objects.filter(job=job).filter(Q(lease_until__isnull=True) | Q(lease_until__lte=Now()))
    if interval is not None:
        free = free.filter(Q(last_started_at__isnull=True) | Q(last_started_at__lte=Now() - interval))
    taken = free.update(lease_owner=owner, lease_until=Now() + LEASE, last_started_at=Now())
    return Lease(job, owner) if taken == 1 else None


def run_if_due(job: str, owner: str, interval: timedelta, work: Callable[[Lease], str]) -> bool:
    """Run ``work`` if the job is due and no one else runs it; whether it ran.

    ``work`` gets the lease (to renew between steps) and returns a line for the record.
    An exception ends the lease at once rather than leaving the job blocked for its length."""
    lease = claim(job, owner, interval=interval)
    if lease is None:
        return False
    log.info("periodic job %s started by %s", job, owner)
    result = "failed"
    try:
        result = work(lease)
    finally:
        # Said while the lease is still held: whoever takes the job next says so after this line.
        log.info("periodic job %s finished by %s: %s", job, owner, result)
        try:
            lease.finish(result)
        except Exception:  # noqa: BLE001 - the lease lapses on its own; the job's own error matters more
            log.warning("could not end the lease on %s; it lapses by itself", job)
    return True
