"""Prometheus metrics at ``/metrics``, through prometheus_client.

Every process of the deployment on one machine (serve's workers, ``hushpost worker``,
``hushpost smtpd``) counts into files in ``HUSHPOST_METRICS_DIR`` (prometheus_client's
multiprocess mode), and whichever web worker answers ``/metrics`` adds them up; what the
database already knows (the notification queue) is read from it at each scrape.

What is counted: requests by view, method and status class, and their duration; every audit
event by action (messages sent, sign-ins, failed sign-ins, lockouts, single sign-on refusals…);
the SMTP gateway's replies by stage and outcome. Never an address, a subject or any value
a person typed: labels are names from the code.

``/metrics`` answers only a bearer token (``HUSHPOST_METRICS_TOKEN``) or a client in
``HUSHPOST_METRICS_NETWORKS`` (loopback by default); anyone else gets 404, as if it were not there.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpResponse
from prometheus_client import CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from hushpost.gateway.models import SpooledMail
from hushpost.lib import clock
from hushpost.lib.client import client_ip
from hushpost.lib.metrics import LATENCY, REQUESTS
from hushpost.notifications.models import Notification
from hushpost.server.health import queue_state


class MetricsMiddleware:
    """Counts every request by the view that answered it, and serves ``/metrics``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path == "/metrics":
            return metrics_view(request)
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        view = match.view_name if match is not None else "unmatched"
        REQUESTS.labels(view, request.method if request.method in METHODS else "other",
                        f"{response.status_code // 100}xx").inc()
        LATENCY.labels(view).observe(time.perf_counter() - started)
        return response


METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def metrics_view(request) -> HttpResponse:
    if not _allowed(request):
        raise Http404
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    registry.register(QueueCollector())
    response = HttpResponse(generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _allowed(request) -> bool:
    token = settings.METRICS_TOKEN
    given = request.META.get("HTTP_AUTHORIZATION", "")
    if token and given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(), token.encode()):
        return True
    try:
        ip = ipaddress.ip_address(client_ip(request).strip("[]"))
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(n, strict=False) for n in settings.METRICS_NETWORKS
               if ipaddress.ip_network(n, strict=False).version == ip.version)


class QueueCollector:
    """The notification queue as the database has it at this scrape."""

    def collect(self):
        states = GaugeMetricFamily("hushpost_notifications", "Notifications by state.", labels=["state"])
        counts = dict(Notification.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
        for state in Notification.Status.values:
            states.add_metric([state], counts.get(state, 0))
        yield states
        queue = queue_state()
        yield GaugeMetricFamily("hushpost_notification_queue_oldest_due_seconds",
                                "How long the oldest due notification has waited (0: none due).",
                                value=queue["oldest_due_seconds"] or 0)
        yield GaugeMetricFamily("hushpost_notifications_waiting_for_relay",
                                "Notifications held back because the mail relay does not answer.",
                                value=queue["waiting_for_relay"])
        spooled = SpooledMail.objects.filter(state=SpooledMail.State.PENDING).aggregate(
            n=Count("pk"), oldest=Min("received_at"))
        yield GaugeMetricFamily("hushpost_gateway_spool_waiting",
                                "E-mails the SMTP gateway spooled that wait to be stored.", value=spooled["n"])
        oldest = spooled["oldest"]
        yield GaugeMetricFamily("hushpost_gateway_spool_oldest_seconds",
                                "How long the oldest e-mail waiting in the gateway's spool has waited (0: none).",
                                value=max(0, int((clock.now() - oldest).total_seconds())) if oldest else 0)


def forget_dead_processes() -> int:
    """At ``serve``'s start: the files of processes that are gone (their counts leave the totals,
    which Prometheus reads as a counter reset)."""
    removed = 0
    for path in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
