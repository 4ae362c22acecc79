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
