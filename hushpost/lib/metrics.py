"""Counters every process keeps for Prometheus (prometheus_client's multiprocess mode: each
process writes its counts to files in ``HUSHPOST_METRICS_DIR``; ``/metrics`` adds them up, see
:mod:`hushpost.server.metrics`). Labels are names from the code, never what a person typed."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import Counter, Histogram

Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

REQUESTS = Counter("hushpost_http_requests", "Requests answered, by view, method and status class.",
                   ["view", "method", "status"])
LATENCY = Histogram("hushpost_http_request_duration_seconds", "Time to answer a request, by view.", ["view"],
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
EVENTS = Counter("hushpost_audit_events", "Audit events recorded, by action (send, sign_in_failed, lockout…).",
                 ["action"])
GATEWAY = Counter("hushpost_gateway_replies", "SMTP gateway replies, by stage (mail, rcpt, data) and outcome.",
                  ["stage", "outcome"])


def count_event(action: str) -> None:
    EVENTS.labels(action).inc()


def count_gateway_reply(stage: str, accepted: bool) -> None:
    GATEWAY.labels(stage, "accepted" if accepted else "refused").inc()
