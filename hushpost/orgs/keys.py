"""Organisation keys: creation, rotation and unwrapping under the master key."""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings
from django.db import transaction

from hushpost.lib import crypto
from hushpost.orgs.models import Organization, OrgKey


@lru_cache(maxsize=1)
def master_key() -> bytes:
    return crypto.master_key_from_setting(settings.MASTER_KEY)


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
        wrapped = crypto.seal(master_key(), crypto.new_key(), crypto.org_key_aad(org.pk, version))
        return OrgKey.objects.create(org=org, version=version, wrapped_key=wrapped)


def current_key(org: Organization) -> tuple[int, bytes]:
    key = OrgKey.objects.filter(org=org).order_by("-version").first()
    if key is None:
        key = create_org_key(org)
    return key.version, _unwrap(org.pk, key.version, bytes(key.wrapped_key))


@lru_cache(maxsize=1024)
def key_version(org_id: int, version: int) -> bytes:
    # A key version never changes once written (rotation adds a version), so a
    # process may keep it: an inbox page opens fifty subjects with one query.
    wrapped = OrgKey.objects.values_list("wrapped_key", flat=True).get(org_id=org_id, version=version)
    return _unwrap(org_id, version, bytes(wrapped))


def _unwrap(org_id: int, version: int, wrapped: bytes) -> bytes:
    return crypto.unwrap_org_key(master_key(), org_id, version, wrapped)
