"""Sessions whose rows are no use as cookies.

Django's database store keeps each session under its key, the very value the
browser's cookie carries, so a copy of the session table (a backup, a replica,
a read-only SQL injection) would be a list of live sign-ins.  This store keeps
only a keyed hash of the key: HMAC-SHA256 under a key derived from
``SECRET_KEY`` (which is not in the database), cut to the 40 characters of
Django's own ``session_key`` column.  160 bits cannot be turned back into a
cookie, and without the secret key nobody can even test a guess.

Rows made under a key in ``SECRET_KEY_FALLBACKS`` are found too and moved to
the current key on first use, so rotating the secret key signs nobody out.

Each row also names the account signed in with it (``accounts.Session.user``,
copied from the session's data whenever the row is written), so a request reads
its session, the account and the account's organisation in one statement. The
account found that way only saves a second look-up: :mod:`hushpost.accounts.backends`
still applies every rule to it (active, organisation active, the session's hash
of the password and of "sign out everywhere"), exactly as to one read on its own.
"""

from __future__ import annotations

from contextvars import ContextVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseStore
from django.db import connection
from django.utils import timezone

from hushpost.accounts.models import Session, User
from hushpost.crypto import macs
from hushpost.lib import rows
from hushpost.orgs.models import Organization

# When the session began and when it was last seen (epoch seconds): the limits
# on a session's length and idle time are measured from these.
STARTED, SEEN = "hushpost_started", "hushpost_seen"
SSO_SESSION = "hushpost_sso_session"  # hushpost.sso.signin marks the sessions it opens


def stored_key(session_key: str, secret: str | None = None) -> str:
    """What the database holds for a session: never the cookie's value itself."""
    return macs.stored_session_key(session_key, secret)


# The session whose account is being restored (set by
# hushpost.accounts.middleware.AuthenticationMiddleware around Django's auth.get_user).
restoring: ContextVar[SessionStore | None] = ContextVar("hushpost_restoring_session", default=None)


def _candidates(session_key: str) -> list[str]:
    return [stored_key(session_key)] + [stored_key(session_key, s) for s in settings.SECRET_KEY_FALLBACKS]


# The statement every request with a session cookie begins with, written out rather than
# compiled by the ORM each time: the session row, its account and the account's organisation.
_PARTS = (rows.Columns(Session, "s"), rows.Columns(User, "u"), rows.Columns(Organization, "o"))
_SESSION = (
    "SELECT " + ", ".join(part.sql for part in _PARTS) +  # noqa: S608 - the models' own columns
    ' FROM "accounts_session" s LEFT OUTER JOIN "accounts_user" u ON u."id" = s."user_id"'
    ' LEFT OUTER JOIN "orgs_organization" o ON o."id" = u."org_id"'
    ' WHERE s."expire_date" > %s AND s."session_key" IN '
)
_user = Session._meta.get_field("user")
_org = User._meta.get_field("org")


def _sessions(keys: list[str]) -> list[Session]:
    """The unexpired rows filed under ``keys``, each with its account and organisation."""
    with connection.cursor() as cursor:
        cursor.execute(_SESSION + "(" + ", ".join(["%s"] * len(keys)) + ")",
                       [connection.ops.adapt_datetimefield_value(timezone.now()), *keys])
        fetched = cursor.fetchall()
    found = []
    for row in fetched:
        session, user, org = rows.build(_PARTS, row)
        if user is not None and org is not None:
            _org.set_cached_value(user, org)
        _user.set_cached_value(session, user)
        found.append(session)
    return found


class SessionStore(DatabaseStore):
    # The account named by the row this store was loaded from (with its organisation), if any.
    account = None

    @classmethod
    def get_model_class(cls):
        return Session

    def _get_session_from_db(self):
        if not self.session_key:
            self._session_key = None
            return None
        candidates = _candidates(self.session_key)
        found = {s.session_key: s for s in _sessions(candidates)}
        for position, key in enumerate(candidates):
            row = found.get(key)
            if row is None:
                continue
            if position:  # made under an older secret key: file it under the current one
                self.model.objects.filter(session_key=key).update(session_key=candidates[0])
                row.session_key = candidates[0]
            self.account = row.user
            return row
        self._session_key = None
        return None

    def exists(self, session_key):
        return self.model.objects.filter(session_key__in=_candidates(session_key)).exists()

    def create_model_instance(self, data):
        user_id = data.get(SESSION_KEY)
        return self.model(
            session_key=stored_key(self._get_or_create_session_key()),
            session_data=self.encode(data),
            expire_date=self.get_expiry_date(),
            user_id=int(user_id) if user_id is not None and str(user_id).isdecimal() else None,
        )

    def delete(self, session_key=None):
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self.model.objects.filter(session_key__in=_candidates(session_key)).delete()

    # Hushpost serves WSGI only; the async variants go through the same code.
    async def _aget_session_from_db(self):
        return await sync_to_async(self._get_session_from_db)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def acreate_model_instance(self, data):
        return await sync_to_async(self.create_model_instance)(data)

    async def adelete(self, session_key=None):
        return await sync_to_async(self.delete)(session_key)
