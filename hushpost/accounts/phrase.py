"""A recipient's security phrase: words they chose, shown in every later e-mail to them.

A look-alike e-mail cannot show it, because only Hushpost and the recipient know it. It is
sealed under the master key, shown only to its owner once signed in (and in their e-mails),
and each change is an audit event that never holds the phrase.
"""

from __future__ import annotations

from django.db import transaction

from hushpost.accounts.models import User
from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.crypto import labels, master
from hushpost.lib.input import line

MAX_LENGTH = 80


def clean(value: str) -> str:
    """The phrase as it will be shown; InputError (which says why) if it cannot be used."""
    return " ".join(line(value, label="The security phrase", max_length=MAX_LENGTH).split())


def set_phrase(request, user: User, phrase: str) -> None:
    """Keep ``phrase``, cleaned by :func:`clean` (an empty one removes it), and record the change."""
    sealed = master.seal(phrase.encode(), labels.security_phrase_aad(user.pk)) if phrase else None
    with transaction.atomic():
        user.security_phrase_sealed = sealed
        user.save(update_fields=["security_phrase_sealed"])
        record(AuditEvent.Action.SECURITY_PHRASE, actor=user, request=request, obj=user,
               detail="Security phrase set" if phrase else "Security phrase removed")
