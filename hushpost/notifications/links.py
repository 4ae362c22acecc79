"""What a recipient's e-mail link carries.

A recipient's link is ``/r/<org>/n/<code>``: the code is the notification's random key and a
keyed tag over it (:func:`hushpost.crypto.macs.notification_link`), never the recipient's
address. It signs nobody in: it only lets the sign-in page fill in the address and go on to the
message. A code that was not made here fails its tag before any look-up; the database holds
nothing a code could be rebuilt from without the derivation root.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid

from hushpost.crypto import macs
from hushpost.notifications.models import Notification

TAG_BYTES = 10
_CODE = re.compile(r"[A-Za-z0-9_-]{35}")


def link_code(notification: Notification) -> str:
    key = notification.key.bytes
    return base64.urlsafe_b64encode(key + macs.notification_link(key)[:TAG_BYTES]).decode().rstrip("=")


def link_path(notification: Notification) -> str:
    return f"/r/{notification.org.slug}/n/{link_code(notification)}"


def notification_key(code: str) -> uuid.UUID | None:
    """The key a code names, if this deployment made it; None for anything else."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        return None
    try:
        raw = base64.urlsafe_b64decode(code + "=")
    except (binascii.Error, ValueError):
        return None
    key, tag = raw[:16], raw[16:]
    if len(key) != 16 or not hmac.compare_digest(macs.notification_link(key)[:TAG_BYTES], tag):
        return None
    return uuid.UUID(bytes=key)
