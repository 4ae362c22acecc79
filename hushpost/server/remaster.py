"""Rotating the master key (``hushpost keys rotate-master``): everything it wraps, wrapped again
under the new one while the previous one is still accepted.

Every process runs with the new key as ``HUSHPOST_MASTER_KEY`` and the old one in
``HUSHPOST_MASTER_KEY_PREVIOUS``: each value names the key that wrapped it, so a process opens
either, and seals under the new one. ``rotate-master`` then walks the five kinds of wrapped value
in id order, a batch per short transaction with its rows locked, re-wrapping those not yet under the
current key: the derivation root (so no derived key changes), the organisation keys,
authenticator secrets, OpenID Connect client secrets and DKIM signing keys. Only wrappings change: no organisation
key, secret or message is new. Run twice, or stopped and run again, it moves only what is left.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import derivation, dkim, keys, labels, master
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import DerivationRoot, DkimKey, OrgKey
from hushpost.sso.models import SingleSignOn

BATCH = 200
# Rows saved whole by a process that loaded them before their re-wrap put the old wrapping back;
# another pass moves them.
PASSES = 3


@dataclass(frozen=True)
class Kind:
    name: str
    model: type
    field: str
    aad: Callable[[object], bytes]
    columns: tuple[str, ...]


KINDS = (
    Kind("derivation root", DerivationRoot, "wrapped", lambda row: labels.derivation_root_aad(), ()),
    Kind("organisation keys", OrgKey, "wrapped_key", lambda row: labels.org_key_aad(row.org_id, row.version),
         ("org_id", "version")),
    Kind("authenticator secrets", User, "totp_secret_sealed", lambda row: labels.totp_secret_aad(row.pk), ()),
    Kind("security phrases", User, "security_phrase_sealed", lambda row: labels.security_phrase_aad(row.pk), ()),
    Kind("SSO client secrets", SingleSignOn, "oidc_client_secret_sealed",
         lambda row: labels.sso_client_secret_aad(row.org_id), ("org_id",)),
    Kind("DKIM keys", DkimKey, "sealed_key", lambda row: labels.dkim_key_aad(row.domain, row.selector),
         ("domain", "selector")),
)


@dataclass
class Count:
    kind: str
    current: int = 0
    previous: int = 0
    unreadable: int = 0


def rotate(*, by: str) -> int:
    """Every wrapped value under the current master key; how many were re-wrapped."""
    _check_settings()
    derivation.ensure_root()  # a deployment from before the root: stored now, from the previous key
    moved = 0
    for _ in range(PASSES):
        moved += sum(_rewrap_kind(kind) for kind in KINDS)
        if not any(count.previous for count in status()):
            break
    keys.forget_cached_keys()
    dkim.forget_cached_keys()
    record(AuditEvent.Action.ADMIN, org=None, actor_email=by,
           detail=f"rotated the master key: {moved} wrapped values moved to the new key")
    return moved


def status() -> list[Count]:
    """For each kind of wrapped value: how many the current key wraps, how many a previous one, and
    how many no configured key opens."""
    ring = master.keyring()
    counts = []
    for kind in KINDS:
        count = Count(kind.name)
        for row in _wrapped(kind).iterator():
            key = master.wrapped_under(getattr(row, kind.field), kind.aad(row), ring)
            if key is None:
                count.unreadable += 1
            elif key == ring.current:
                count.current += 1
            else:
                count.previous += 1
        counts.append(count)
    return counts


def _check_settings() -> None:
    if not settings.MASTER_KEY_PREVIOUS:
        raise Refused("HUSHPOST_MASTER_KEY_PREVIOUS is not set: set it to the old master key and "
                      "HUSHPOST_MASTER_KEY to the new one, restart every process, then rotate")
    current = master.master_key_from_setting(settings.MASTER_KEY)
    if any(master.master_key_from_setting(key) == current for key in settings.MASTER_KEY_PREVIOUS):
        raise Refused("HUSHPOST_MASTER_KEY is also in HUSHPOST_MASTER_KEY_PREVIOUS: "
                      "the new key goes in HUSHPOST_MASTER_KEY, the old one in HUSHPOST_MASTER_KEY_PREVIOUS")


def _wrapped(kind: Kind):
    return (kind.model.objects.filter(**{f"{kind.field}__isnull": False})
            .exclude(**{kind.field: b""}).order_by("pk").only("pk", kind.field, *kind.columns))


def _rewrap_kind(kind: Kind) -> int:
    moved, after = 0, 0
    while True:
        with transaction.atomic():
            rows = list(_wrapped(kind).select_for_update().filter(pk__gt=after)[:BATCH])
            for row in rows:
                old = bytes(getattr(row, kind.field))
                if master.is_current(old):
                    continue
                aad = kind.aad(row)
                new = master.seal(master.open_sealed(old, aad), aad)
                # Only if unchanged since it was read: a secret replaced meanwhile is already under the new key.
                moved += kind.model.objects.filter(pk=row.pk, **{kind.field: old}).update(**{kind.field: new})
        if len(rows) < BATCH:
            return moved
        after = rows[-1].pk
