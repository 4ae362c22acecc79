"""Conversations: a message and every reply under it.

What the sender decided for a message holds for everything under it.  A "No
Print" message makes every reply below it unprintable, the sender's replies to
those replies included: they quote its subject and reply to its content.  A recall
withdraws the conversation below the message from that recipient: their
replies stay theirs, but nothing of the recalled message, not even its
subject in a "Re:", is shown to them again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hushpost.accounts.models import User
from hushpost.lib.refusals import Refused
from hushpost.messaging.content import Content, open_content
from hushpost.messaging.models import Delivery, Message
from hushpost.messaging.sql import deliveries_in

MAX_DEPTH = 100  # a conversation is short; a cycle is impossible but cheap to bound
# What a recipient sees instead of the subject of a message under a recalled one.
WITHDRAWN_SUBJECT = "Re: a message the sender recalled"


TOO_LONG = "This conversation is too long to continue here."


def ancestors(message: Message) -> list[Message]:
    """``message`` first, then the one it answers, and so on to the conversation's top;
    refused for a conversation too long to read to its top."""
    chain, complete = _walk(message)
    if not complete:
        raise Refused(TOO_LONG)
    return chain


def _walk(message: Message) -> tuple[list[Message], bool]:
    """As much of the chain as MAX_DEPTH allows, and whether it reached the top.

    Walked once per loaded message (what a message answers never changes), however
    many of the questions below a page asks about it."""
    if not hasattr(message, "_conversation"):
        message._conversation = _climb(message)
    return message._conversation


def _climb(message: Message) -> tuple[list[Message], bool]:
    chain = [message]
    while chain[-1].in_reply_to_id is not None:
        if len(chain) >= MAX_DEPTH:
            return chain, False
        parent = Message.objects.select_related("author").filter(pk=chain[-1].in_reply_to_id).first()
        if parent is None:
            break
        chain.append(parent)
    return chain, True


def conversation(message: Message) -> list[Message]:
    """The whole conversation ``message`` is part of: its top message, then every reply under
    it, oldest first, with their authors; refused for one too long to read to its top."""
    top = ancestors(message)[-1]
    found, frontier = [top], [top.pk]
    for _ in range(MAX_DEPTH):
        below = list(Message.objects.filter(org_id=top.org_id, in_reply_to_id__in=frontier).select_related("author"))
        if not below:
            break
        found += below
        frontier = [m.pk for m in below]
    else:  # replies deeper still: refused whole rather than given in part
        raise Refused(f"This conversation is more than {MAX_DEPTH} replies deep; it cannot be gathered whole.")
    return [top, *sorted(found[1:], key=lambda m: (m.created_at, m.pk))]


def root_of(chain: list[Message]) -> Message:
    """The organisation sender's message that a chain of replies answers."""
    return next((m for m in chain if m.kind == Message.Kind.MESSAGE), chain[-1])


@dataclass(frozen=True)
class Restrictions:
    """What the sender allowed for a message, as its conversation decides it."""

    no_print: bool
    no_reply: bool
    expired: bool
    # Deeper than anyone writes: nothing above can be read, so everything is refused.
    too_long: bool = False

    @property
    def label(self) -> str:
        if self.no_reply:
            return "Restricted by the sender: no printing, no replies."
        return "Restricted by the sender: no printing." if self.no_print else ""


def restrictions(message: Message) -> Restrictions:
    """"No Print" anywhere above a message holds for it.  "No Reply" and expiry
    are those of the sender's message a reply answers (or of the message itself):
    a sender who replies to a reply chooses them anew for that message."""
    try:
        chain = ancestors(message)
    except Refused:  # too long to read to its top
        return Restrictions(no_print=True, no_reply=True, expired=False, too_long=True)
    root = root_of(chain)
    answered = [message] if root.pk == message.pk else [message, root]
    return Restrictions(
        no_print=any(m.no_print for m in chain),
        no_reply=any(m.no_reply for m in answered),
        expired=any(m.is_expired for m in answered),
    )


def withdrawn_from(user: User) -> set[int]:
    """Ids of the messages recalled for ``user`` and of every message under them."""
    found = set(
        Delivery.objects.filter(recipient=user, recalled_at__isnull=False).values_list("message_id", flat=True)
    )
    frontier = set(found)
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        below = set(Message.objects.filter(in_reply_to_id__in=frontier).values_list("pk", flat=True))
        frontier = below - found
        found |= frontier
    return found


def recalled_above(message: Message) -> set[int]:
    """Who the message, or any message above it, was recalled for (user ids).

    Of a conversation too long to read to its top, the part that can be read
    (nobody can reply in one, so nothing more reaches anyone through it).
    Asked several times while one page is built (the subject, "can reply",
    Reply All), it is read once per loaded message; a recall forgets it.
    """
    known = message.__dict__.get(RECALLED_ABOVE)
    if known is None:
        ids = [m.pk for m in _walk(message)[0]]
        known = message.__dict__[RECALLED_ABOVE] = frozenset(
            Delivery.objects.filter(message_id__in=ids, recalled_at__isnull=False)
            .values_list("recipient_id", flat=True))
    return set(known)


def addressed(message: Message) -> list[Delivery]:
    """The message's deliveries, with their recipients.

    Read in the same statement as who the message, or any message above it, was
    recalled for (so ``recalled_above`` asks nothing more): a recipient's page of
    a message needs both. Kept on the loaded message; a recall forgets it.
    """
    known = message.__dict__.get(ADDRESSED)
    if known is None:
        ids = [m.pk for m in _walk(message)[0]]
        rows = deliveries_in(message.pk, ids)
        message.__dict__[RECALLED_ABOVE] = frozenset(d.recipient_id for d in rows if d.recalled_at is not None)
        known = message.__dict__[ADDRESSED] = [d for d in rows if d.message_id == message.pk]
    return list(known)


RECALLED_ABOVE = "_recalled_above"
ADDRESSED = "_addressed"


def forget_recalls(message: Message) -> None:
    """After a recall: who the message is recalled for has changed."""
    message.__dict__.pop(RECALLED_ABOVE, None)
    message.__dict__.pop(ADDRESSED, None)


def is_withdrawn(user: User, message: Message) -> bool:
    # What is above a conversation too long to read cannot be known: withhold rather than show.
    return not _walk(message)[1] or user.pk in recalled_above(message)


def content_for(viewer: User, message: Message) -> Content:
    """The message's subject and body as ``viewer`` may see them: under a message
    recalled for them, the subject (a "Re:" of the recalled one) is withheld."""
    content = open_content(message)
    if is_withdrawn(viewer, message):
        return replace(content, subject=WITHDRAWN_SUBJECT)
    return content
