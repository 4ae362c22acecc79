"""What a recipient's e-mail link carries, and the reference code an e-mail and the portal both show.

A recipient's link is ``/r/<org>/n/<code>``: the code is the notification's random key, hidden
under a keyed permutation (:func:`hushpost.crypto.macs.hide_notification_key`), and a keyed tag over that (:func:`hushpost.crypto.macs.notification_link`), never the recipient's
address. It signs nobody in: it only lets the sign-in page fill in the address and go on to the
message. A code that was not made here fails its tag before any look-up; the database holds
nothing a code could be rebuilt from without the derivation root.

A reference code (``K7QP-M9XD``) is spelled from a keyed hash of what the e-mail is about: a
message's code is the same in every e-mail about it and on its pages, so a recipient who types
the portal's address instead of following a link can still match an e-mail to a real message.
It is no secret and opens nothing; a look-alike site cannot know it for a real message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import uuid

from hushpost.crypto import macs
from hushpost.notifications.models import Notification

# No 0/O, no 1/I: read aloud or typed, nothing is mistaken for anything else.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
TAG_BYTES = 10
_CODE = re.compile(r"[A-Za-z0-9_-]{35}")


def link_code(notification: Notification) -> str:
    hidden = macs.hide_notification_key(notification.key.bytes)
    return base64.urlsafe_b64encode(hidden + macs.notification_link(hidden)[:TAG_BYTES]).decode().rstrip("=")


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
    if base64.urlsafe_b64encode(raw).decode().rstrip("=") != code:
        return None  # the last letter's two spare bits set: one code, one spelling
    hidden, tag = raw[:16], raw[16:]
    if len(hidden) != 16 or not hmac.compare_digest(macs.notification_link(hidden)[:TAG_BYTES], tag):
        return None
    return uuid.UUID(bytes=macs.reveal_notification_key(hidden))


def spell(subject: str) -> str:
    digest = int.from_bytes(macs.reference_code(subject)[:5])
    letters = "".join(ALPHABET[(digest >> (5 * i)) & 31] for i in range(8))
    return f"{letters[:4]}-{letters[4:]}"


def message_reference(message_uid: str) -> str:
    """A message's reference code: in every e-mail about it, and on its pages."""
    return spell(f"message:{message_uid}")


def reference(notification: Notification) -> str:
    """The code an e-mail shows: its message's when it is about one, else its own."""
    if notification.delivery_id is not None:
        return message_reference(notification.delivery.message.uid)
    return spell(f"notification:{notification.key}")
