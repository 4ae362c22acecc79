"""Recording the audit trail (checking it: :mod:`hushpost.audit.verify`).

``record`` appends one event to its organisation's hash chain inside the
caller's transaction (the event exists exactly when the thing it records does),
and moves the chain's sealed head on in the same transaction. It takes no
savepoint there: an event that cannot be written fails the whole transaction,
never just itself.
Details are short and never hold content: no subjects, bodies or filenames.
"""

from __future__ import annotations

from contextvars import ContextVar

from django.db import IntegrityError, connections, transaction

from hushpost.audit.chain import GENESIS, head_seal, link
from hushpost.audit.models import AuditEvent, AuditHead
from hushpost.lib import clock
from hushpost.lib.client import client_address

# Set per request by AuditClientMiddleware; "worker", "smtpd" or "" elsewhere.
current_client: ContextVar[str] = ContextVar("hushpost_audit_client", default="")


# Appending is on every hot path (each message sent, each e-mail delivered), so its three
# statements are written out rather than built by the ORM each time: the head locked, the
# event inserted, the head moved on. The same SQL serves PostgreSQL and SQLite (which
# locks the whole database for a writer, so it has no FOR UPDATE).
_HEAD = 'SELECT "id", "last_hash", "events" FROM "audit_audithead" WHERE "chain" = %s'
_ADVANCE = 'UPDATE "audit_audithead" SET "last_hash" = %s, "events" = %s, "seal" = %s WHERE "id" = %s'
_INSERT_EVENT = (
    'INSERT INTO "audit_auditevent" ("org_id", "at", "action", "actor_id", "actor_email", "client", '
    '"object_type", "object_id", "detail", "prev_hash", "hash") VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)'
)


def _head(chain: int) -> AuditHead:
    """The chain's head, locked until the end of the transaction (made the first time)."""
    connection = connections[AuditHead.objects.db]
    locked = _HEAD + (" FOR UPDATE" if connection.features.has_select_for_update else "")
    with connection.cursor() as cursor:
        cursor.execute(locked, [chain])
        row = cursor.fetchone()
        if row is None:
            try:
                with transaction.atomic():
                    AuditHead.objects.create(chain=chain, last_hash=GENESIS, events=0,
                                             seal=head_seal(chain, 0, GENESIS))
            except IntegrityError:
                pass
            cursor.execute(locked, [chain])
            row = cursor.fetchone()
    pk, last_hash, events = row
    return AuditHead(pk=pk, chain=chain, last_hash=last_hash, events=events)


def _advance(head: AuditHead, last_hash: str, added: int) -> None:
    """Move the head to the chain's new end, resealed (in the appending transaction)."""
    events = head.events + added
    with connections[AuditHead.objects.db].cursor() as cursor:
        cursor.execute(_ADVANCE, [last_hash, events, head_seal(head.chain, events, last_hash), head.pk])


def _insert(event: AuditEvent) -> None:
    connection = connections[AuditEvent.objects.db]
    values = [event.org_id, connection.ops.adapt_datetimefield_value(event.at), event.action, event.actor_id,
              event.actor_email, event.client, event.object_type, event.object_id, event.detail,
              event.prev_hash, event.hash]
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
    """Append an event. ``request`` gives the client address; ``obj`` a message, user or file."""
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
    with transaction.atomic(savepoint=False):
        head = _head(event.org_id or 0)
        event.prev_hash = head.last_hash
        event.hash = link(head.last_hash, event)
        _insert(event)
        _advance(head, event.hash, 1)
    return event


def now_label() -> str:
    return clock.now().strftime("%Y%m%d-%H%M%S")
