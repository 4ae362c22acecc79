"""``/healthz`` and ``/readyz``, for load balancers, orchestrators and monitoring.

Answered before any other middleware: no session, no host check, no redirect to HTTPS, so a
probe from the load balancer's own address over plain HTTP gets the real answer. Neither says
more than a probe needs: states and ages, never an error's text (that goes to the log).

* ``/healthz``: the process is alive and serving (200, no database query).
* ``/readyz``: 200 when this web server can do its work (the database answers, every migration
  is applied, the file store is reachable); 503 otherwise, with which check failed. It also
  reports, without failing on them (a mail relay outage must not take the portal out of the
  load balancer), how long the oldest due notification has waited, how many wait for the relay,
  when an e-mail was last accepted, and how many workers beat in the last minute.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Max, Min
from django.db.models.functions import Now
from django.http import HttpResponse

from hushpost.attachments.store import get_store
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from hushpost.server.models import WorkerProcess

log = logging.getLogger("hushpost.health")

PATHS = {"/healthz", "/readyz"}
# A notification due longer than this, or any waiting for the relay, makes the answer "degraded".
QUEUE_AGE_DEGRADED = 300
_migrated_at: float | None = None  # migrations never un-apply under a running server


class HealthMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path not in PATHS:
            return self.get_response(request)
        if request.method not in ("GET", "HEAD"):
            return _json({"error": "method not allowed"}, 405)
        if request.path == "/healthz":
            return _json({"status": "alive"}, 200)
        return readiness()


def readiness() -> HttpResponse:
    checks = {"database": _check(_database), "migrations": _check(_migrations), "file_store": _check(_file_store)}
    ready = all(checks.values())
    body: dict = {"status": "ready" if ready else "not ready",
                  "checks": {name: "ok" if ok else "failing" for name, ok in checks.items()}}
    if checks["database"]:
        try:
            body["notifications"] = queue_state()
            body["workers_alive"] = _workers_alive()
        except Exception:  # noqa: BLE001 - reported as unknown, logged
            log.exception("readyz: could not read the notification queue")
        else:
            queue = body["notifications"]
            if ready and (queue["waiting_for_relay"] or (queue["oldest_due_seconds"] or 0) > QUEUE_AGE_DEGRADED):
                body["status"] = "degraded"
    return _json(body, 200 if ready else 503)


def _check(probe) -> bool:
    try:
        return bool(probe())
    except Exception:  # noqa: BLE001 - any failure is "failing"; the log has the reason
        log.exception("readyz: %s failed", probe.__name__.lstrip("_"))
        return False


def _database() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        return cursor.fetchone() == (1,)


def _migrations() -> bool:
    global _migrated_at
    if _migrated_at is not None:
        return True
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return False
    _migrated_at = time.monotonic()
    return True


def _file_store() -> bool:
    return get_store().ready()


def queue_state() -> dict:
    """The notification queue as the database has it now (for /readyz and /metrics alike)."""
    pending = Notification.objects.filter(status=Notification.Status.PENDING)
    oldest = pending.filter(next_attempt_at__lte=Now()).aggregate(at=Min("next_attempt_at"))["at"]
    last = Notification.objects.filter(status=Notification.Status.SENT).aggregate(at=Max("sent_at"))["at"]
    return {
        "oldest_due_seconds": max(0, int((clock.now() - oldest).total_seconds())) if oldest else None,
        "waiting_for_relay": pending.filter(waiting_for_relay=True).count(),
        "last_accepted_at": last.isoformat() if last else None,
    }


def _workers_alive() -> int:
    return WorkerProcess.objects.filter(beat_at__gte=Now() - timedelta(seconds=60)).count()


def _json(body: dict, status: int) -> HttpResponse:
    response = HttpResponse(json.dumps(body), status=status, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response
