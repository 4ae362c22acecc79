"""Organisation keys: creation, rotation and unwrapping under the master key.

Each organisation has versioned AES-256 keys (``orgs.models.OrgKey``), each wrapped under the
master key (:func:`.master.seal`) with associated data naming organisation and version. Messages are sealed under
the newest version; every older version stays, so what it sealed stays readable.
"""

from __future__ import annotations

import time
from functools import lru_cache

from django.db import transaction

from hushpost.crypto import aead, derivation, labels, master
from hushpost.orgs.models import Organization, OrgKey


def create_org_key(org: Organization) -> OrgKey:
    """Add a new key version; messages sent from now on use it."""
    with transaction.atomic():
        last = (
            OrgKey.objects.select_for_update()
            .filter(org=org)
            .order_by("-version")
            .values_list("version", flat=True)
            .first()
        )
        version = (last or 0) + 1
        wrapped = master.seal(aead.new_key(), labels.org_key_aad(org.pk, version))
        key = OrgKey.objects.create(org=org, version=version, wrapped_key=wrapped)
    _current.pop(org.pk, None)  # this process uses the new version at once
    return key


# org id -> (current version, when it was read). A rotation reaches every
# process within CURRENT_TTL seconds; until then they keep encrypting under the
# previous version, which stays valid, so nothing is lost or unreadable.
CURRENT_TTL = 60.0
_current: dict[int, tuple[int, float]] = {}


def current_key(org: Organization) -> tuple[int, bytes]:
    cached = _current.get(org.pk)
    if cached is not None and time.monotonic() - cached[1] < CURRENT_TTL:
        return cached[0], key_version(org.pk, cached[0])
    key = OrgKey.objects.filter(org=org).order_by("-version").first()
    if key is None:
        key = create_org_key(org)
    _current[org.pk] = (key.version, time.monotonic())
    return key.version, _unwrap(org.pk, key.version, bytes(key.wrapped_key))


def forget_cached_keys() -> None:
    _current.clear()
    key_version.cache_clear()
    unwrap_org_key.cache_clear()
    derivation.forget()


@lru_cache(maxsize=1024)
def key_version(org_id: int, version: int) -> bytes:
    # A key version never changes once written (rotation adds a version), so a
    # process may keep it: an inbox page opens fifty subjects with one query.
    wrapped = OrgKey.objects.values_list("wrapped_key", flat=True).get(org_id=org_id, version=version)
    return _unwrap(org_id, version, bytes(wrapped))


def _unwrap(org_id: int, version: int, wrapped: bytes) -> bytes:
    return unwrap_org_key(master.keyring(), org_id, version, wrapped)


@lru_cache(maxsize=1024)
def unwrap_org_key(ring: master.Keyring, org_id: int, version: int, wrapped: bytes) -> bytes:
    # Cached: an organisation key is unwrapped once per process, not per message. Re-wrapping it
    # under a new master key changes the blob, never the key.
    return master.open_sealed(wrapped, labels.org_key_aad(org_id, version), ring)
