"""Recording the audit trail (chaining it: :mod:`hushpost.audit.linker`; checking it:
:mod:`hushpost.audit.verify`).

``record`` writes one event inside the caller's transaction, so the event exists
exactly when the thing it records does. It is one INSERT and takes no lock: a
send, an open or a delivered e-mail never waits for another one of the same
organisation. The event carries its own keyed seal (``mac``), so the linker,
which chains the event once it is committed, cannot be made to chain a forged
one unseen. No savepoint
either: an event that cannot be written fails the whole transaction, never just
itself. Details are short and never hold content: no subjects, bodies or filenames.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.db import connections

from hushpost.audit.chain import event_mac
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock, rows
from hushpost.lib.client import client_address
from hushpost.lib.metrics import count_event

# Set per request by AuditClientMiddleware; "worker", "smtpd" or "" elsewhere.
current_client: ContextVar[str] = ContextVar("hushpost_audit_client", default="")


# Written out rather than built by the ORM each time: it is on every hot path
# (each message sent and opened, each e-mail delivered). The same SQL serves
# PostgreSQL and SQLite.
_INSERT_EVENT = (
    'INSERT INTO "audit_auditevent" ("org_id", "at", "action", "actor_id", "actor_email", "client", '
    '"object_type", "object_id", "detail", "mac") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
)


def _insert(event: AuditEvent) -> None:
    connection = connections[AuditEvent.objects.db]
    values = [event.org_id, connection.ops.adapt_datetimefield_value(event.at), event.action, event.actor_id,
              event.actor_email, event.client, event.object_type, event.object_id, event.detail, event.mac]

    def done(returned) -> None:
        event.pk = returned[0]
        event._state.adding = False
        event._state.db = connection.alias

    # In a send, written in the one statement that writes the message and its deliveries.
    if rows.defer(_INSERT_EVENT.partition(" VALUES")[0], values, ["id"], done):
        return
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(_INSERT_EVENT + ' RETURNING "id"', values)
            event.pk = cursor.fetchone()[0]
        else:
            cursor.execute(_INSERT_EVENT, values)
            event.pk = cursor.lastrowid
    event._state.adding = False
    event._state.db = connection.alias


def record(action: str, *, org=None, actor=None, actor_email: str = "", request=None, client: str = "",
           obj=None, object_type: str = "", object_id: str = "", detail: str = "") -> AuditEvent:
    """Write an event, to be chained once committed. ``request`` gives the client address;
    ``obj`` a message, user or file."""
    if request is not None and not client:
        client = client_address(request)
    client = client or current_client.get()
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or str(getattr(obj, "uid", None) or obj.pk)
    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    if org is None and actor is not None:
        org = actor.org
    event = AuditEvent(
        org=org, at=clock.now(), action=action, actor=actor,
        actor_email=(actor.email if actor is not None else actor_email)[:254], client=client[:64],
        object_type=object_type[:20], object_id=object_id[:64], detail=detail[:300],
    )
    event.mac = event_mac(event)
    _insert(event)
    count_event(action)
    return event


def now_label() -> str:
    return clock.now().strftime("%Y%m%d-%H%M%S")
