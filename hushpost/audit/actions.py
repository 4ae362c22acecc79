"""Recording and verifying the audit trail.

``record`` appends one event to its organisation's hash chain inside the
caller's transaction (the event exists exactly when the thing it records does).
Details are short and never hold content: no subjects, bodies or filenames.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from django.db import IntegrityError, transaction

from hushpost.audit.models import AuditEvent, AuditHead
from hushpost.lib import clock

GENESIS = "0" * 64
# Set per request by AuditClientMiddleware; "worker", "smtpd" or "" elsewhere.
current_client: ContextVar[str] = ContextVar("hushpost_audit_client", default="")


def _key() -> bytes:
    # Derived from the master key, which is not in the database: someone who can
    # write to the database still cannot make events that verify.
    from django.conf import settings

    return _derive(settings.MASTER_KEY)


@lru_cache(maxsize=4)
def _derive(master_setting: str) -> bytes:
    from hushpost.lib.crypto import master_key_from_setting

    return hmac.new(master_key_from_setting(master_setting), b"hushpost:audit-chain", hashlib.sha256).digest()


def _digest(prev: str, event: AuditEvent) -> str:
    fields = [prev, event.org_id or 0, event.at.isoformat(), event.action, event.actor_id or 0,
              event.actor_email, event.client, event.object_type, event.object_id, event.detail]
    return hmac.new(_key(), json.dumps(fields, separators=(",", ":")).encode(), hashlib.sha256).hexdigest()


def _head(chain: int) -> AuditHead:
    head = AuditHead.objects.select_for_update().filter(chain=chain).first()
    if head is None:
        try:
            with transaction.atomic():
                AuditHead.objects.create(chain=chain, last_hash=GENESIS)
        except IntegrityError:
            pass
        head = AuditHead.objects.select_for_update().get(chain=chain)
    return head


def record(action: str, *, org=None, actor=None, actor_email: str = "", request=None, client: str = "",
           obj=None, object_type: str = "", object_id: str = "", detail: str = "") -> AuditEvent:
    """Append an event. ``request`` gives the client address; ``obj`` a message, user or file."""
    if request is not None and not client:
        from hushpost.accounts.throttle import client_address

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
    with transaction.atomic():
        head = _head(event.org_id or 0)
        event.prev_hash = head.last_hash
        event.hash = _digest(head.last_hash, event)
        event.save()
        AuditHead.objects.filter(pk=head.pk).update(last_hash=event.hash)
    return event


def record_many(entries: list[dict]) -> None:
    """Append several events at once: one lock and one head update per chain."""
    if not entries:
        return
    events = []
    for entry in entries:
        org = entry.get("org")
        events.append(AuditEvent(
            org=org, at=clock.now(), action=entry["action"], actor=None,
            actor_email=entry.get("actor_email", "")[:254], client=entry.get("client", "")[:64],
            object_type=entry.get("object_type", "")[:20], object_id=entry.get("object_id", "")[:64],
            detail=entry.get("detail", "")[:300]))
    with transaction.atomic():
        by_chain: dict[int, list[AuditEvent]] = {}
        for event in events:
            by_chain.setdefault(event.org_id or 0, []).append(event)
        for chain in sorted(by_chain):
            head = _head(chain)
            prev = head.last_hash
            for event in by_chain[chain]:
                event.prev_hash, event.hash = prev, _digest(prev, event)
                prev = event.hash
            AuditEvent.objects.bulk_create(by_chain[chain])
            AuditHead.objects.filter(pk=head.pk).update(last_hash=prev)


@dataclass
class Verdict:
    chains: int
    events: int
    broken: list[str]


def verify() -> Verdict:
    """Walk every chain in order, in one consistent snapshot; report where a link does not hold."""
    from django.db import connection

    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return _verify()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        return _verify()


def _verify() -> Verdict:
    broken: list[str] = []
    events = 0
    heads = {h.chain: h.last_hash for h in AuditHead.objects.all()}
    chains = sorted(set(heads) | set(AuditEvent.objects.values_list("org_id", flat=True).distinct()), key=lambda c: c or 0)
    seen_chains = set()
    for chain in chains:
        chain = chain or 0
        if chain in seen_chains:
            continue
        seen_chains.add(chain)
        prev = GENESIS
        rows = AuditEvent.objects.filter(org_id=chain or None).order_by("id") if chain else \
            AuditEvent.objects.filter(org__isnull=True).order_by("id")
        for event in rows.iterator():
            events += 1
            if event.prev_hash != prev or _digest(prev, event) != event.hash:
                broken.append(f"chain {chain}: event {event.pk} ({event.at:%Y-%m-%d %H:%M:%S} {event.action}) "
                              "does not follow from the one before it")
                break
            prev = event.hash
        else:
            if heads.get(chain, GENESIS) != prev:
                broken.append(f"chain {chain}: its last events are missing (the head is not the last event)")
    return Verdict(chains=len(seen_chains), events=events, broken=broken)


def now_label() -> str:
    return clock.now().strftime("%Y%m%d-%H%M%S")
