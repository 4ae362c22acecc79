"""/healthz and /readyz, as a load balancer and a monitoring system ask them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models.functions import Now

from hushpost.notifications.models import Notification
from hushpost.server import health

pytestmark = pytest.mark.django_db


def test_healthz_answers_a_probe_by_address_over_plain_http(client, settings):
    settings.SECURE_SSL_REDIRECT = True  # behind TLS, the load balancer still probes the backend directly
    response = client.get("/healthz", HTTP_HOST="10.0.0.5:8000")
    assert response.status_code == 200 and response.json() == {"status": "alive"}
    assert response["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response


def test_readyz_is_ready_when_the_database_migrations_and_file_store_are(client, files_dir):
    response = client.get("/readyz", HTTP_HOST="10.0.0.5:8000")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "file_store": "ok"}
    assert body["notifications"] == {"oldest_due_seconds": None, "waiting_for_relay": 0, "last_accepted_at": None}
    assert body["workers_alive"] == 0


def _unusable_store(settings, tmp_path):
    """A files directory that cannot exist: its parent is a file (a mount point gone wrong)."""
    (tmp_path / "volume").write_text("not a directory")
    settings.FILE_STORAGE = {**settings.FILE_STORAGE, "kind": "local", "root": str(tmp_path / "volume" / "files")}


def test_readyz_takes_the_server_out_when_the_file_store_is_gone(client, settings, tmp_path):
    _unusable_store(settings, tmp_path)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["file_store"] == "failing"
    assert response.json()["status"] == "not ready"


def test_a_relay_outage_is_reported_without_taking_the_portal_out(client, files_dir, alice):
    Notification.objects.create(kind=Notification.Kind.RESET, user=alice, org=alice.org,
                                waiting_for_relay=True, next_attempt_at=Now())
    body = client.get("/readyz").json()
    assert body["status"] == "degraded"
    assert body["notifications"]["waiting_for_relay"] == 1
    assert body["notifications"]["oldest_due_seconds"] is not None


def test_readyz_says_nothing_of_why(client, settings, tmp_path):
    _unusable_store(settings, tmp_path)
    text = client.get("/readyz").content.decode()
    assert str(tmp_path) not in text


def test_only_get_and_head(client):
    assert client.post("/healthz").status_code == 405
    assert client.head("/readyz").status_code in (200, 503)


def test_unapplied_migrations_are_not_ready(client, files_dir, monkeypatch):
    # A server started before `hushpost migrate` finished: the real check against the real database,
    # with the graph's newest migration marked unapplied in its record table.
    monkeypatch.setattr(health, "_migrated_at", None)
    recorder = MigrationRecorder(connection)
    latest = recorder.migration_qs.filter(app="sso").order_by("-id").first()
    recorder.record_unapplied(latest.app, latest.name)
    try:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["checks"]["migrations"] == "failing"
    finally:
        recorder.record_applied(latest.app, latest.name)


def test_readyz_asks_s3_compatible_storage_for_its_bucket(client, settings, s3_server):
    settings.FILE_STORAGE = s3_server.storage_settings("files-health")
    assert client.get("/readyz").json()["checks"]["file_store"] == "ok"
    settings.FILE_STORAGE = {**settings.FILE_STORAGE, "bucket": "no-such-bucket"}
    response = client.get("/readyz")
    assert response.status_code == 503 and response.json()["checks"]["file_store"] == "failing"
