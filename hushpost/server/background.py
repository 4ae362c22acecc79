"""``hushpost worker``: runs queued tasks and delivers notifications, whatever happens to the database.

It is django-tasks-db's worker (its claiming and running of tasks) inside a
loop that does not die: a database error anywhere is waited out with backoff
and the loop goes on. Beside the task queue it sweeps the notifications table
itself, so e-mails whose task was lost with a killed worker, or whose retry is
due, go out without waiting for new traffic, chains the audit events
committed since its last round (``audit/linker.py``), and runs the periodic jobs
when they are due (``server/periodic.py``: the retention purge, the reminders). A heartbeat thread records that
the worker is alive; a task left RUNNING by a worker whose heartbeat stopped
goes back in the queue. It also stores what the SMTP gateway spooled (``gateway/spool.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, close_old_connections, connections
from django.db.migrations.executor import MigrationExecutor
from django.db.models.functions import Now
from django_tasks import TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from hushpost.audit import linker
from hushpost.gateway import spool
from hushpost.lib.db import DATABASE_ERRORS, Outage, reset_connections
from hushpost.messaging import reminders
from hushpost.notifications import delivery
from hushpost.retention import purge
from hushpost.server import periodic
from hushpost.server.models import WorkerProcess

log = logging.getLogger("hushpost.worker")

BEAT_SECONDS = 5.0
# A worker silent this long is gone: its running tasks go back in the queue.
DEAD_AFTER = timedelta(seconds=30)
REAP_SECONDS = 15.0
# How often an idle worker whose own settings do not spool looks for spooled e-mails anyway.
SPOOL_CHECK_SECONDS = 5.0
# How often audit events are chained while the worker is busy (every idle round too).
LINK_SECONDS = 0.5
# The longest a worker spends on a periodic job at a time before it sees to the e-mails again
# (at least one batch each time): a purge with more to do is due again at the next ask, so a
# first purge of years of messages never holds a lone worker's notifications back for long.
PERIODIC_SLICE_SECONDS = 10.0
RETENTION_JOB = "retention"
REMINDER_JOB = "reminders"


class BackgroundWorker(Worker):
    def __init__(self, *, interval: float, batch: bool, max_tasks: int | None = None,
                 heartbeat: bool = True) -> None:
        super().__init__(
            queue_names=["*"], interval=interval, batch=batch, backend_name="default",
            startup_delay=False, max_tasks=max_tasks, worker_id=delivery.worker_id(),
            excluded_queue_names=[],
        )
        self.heartbeat = heartbeat
        self.stop = delivery.stopping
        self.outage = Outage(stop=self.stop)
        self.reaped_at = 0.0
        self.linked_at = 0.0
        self.periodic_at = 0.0
        self.spool_checked_at = 0.0
        self.unsettled = False  # a database error interrupted work: tidy up once it is back

    # Signals -------------------------------------------------------------

    def shutdown(self, signum, frame) -> None:
        if not self.running:  # asked twice: stop now
            self.reset_signals()
            sys.exit(1)
        log.warning("%s received: finishing the e-mail in hand, then stopping", signal.strsignal(signum))
        self.running = False
        self.stop.set()

    # The loop ------------------------------------------------------------

    def run(self) -> None:
        self.stop.clear()
        if not self.wait_until_ready():
            return
        beat = _Heartbeat(self.worker_id, self.stop) if self.heartbeat else None
        if beat:
            # Alive on record before it claims anything: a peer reaping at this moment
            # must not take it for a dead worker and hand its task to someone else.
            beat.beat()
            beat.start()
        log.info("worker %s started", self.worker_id)
        try:
            while self.running:
                try:
                    worked = self.step()
                except DATABASE_ERRORS as exc:
                    self.unsettled = True
                    self.outage.wait(exc)
                    continue
                self.outage.ended()
                if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                    return
                if not worked:
                    if self.batch:
                        return
                    self.stop.wait(self.interval)
        finally:
            try:
                delivery.release_all(self.worker_id)
            except DATABASE_ERRORS:
                pass  # they lapse with their lease
            if beat:
                beat.finish()
            log.info("worker %s stopped", self.worker_id)

    def step(self) -> bool:
        """One round: a queued task if any, else a sweep for due notifications;
        and the audit events committed meanwhile chained."""
        close_old_connections()
        if self.unsettled:
            self.settle()
        if time.monotonic() - self.reaped_at > REAP_SECONDS:
            self.reap()
        if time.monotonic() - self.linked_at > LINK_SECONDS:
            self.link()
        if time.monotonic() - self.periodic_at > settings.PERIODIC_CHECK_SECONDS:
            self.run_periodic()
        task = self.next_task()
        if task is None:
            stored = self.store_spooled()  # e-mails the gateway spooled, then the e-mails due (theirs too)
            if delivery.deliver_due() > 0 or stored > 0:
                return True
            return self.link() > 0  # what the last e-mails recorded, before the worker rests
        # A task that fails while the database is away raises here, when its
        # outcome cannot be written; one that failed for that reason but could
        # still be recorded leaves notifications this worker holds.
        try:
            self.run_task(task)
        except DatabaseError as exc:
            if isinstance(exc, DATABASE_ERRORS) or DBTaskResult.objects.filter(pk=task.pk).exists():
                raise
            # Its row went while it ran (a peer's batch sent its notification and
            # dropped the task): the notification's own state is what counts.
            log.warning("task %s was gone when its outcome was written; going on", task.pk, exc_info=True)
            return True
        if task.status == TaskResultStatus.FAILED:
            self.unsettled = True
        return True

    def store_spooled(self) -> int:
        """Store what the gateway spooled: every round where this deployment spools, else every
        ``SPOOL_CHECK_SECONDS`` (a gateway may spool while the worker's settings say otherwise,
        or the spool was turned off with e-mails waiting), and every round while there are some."""
        if not settings.SMTPD_SPOOL and time.monotonic() - self.spool_checked_at < SPOOL_CHECK_SECONDS:
            return 0
        stored = spool.store_due()
        self.spool_checked_at = 0.0 if stored else time.monotonic()
        return stored

    def link(self) -> int:
        """Chain the audit events committed since the last round."""
        self.linked_at = time.monotonic()
        return linker.link()

    def run_periodic(self) -> None:
        """The retention purge and the reminders, each if its interval has passed and no worker
        anywhere runs it now."""
        self.periodic_at = time.monotonic()
        for job, interval, work, what in (
                (RETENTION_JOB, settings.RETENTION_INTERVAL, retention_run, "the retention purge"),
                (REMINDER_JOB, settings.REMINDER_INTERVAL, reminder_run, "the reminders")):
            try:
                periodic.run_if_due(job, self.worker_id, timedelta(seconds=interval), work)
            except DATABASE_ERRORS:
                raise  # waited out like any outage
            except Exception:  # noqa: BLE001 - a periodic job that fails must not stop the e-mails
                log.exception("%s failed; it is tried again at its next interval", what)

    def next_task(self) -> DBTaskResult | None:
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        with exclusive_transaction(tasks.db):
            try:
                task = tasks.get_locked()
            except DATABASE_ERRORS as exc:
                if is_locked_database_exception(exc):
                    return None  # SQLite busy with another writer: next round
                raise
            if task is not None:
                task.claim(self.worker_id)
        return task

    def settle(self) -> None:
        """After an outage: what this worker was doing when it began goes back to be done again."""
        requeued = _requeue_running({self.worker_id})
        released = delivery.release_all(self.worker_id)
        self.unsettled = False
        if requeued or released:
            log.info("resumed: %d task(s) re-queued, %d e-mail(s) handed back", requeued, released)

    def reap(self) -> None:
        """Tasks left RUNNING by workers that stopped beating go back in the queue."""
        self.reaped_at = time.monotonic()
        live = set(
            WorkerProcess.objects.filter(beat_at__gt=Now() - DEAD_AFTER).values_list("worker_id", flat=True)
        )
        live.add(self.worker_id)
        running = DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).values_list("id", "worker_ids")
        dead = {ids[-1] for _, ids in running if ids and ids[-1] not in live}
        if dead:
            count = _requeue_running(dead)
            log.warning("re-queued %d task(s) left running by %d stopped worker(s)", count, len(dead))
        WorkerProcess.objects.filter(beat_at__lt=Now() - timedelta(days=1)).delete()

    def wait_until_ready(self) -> bool:
        """Wait for a reachable, migrated database, saying once what is missing."""
        said = ""
        while self.running:
            try:
                close_old_connections()
                connection = connections[DEFAULT_DB_ALIAS]
                executor = MigrationExecutor(connection)
                pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
                problem = "" if not pending else (
                    f"the database is not migrated ({len(pending)} migration(s) to apply): "
                    "run `hushpost migrate`; waiting"
                )
            except DATABASE_ERRORS as exc:
                problem = f"the database cannot be reached ({str(exc).strip().splitlines()[0][:200]}); waiting"
                reset_connections()
            if not problem:
                if said:
                    log.warning("database ready; starting")
                return True
            if problem.split("(")[0] != said.split("(")[0]:
                log.warning("worker not started: %s", problem)
                said = problem
            self.stop.wait(2.0)
        return False


def _slice(lease: periodic.Lease) -> Callable[[], bool]:
    """Asked before each batch of a periodic job: whether to go on, for one slice of the worker's
    time (``PERIODIC_SLICE_SECONDS``, at least one batch) and while ``lease`` is still ours."""
    ends, batches = time.monotonic() + PERIODIC_SLICE_SECONDS, 0

    def go_on() -> bool:
        nonlocal batches
        if batches and (time.monotonic() > ends or delivery.stopping.is_set()):
            lease.again = True
            return False
        batches += 1
        return lease.renew()

    return go_on


def retention_run(lease: periodic.Lease) -> str:
    """Every organisation's purge under ``lease``, renewed before each batch, for one slice of
    the worker's time; one line for the record."""
    outcomes = purge.purge_all(still_ours=_slice(lease))
    for outcome in outcomes:
        if outcome.purged:
            log.info("retention: %s", outcome.line())
    return "; ".join(o.line() for o in outcomes) or "no organisation has a retention policy"


def reminder_run(lease: periodic.Lease) -> str:
    """Every organisation's reminders due under ``lease``, renewed before each batch, for one slice
    of the worker's time; one line for the record."""
    outcomes = reminders.remind_all(still_ours=_slice(lease))
    for outcome in outcomes:
        if outcome.reminded:
            log.info("reminders: %s", outcome.line())
    return "; ".join(o.line() for o in outcomes) or "no organisation sends reminders"


def _requeue_running(worker_ids: set[str]) -> int:
    count = 0
    for task_id, ids in DBTaskResult.objects.filter(status=TaskResultStatus.RUNNING).values_list(
        "id", "worker_ids"
    ):
        if ids and ids[-1] in worker_ids:
            count += DBTaskResult.objects.filter(id=task_id, status=TaskResultStatus.RUNNING).update(
                status=TaskResultStatus.READY, started_at=None
            )
    return count


class _Heartbeat(threading.Thread):
    """Records every few seconds, on its own connection, that the worker lives."""

    def __init__(self, worker_id: str, stop: threading.Event) -> None:
        super().__init__(name="hushpost-heartbeat", daemon=True)
        self.worker_id = worker_id
        self.stop = stop
        self.done = threading.Event()

    def beat(self) -> None:
        """Record that the worker lives (on the calling thread's connection)."""
        try:
            updated = WorkerProcess.objects.filter(worker_id=self.worker_id).update(beat_at=Now())
            if not updated:
                WorkerProcess.objects.create(worker_id=self.worker_id, hostname=socket.gethostname()[:255],
                                             pid=os.getpid())
        except DATABASE_ERRORS:
            reset_connections()
        except Exception:  # noqa: BLE001 - a heartbeat must never stop the worker
            log.exception("heartbeat failed")

    def run(self) -> None:
        while not self.done.is_set():
            self.beat()
            self.done.wait(BEAT_SECONDS)
        try:
            WorkerProcess.objects.filter(worker_id=self.worker_id).delete()
        except DATABASE_ERRORS:
            pass
        finally:
            connections.close_all()

    def finish(self) -> None:
        self.done.set()
        self.join(timeout=5)
