"""Django's PostgreSQL backend, checking a kept connection without a round trip.

A web thread keeps its connection between requests (``CONN_MAX_AGE``), and Django's
health check asks the server ``SELECT 1`` before each request's first statement, so that a
connection the server dropped (a restart, a failover, an idle timeout) is replaced before a
page fails on it. That is a round trip on every request. A server that drops a connection
says so on its socket (a termination message, then end of file), while an idle connection
that is fine has nothing to read. So: nothing to read means usable, at no cost; anything to
read (the server going away, or a notice it sent meanwhile) is asked about as before. A
connection cut without a word (the server's machine gone from the network) is found by the
statement that uses it, as it also was with ``SELECT 1``. ``tests/faults/test_web_faults.py``
restarts PostgreSQL under a running web server.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql.base import DatabaseWrapper as PostgresDatabaseWrapper


class DatabaseWrapper(PostgresDatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        try:
            waiting, _, _ = select.select([connection.fileno()], [], [], 0)
        except (OSError, ValueError):
            return False
        return not waiting or super().is_usable()
