"""DKIM: the signing keys of the domains notifications come from, and the signature on each e-mail.

Each key (``orgs.models.DkimKey``) is an RSA 2048 key whose private half is sealed under the master
key (:func:`.master.seal`, associated data naming domain and selector) and whose public half is
published in DNS as ``<selector>._domainkey.<domain>``. A domain may have several keys for a
rotation: the newest active one signs. An e-mail whose From domain has no key goes unsigned.

Signatures are dkimpy's (relaxed/relaxed, rsa-sha256) over the headers a receiver judges the e-mail
by; From is signed twice ("oversigned"), so a second From added on the way breaks the signature.
Unwrapped keys are cached per process; which key signs for a domain is read at most once a minute,
so a new key reaches every worker within :data:`CURRENT_TTL` seconds (the one that created it at
once), while the previous key, still published, keeps signing validly meanwhile.
"""

from __future__ import annotations

import base64
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from types import ModuleType

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.utils import timezone

from hushpost.crypto import labels, master
from hushpost.orgs.models import DkimKey

KEY_BITS = 2048
# What a receiver judges the e-mail by. Each field it has is named once more than it appears, and
# the fields a reader would trust that it lacks (Reply-To, Cc, In-Reply-To, References) once: the
# signature then covers their absence, so nobody holding a genuine notification can add a second
# Subject, To or a Reply-To ("reply with your password") that mail programs show and DKIM forgives.
_PRESENT = (b"from", b"to", b"subject", b"date", b"message-id", b"mime-version", b"content-type",
            b"auto-submitted")
SIGNED_HEADERS = (*(name for name in _PRESENT for _ in (1, 2)), b"reply-to", b"cc", b"in-reply-to",
                  b"references")
CANONICALIZATION = (b"relaxed", b"relaxed")
# A TXT record is one or more strings of at most 255 characters each.
TXT_STRING = 255
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Record:
    """A key's DNS TXT record."""

    name: str  # <selector>._domainkey.<domain>, with the trailing dot
    value: str  # v=DKIM1; k=rsa; p=...

    @property
    def strings(self) -> list[str]:
        return [self.value[i:i + TXT_STRING] for i in range(0, len(self.value), TXT_STRING)]

    @property
    def zone_line(self) -> str:
        """The record as a zone file writes it: the value as quoted strings of at most 255 characters."""
        return f'{self.name} IN TXT ( {" ".join(f"{chr(34)}{s}{chr(34)}" for s in self.strings)} )'


def record_of(key: DkimKey) -> Record:
    return Record(f"{key.selector}._domainkey.{key.domain}.", f"v=DKIM1; k=rsa; p={key.public_key}")


def normalize_domain(domain: str) -> str:
    name = domain.strip().rstrip(".").lower()
    labels_ = name.split(".")
    if len(name) > 253 or len(labels_) < 2 or not all(_LABEL.fullmatch(label) for label in labels_):
        raise ValueError(f"{domain!r} is not a domain name")
    return name


def default_selector() -> str:
    """A selector that names when the key was made, so a rotation's new one differs: hp202611."""
    return f"hp{timezone.now():%Y%m}"


def create_key(domain: str, selector: str = "") -> DkimKey:
    """A new signing key for ``domain``; it signs from now on (this process at once, others within a minute)."""
    domain = normalize_domain(domain)
    selector = (selector or default_selector()).strip().lower()
    if not all(_LABEL.fullmatch(label) for label in selector.split(".")):
        raise ValueError(f"{selector!r} is not a usable selector (letters, digits and hyphens)")
    if DkimKey.objects.filter(domain=domain, selector=selector).exists():
        raise ValueError(f"{domain} already has a key with selector {selector!r}: choose another with --selector")
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = private.public_key().public_bytes(serialization.Encoding.DER,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    with transaction.atomic():
        key = DkimKey.objects.create(domain=domain, selector=selector,
                                     sealed_key=master.seal(pem, labels.dkim_key_aad(domain, selector)),
                                     public_key=base64.b64encode(public).decode())
    _signing.pop(domain, None)
    return key


# domain -> (the key that signs: (id, selector, sealed) or None, when it was read).
CURRENT_TTL = 60.0
_signing: dict[str, tuple[tuple[int, str, bytes] | None, float]] = {}


def signing_key(domain: str) -> tuple[int, str, bytes] | None:
    cached = _signing.get(domain)
    if cached is not None and time.monotonic() - cached[1] < CURRENT_TTL:
        return cached[0]
    row = (DkimKey.objects.filter(domain=domain, is_active=True).order_by("-created_at", "-pk")
           .values_list("pk", "selector", "sealed_key").first())
    found = (row[0], row[1], bytes(row[2])) if row else None
    _signing[domain] = (found, time.monotonic())
    return found


@lru_cache(maxsize=64)
def _private_key(pk: int, domain: str, selector: str, sealed: bytes) -> bytes:
    return master.open_sealed(sealed, labels.dkim_key_aad(domain, selector))


def signature(message: bytes, domain: str) -> bytes:
    """The DKIM-Signature header line for ``message`` (From at ``domain``), empty if the domain has no key."""
    domain = domain.lower()
    key = signing_key(domain)
    if key is None:
        return b""
    pk, selector, sealed = key
    return _dkimpy().sign(message, selector.encode(), domain.encode(), _private_key(pk, domain, selector, sealed),
                     canonicalize=CANONICALIZATION, include_headers=list(SIGNED_HEADERS), linesep=b"\r\n")


@lru_cache(maxsize=1)
def _dkimpy() -> ModuleType:
    # dkimpy imports dnspython's resolver as it loads (half a second on a busy machine), which
    # signing never uses: the process that signs pays for it at its first e-mail, not every
    # process at start-up.
    import dkim

    return dkim


def forget_cached_keys() -> None:
    _signing.clear()
    _private_key.cache_clear()
