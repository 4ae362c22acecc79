from __future__ import annotations

from django.db import models
from django.db.models.functions import Now


class WorkerProcess(models.Model):
    """A running ``hushpost worker``, as it last reported itself.

    Each worker updates ``beat_at`` (by the database's clock) every few
    seconds from a thread of its own. A task left RUNNING by a worker whose
    heartbeat stopped was lost with it, and goes back in the queue.
    """

    worker_id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255, blank=True)
    pid = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(db_default=Now())
    beat_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return self.worker_id


class PeriodicRun(models.Model):
    """A job the workers run every so often, and who runs it now (``hushpost.server.periodic``).

    One row per job name. A worker takes the job by setting ``lease_owner`` until
    ``lease_until`` in one conditional UPDATE, and both that lease and the interval
    are judged by the database's clock, so workers on machines whose clocks disagree
    still never run a job twice at once.
    """

    job = models.CharField(max_length=40, primary_key=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    last_started_at = models.DateTimeField(null=True, blank=True)
    last_finished_at = models.DateTimeField(null=True, blank=True)
    last_result = models.CharField(max_length=300, blank=True)

    def __str__(self) -> str:
        return self.job
