"""The statements the worker runs for every e-mail, written out.

Built by the ORM, each statement cost more of the worker's CPU than PostgreSQL
spent running it (compiling the query anew every time); these few run as plain
SQL with parameters, on PostgreSQL and on SQLite alike. Claiming, releasing,
retrying and every path that runs once per batch or per failure stay with the ORM.

Times that decide who holds an e-mail come from the database's clock, as the
ORM's ``Now()`` reads it: ``STATEMENT_TIMESTAMP()`` on PostgreSQL, ``'now'``
on SQLite (text in the form Django stores).
"""

from __future__ import annotations

from datetime import datetime

from django.db import connection

from hushpost.notifications.models import Notification

Status = Notification.Status

_STILL_OURS = {
    "postgresql": (
        'SELECT 1 FROM "notifications_notification" WHERE "id" = %s AND "status" = %s AND "lease_owner" = %s'
        ' AND "lease_until" > STATEMENT_TIMESTAMP() + %s * INTERVAL \'1 second\''
    ),
    "sqlite": (
        'SELECT 1 FROM "notifications_notification" WHERE "id" = %s AND "status" = %s AND "lease_owner" = %s'
        " AND \"lease_until\" > STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'now', %s)"
    ),
}

_SENT = (
    'UPDATE "notifications_notification" SET "status" = %s, "attempts" = "attempts" + 1, "sent_at" = %s,'
    ' "lease_until" = NULL, "lease_owner" = \'\', "last_error" = \'\', "waiting_for_relay" = %s,'
    ' "smtp_message_id" = %s WHERE "id" = %s AND "status" = %s AND "lease_owner" = %s'
)


def still_ours(pk: int, owner: str, *, for_seconds: float) -> bool:
    """Whether ``owner`` still holds the pending notification for at least ``for_seconds``
    more, by the database's clock (a read, outside any transaction)."""
    margin = for_seconds if connection.vendor == "postgresql" else f"{for_seconds:+.3f} seconds"
    with connection.cursor() as cursor:
        cursor.execute(_STILL_OURS[connection.vendor], [pk, Status.PENDING, owner, margin])
        return cursor.fetchone() is not None


def mark_sent(pk: int, owner: str, *, at: datetime, message_id: str) -> bool:
    """Record the relay's acceptance, if ``owner`` still holds it; whether it did."""
    with connection.cursor() as cursor:
        cursor.execute(_SENT, [Status.SENT, connection.ops.adapt_datetimefield_value(at), False,
                               message_id[:255], pk, Status.PENDING, owner])
        return cursor.rowcount == 1
