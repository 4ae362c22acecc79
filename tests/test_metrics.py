"""/metrics as Prometheus scrapes it: what it counts, and who may read it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from hushpost.lib import clock
from tests.gateway_mail import mail, submit
from tests.helpers import send
from tests.personas import BOB, PASSWORD, password_step

pytestmark = pytest.mark.django_db
OUTSIDE = "203.0.113.9"


def scrape(client, **extra) -> dict[tuple, float]:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.content.decode()) for s in family.samples}


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_audit_events_and_the_queue_are_counted(client, alice, smtp, deliver):
    before = scrape(client)
    assert password_step(client, alice.email, "wrong password").status_code == 400
    assert password_step(client, alice.email, PASSWORD).status_code == 302
    send(client, to=BOB)
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("hushpost_audit_events_total", action="sign_in_failed") == 1
    assert grew("hushpost_audit_events_total", action="sign_in") == 1
    assert grew("hushpost_audit_events_total", action="send") == 1
    assert grew("hushpost_http_requests_total", view="senders:login", method="POST", status="3xx") == 1
    assert grew("hushpost_http_requests_total", view="senders:login", method="POST", status="4xx") == 1
    assert grew("hushpost_http_request_duration_seconds_count", view="senders:compose") == 1
    # The queue, as the database has it: the Password and the message Notification wait.
    assert value(after, "hushpost_notifications", state="pending") == 2
    deliver()
    assert value(scrape(client), "hushpost_notifications", state="sent") == 2


def test_no_address_or_typed_value_becomes_a_label(client, alice):
    password_step(client, "someone.unknown@elsewhere.example", "Typed-secret-value-1")
    client.get("/app/m/ZZZZ-not-a-message")
    text = client.get("/metrics").content.decode()
    assert "someone.unknown" not in text and "Typed-secret" not in text and "ZZZZ" not in text


def test_only_loopback_or_the_token_may_read_it(client, settings):
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE).status_code == 404
    settings.METRICS_TOKEN = "scrape-token-of-32-characters-or-so"
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE, HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR=OUTSIDE,
                      HTTP_AUTHORIZATION="Bearer scrape-token-of-32-characters-or-so").status_code == 200
    settings.METRICS_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_behind_the_proxy_the_real_client_counts_not_the_proxy(client, settings):
    settings.BEHIND_TLS_PROXY = True
    # nginx on the same machine passes on a request from outside: loopback, but not the client.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OUTSIDE).status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1").status_code == 200


def test_gateway_replies_are_counted(gateway, alice, client):
    before = scrape(client)
    assert submit(gateway.port, mail())[0] == 250
    assert submit(gateway.port, mail(), mail_from="nobody@unknown.example")[0] == 550
    after = scrape(client)

    def grew(**labels):
        name = "hushpost_gateway_replies_total"
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew(stage="data", outcome="accepted") == 1
    assert grew(stage="mail", outcome="refused") == 1


def test_the_gateways_spool_shows_what_waits_and_for_how_long(gateway, alice, client, settings, deliver):
    settings.SMTPD_SPOOL = True
    assert value(scrape(client), "hushpost_gateway_spool_waiting") == 0
    assert submit(gateway.port, mail())[0] == 250
    assert submit(gateway.port, mail())[0] == 250
    clock.travel(timedelta(minutes=3))
    samples = scrape(client)
    assert value(samples, "hushpost_gateway_spool_waiting") == 2
    assert value(samples, "hushpost_gateway_spool_oldest_seconds") >= 170
    deliver()
    samples = scrape(client)
    assert value(samples, "hushpost_gateway_spool_waiting") == value(samples, "hushpost_gateway_spool_oldest_seconds") == 0
