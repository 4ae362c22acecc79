"""The statement the access gate runs for every page of a message, written out.

Every message a signed-in user opens (the recipient's page, the sender's, a
reply, a print, a download) is loaded through :mod:`hushpost.messaging.access`.
Built by the ORM, its two look-ups (the message with its author, organisation
and the message it answers, then the user's own delivery of it) cost more of
the web server's CPU in compiling than PostgreSQL spent running them. Here
they are one SELECT: the user's delivery is joined to the message, at most one
row (one delivery per message and person). The columns are every column of
each model, as the ORM's ``select_related`` reads them, converted as the ORM
converts them, so the objects are the ones the ORM would have built. The same
SQL serves PostgreSQL and SQLite.

Only the loading is here: what the user may see is decided in ``access``.
"""

from __future__ import annotations

from django.db import connection, models

from hushpost.accounts.models import User
from hushpost.messaging.models import Delivery, Message
from hushpost.orgs.models import Organization


class _Columns:
    """One model's columns in a joined row: their SQL, and the instance built from them."""

    def __init__(self, model: type[models.Model], alias: str):
        self.model = model
        fields = model._meta.concrete_fields
        self.attnames = [f.attname for f in fields]
        self.pk = fields.index(model._meta.pk)
        self.cols = [f.get_col(alias) for f in fields]
        self.sql = ", ".join(f'{alias}."{f.column}"' for f in fields)
        self._converters: list[tuple[int, list, models.Expression]] | None = None

    def build(self, row: tuple, start: int) -> models.Model | None:
        """The instance whose columns begin at ``start``; None where an outer join found nothing."""
        values = list(row[start:start + len(self.cols)])
        if values[self.pk] is None:
            return None
        if self._converters is None:
            self._converters = [
                (i, connection.ops.get_db_converters(col) + col.get_db_converters(connection), col)
                for i, col in enumerate(self.cols)
            ]
        for i, converters, col in self._converters:
            for convert in converters:
                values[i] = convert(values[i], col, connection)
        return self.model.from_db(connection.alias, self.attnames, values)


_MESSAGE = _Columns(Message, "m")
_AUTHOR = _Columns(User, "a")
_ORG = _Columns(Organization, "o")
_ANSWERED = _Columns(Message, "p")
_DELIVERY = _Columns(Delivery, "d")
_PARTS = (_MESSAGE, _AUTHOR, _ORG, _ANSWERED, _DELIVERY)


_FROM = (
    ' FROM "messaging_message" m'
    ' INNER JOIN "accounts_user" a ON a."id" = m."author_id"'
    ' INNER JOIN "orgs_organization" o ON o."id" = m."org_id"'
    ' LEFT OUTER JOIN "messaging_message" p ON p."id" = m."in_reply_to_id"'
    ' LEFT OUTER JOIN "messaging_delivery" d ON d."message_id" = m."id" AND d."recipient_id" = %s'
    ' WHERE m."uid" = %s AND m."org_id" = %s'
)
# The columns are the models' own (every value is a parameter).
_MESSAGE_AND_DELIVERY = "SELECT " + ", ".join(part.sql for part in _PARTS) + _FROM  # noqa: S608

_author = Message._meta.get_field("author")
_org = Message._meta.get_field("org")
_in_reply_to = Message._meta.get_field("in_reply_to")
_delivered = Delivery._meta.get_field("message")
_recipient = Delivery._meta.get_field("recipient")


def message_and_delivery(user: User, uid: str, org_id: int) -> tuple[Message, Delivery | None] | None:
    """The organisation's message ``uid`` with its author, organisation and the message it
    answers, and ``user``'s delivery of it (None if they have none); None if there is no
    such message. The delivery knows its message and its recipient, ``user``."""
    with connection.cursor() as cursor:
        cursor.execute(_MESSAGE_AND_DELIVERY, [user.pk, uid, org_id])
        row = cursor.fetchone()
    if row is None:
        return None
    start, built = 0, []
    for part in _PARTS:
        built.append(part.build(row, start))
        start += len(part.cols)
    message, author, org, answered, delivery = built
    _author.set_cached_value(message, author)
    _org.set_cached_value(message, org)
    _in_reply_to.set_cached_value(message, answered)
    if delivery is not None:
        _delivered.set_cached_value(delivery, message)
        if type(user) is User:  # not a lazy stand-in for one
            _recipient.set_cached_value(delivery, user)
    return message, delivery
