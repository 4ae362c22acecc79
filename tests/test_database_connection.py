"""A kept PostgreSQL connection is checked on its socket, not with a round trip (hushpost.lib.postgres)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.skipif("connection.vendor != 'postgresql'", reason="PostgreSQL's backend only")]


def test_an_idle_connection_is_usable_without_asking_the_server(monkeypatch):
    connection.ensure_connection()
    asked = []
    raw = connection.connection
    for name in ("execute", "cursor"):  # Django's own check asks through a cursor
        monkeypatch.setattr(raw, name, lambda *a, name=name, **k: asked.append(name))
    assert connection.is_usable() and asked == []


def test_a_connection_the_server_ended_is_not_usable():
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    settings = connection.settings_dict
    with psycopg.connect(host=settings["HOST"], port=settings["PORT"] or 5432, user=settings["USER"],
                         dbname=settings["NAME"], autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    time.sleep(0.2)
    assert not connection.is_usable()
    connection.close()
    connection.ensure_connection()
    assert connection.is_usable()
