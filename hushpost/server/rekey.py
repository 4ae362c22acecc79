"""Rotating an organisation's key (``hushpost keys``): a new version for what is sealed from
now on, every older message's data key (and every draft file's keyset) re-wrapped under it in
background batches, and the old version retired once nothing needs it.

Nothing stops meanwhile: each message row says which version wraps its data key, and every
version stays until it is retired, so a page that read a row just before its re-wrap still
opens it. Web processes keep sealing under the version they last read for up to
``keys.CURRENT_TTL`` seconds; ``retire`` re-wraps those stragglers before it checks.
Only wrapped keys change: no subject, body or file is decrypted or re-encrypted. E-mails
waiting in the gateway's spool (``gateway/spool.py``) are re-wrapped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count
from django_tasks import task

from hushpost.attachments.models import Attachment
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import aead, envelope, keys, labels
from hushpost.gateway.models import SpooledMail
from hushpost.lib.refusals import Refused
from hushpost.messaging.models import Message
from hushpost.orgs.models import Organization, OrgKey

BATCH = 200


def rotate(org: Organization, *, by: str) -> OrgKey:
    """A new key version, and its re-wrapping queued in the same transaction."""
    with transaction.atomic():
        key = keys.create_org_key(org)
        rewrap.enqueue(org.pk, key.version)
        record(AuditEvent.Action.ADMIN, org=org, actor_email=by, obj=org,
               detail=f"rotated the organisation key: version {key.version}")
    return key


@task()
def rewrap(org_id: int, version: int) -> int:
    """Everything still under an older version moves to ``version``; how many rows moved."""
    moved = 0
    while True:
        batch = _rewrap_batch(org_id, version)
        moved += batch
        if batch < BATCH:
            return moved


def _rewrap_batch(org_id: int, version: int) -> int:
    new_key = keys.key_version(org_id, version)
    with transaction.atomic():
        messages = list(Message.objects.select_for_update(skip_locked=True)
                        .filter(org_id=org_id, key_version__lt=version, purged_at__isnull=True)
                        .only("pk", "uid", "org_id", "key_version", "wrapped_key")[:BATCH])
        for m in messages:
            data_key = envelope.unwrap_data_key(keys.key_version(org_id, m.key_version), bytes(m.wrapped_key),
                                                org_id, m.uid)
            Message.objects.filter(pk=m.pk, key_version=m.key_version).update(
                key_version=version, wrapped_key=envelope.wrap_data_key(new_key, data_key, org_id, m.uid))
        drafts = list(Attachment.objects.select_for_update(skip_locked=True)
                      .filter(org_id=org_id, message__isnull=True, draft_key_version__lt=version)
                      .only("pk", "uid", "org_id", "draft_key_version", "sealed")[:BATCH])
        for a in drafts:
            secret = envelope.open_draft_file(keys.key_version(org_id, a.draft_key_version), a.org_id, a.uid,
                                              bytes(a.sealed))
            Attachment.objects.filter(pk=a.pk, message__isnull=True, draft_key_version=a.draft_key_version).update(
                draft_key_version=version, sealed=envelope.seal_draft_file(new_key, org_id, a.uid, secret))
        spooled = list(SpooledMail.objects.select_for_update(skip_locked=True)
                       .filter(org_id=org_id, state=SpooledMail.State.PENDING, key_version__lt=version)
                       .only("pk", "uid", "org_id", "key_version", "wrapped_key")[:BATCH])
        for s in spooled:
            aad = labels.spool_key_aad(org_id, s.uid)
            data_key = aead.open_sealed(keys.key_version(org_id, s.key_version), bytes(s.wrapped_key), aad)
            SpooledMail.objects.filter(pk=s.pk, state=SpooledMail.State.PENDING, key_version=s.key_version).update(
                key_version=version, wrapped_key=aead.seal(new_key, data_key, aad))
    return max(len(messages), len(drafts), len(spooled))


@dataclass
class VersionUse:
    version: int
    created_at: str
    messages: int
    drafts: int
    spooled: int = 0  # e-mails waiting in the gateway's spool


def status(org: Organization) -> list[VersionUse]:
    """Each key version of the organisation and what it still wraps."""
    # A purged message has no key left to wrap: it holds no version in use.
    messages = dict(Message.objects.filter(org=org, purged_at__isnull=True).values_list("key_version")
                    .annotate(n=Count("pk")).values_list("key_version", "n"))
    drafts = dict(Attachment.objects.filter(org=org, message__isnull=True).values_list("draft_key_version")
                  .annotate(n=Count("pk")).values_list("draft_key_version", "n"))
    spooled = dict(SpooledMail.objects.filter(org=org, state=SpooledMail.State.PENDING).values_list("key_version")
                   .annotate(n=Count("pk")).values_list("key_version", "n"))
    return [VersionUse(k.version, f"{k.created_at:%Y-%m-%d %H:%M}", messages.get(k.version, 0),
                       drafts.get(k.version, 0), spooled.get(k.version, 0))
            for k in OrgKey.objects.filter(org=org).order_by("version")]


def retire(org: Organization, version: int, *, by: str) -> None:
    """Destroy an old version once nothing is wrapped under it: whoever copied it can open nothing new,
    and nothing it once wrapped."""
    newest = OrgKey.objects.filter(org=org).order_by("-version").values_list("version", flat=True).first()
    if newest is None or version >= newest:
        raise Refused(f"version {version} is the newest (or no such version); rotate first")
    rewrap.call(org.pk, newest)  # the stragglers sealed meanwhile by processes not yet told
    with transaction.atomic():
        Organization.objects.select_for_update().get(pk=org.pk)
        in_use = (Message.objects.filter(org=org, key_version=version, purged_at__isnull=True).exists()
                  or Attachment.objects.filter(org=org, message__isnull=True, draft_key_version=version).exists()
                  or SpooledMail.objects.filter(org=org, state=SpooledMail.State.PENDING,
                                                key_version=version).exists())
        if in_use:
            raise Refused(f"version {version} still wraps messages, drafts or spooled e-mails; try again in a minute")
        if not OrgKey.objects.filter(org=org, version=version).delete()[0]:
            raise Refused(f"{org.slug} has no key version {version}")
        record(AuditEvent.Action.ADMIN, org=org, actor_email=by, obj=org,
               detail=f"retired organisation key version {version}")
    keys.forget_cached_keys()
