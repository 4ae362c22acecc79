"""The only ways to load a message for a signed-in user.

Every view, print page and action gets its message from one of these two
functions; anything a user may not see answers 404, the same as a message
that does not exist, so URLs reveal nothing.  Each condition stands on its
own line so the tests can prove every branch.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Q, QuerySet
from django.http import Http404

from hushpost.accounts.models import User
from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.sql import message_and_delivery


@dataclass(frozen=True)
class Access:
    message: Message
    # The addressee's own delivery row, or None when the user wrote the message.
    delivery: Delivery | None

    @property
    def is_author(self) -> bool:
        return self.delivery is None


def _load(user: User, uid: str, *, role: str, include_deleted: bool, include_recalled: bool = False) -> Access:
    if not user.is_authenticated:
        raise Http404
    if user.role != role:
        raise Http404
    if not user.is_active or user.org_id is None:
        raise Http404
    # The message and the user's own delivery of it, read together (one statement).
    found = message_and_delivery(user, uid, user.org_id)
    if found is None:
        raise Http404
    message, delivery = found
    if message.author_id == user.pk:
        return Access(message=message, delivery=None)
    if delivery is None:
        raise Http404
    if delivery.deleted_at is not None and not include_deleted:
        raise Http404
    if delivery.recalled_at is not None and not include_recalled:
        raise Http404
    return Access(message=message, delivery=delivery)


def access_message_for_sender(user: User, uid: str) -> Access:
    """A message the sender wrote, or a reply addressed to them."""
    return _load(user, uid, role=User.Role.SENDER, include_deleted=True)


def access_own_message_for_sender(user: User, uid: str) -> Message:
    """A message the sender wrote (to recall, re-time or retry it); 404 for a reply addressed to them."""
    access = _load(user, uid, role=User.Role.SENDER, include_deleted=True)
    if not access.is_author:
        raise Http404
    return access.message


def access_message_for_recipient(user: User, uid: str, *, include_recalled: bool = False) -> Access:
    """A message addressed to the recipient and not deleted, or a reply they wrote.

    A recalled message opens nothing: only its own page may load it
    (``include_recalled``), to say that it was recalled.
    """
    return _load(user, uid, role=User.Role.RECIPIENT, include_deleted=False, include_recalled=include_recalled)


def replies_for_sender(user: User, message: Message) -> QuerySet[Message]:
    """The replies to ``message`` that ``user``, a sender, may see: those they wrote
    and those addressed to them, oldest first."""
    return (
        Message.objects.filter(in_reply_to=message, kind=Message.Kind.REPLY)
        .filter(Q(author=user) | Q(deliveries__recipient=user))
        .distinct().select_related("author").order_by("created_at")
    )
