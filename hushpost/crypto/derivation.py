"""The derivation root: the keys the audit trail and provisioning tokens use are derived from it.

HMAC-SHA256 of a label (``labels.MASTER_DERIVED``) under the root gives one key per purpose. The
root is the master key's raw bytes as the deployment first had them, kept wrapped under the
current master key in one row (``orgs.models.DerivationRoot``): rotating the master key re-wraps
the root and changes no derived key, so the audit chain, its checkpoints and every provisioning
token keep verifying.

A deployment from before the row existed gets it at its first derivation: the root is then the
configured key that wraps the oldest organisation key (the current key if there is none yet and
no previous key is configured). If no configured key wraps it, nothing is stored and :class:`RootUnknown` says which setting is
missing: a root made from the wrong key would break the audit trail for good.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache

from django.db import IntegrityError, transaction

from hushpost.crypto import labels, master
from hushpost.orgs.models import DerivationRoot, OrgKey

ROW = 1


class RootUnknown(master.UnknownMasterKey):
    """The configured master keys open neither the derivation root nor the organisation keys."""


def derived_key(label: bytes) -> bytes:
    """The key for one purpose, derived from the deployment's derivation root."""
    if label not in labels.MASTER_DERIVED:
        raise ValueError(f"{label!r} is not a purpose the master key derives a key for")
    return _derive(root(), label)


def root() -> bytes:
    ring = master.keyring()
    cached = _roots.get(ring)
    if cached is None:
        cached = _roots[ring] = _stored_root(ring)
    return cached


# Keyring -> root. The root never changes once stored, so a process reads it once.
_roots: dict[master.Keyring, bytes] = {}


def forget() -> None:
    _roots.clear()


def ensure_root() -> None:
    """Store the root now if this deployment has none yet (``rotate-master`` does, before re-wrapping)."""
    root()


def _stored_root(ring: master.Keyring) -> bytes:
    wrapped = DerivationRoot.objects.filter(pk=ROW).values_list("wrapped", flat=True).first()
    if wrapped is None:
        value = _first_root(ring)
        try:
            with transaction.atomic():
                DerivationRoot.objects.create(pk=ROW, wrapped=master.seal(value, labels.derivation_root_aad()))
        except IntegrityError:
            pass  # another process stored it first: the same value, read back below
        wrapped = DerivationRoot.objects.values_list("wrapped", flat=True).get(pk=ROW)
    try:
        return master.open_sealed(wrapped, labels.derivation_root_aad(), ring)
    except master.DecryptionError as exc:
        raise RootUnknown(f"the derivation root cannot be opened: {exc}") from None


def _first_root(ring: master.Keyring) -> bytes:
    """The master key the deployment derived with before the root was stored: the one wrapping its
    oldest organisation key."""
    oldest = OrgKey.objects.order_by("pk").values_list("org_id", "version", "wrapped_key").first()
    if oldest is None and ring.previous:
        # Nothing tells which of the keys the audit trail so far was keyed with.
        raise RootUnknown("no organisation key shows which master key this deployment ran with until now: "
                          "start it once with that key alone (no HUSHPOST_MASTER_KEY_PREVIOUS), then rotate")
    if oldest is None:
        return ring.current
    org_id, version, wrapped = oldest
    key = master.wrapped_under(wrapped, labels.org_key_aad(org_id, version), ring)
    if key is None:
        raise RootUnknown("HUSHPOST_MASTER_KEY opens none of this deployment's organisation keys: set "
                          "HUSHPOST_MASTER_KEY_PREVIOUS to the master key it ran with until now")
    return key


@lru_cache(maxsize=16)
def _derive(root_key: bytes, label: bytes) -> bytes:
    return hmac.new(root_key, label, hashlib.sha256).digest()
