"""Which time zone a person sees times in.

Times are stored in UTC and shown in the viewer's zone: the one their account
chose, else the zone their browser reported (``static/hushpost/timezone.js``
puts it in the ``hushpost_tz`` cookie), else their organisation's default
(``Organization.time_zone``, first ``HUSHPOST_DEFAULT_TIME_ZONE``), else that
deployment default. E-mails use the account's zone, else the organisation's:
a mail client has no browser to ask. Every name comes from ``zoneinfo``'s list;
anything else (a cookie is typed by whoever holds the browser) is ignored.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from functools import lru_cache

from django.conf import settings
from django.utils import timezone

COOKIE = "hushpost_tz"
INVALID = "Choose a time zone from the list."
# Listed by zoneinfo but no place: the server's own zone, and tzdata's placeholder.
_NOT_PLACES = {"localtime", "Factory", "posixrules"}
_REGIONS = ("Africa", "America", "Antarctica", "Arctic", "Asia", "Atlantic", "Australia", "Europe", "Indian",
            "Pacific")


@lru_cache(maxsize=1)
def names() -> frozenset[str]:
    """Every zone a person may choose or a browser may report (aliases such as Asia/Calcutta included)."""
    return frozenset(zoneinfo.available_timezones() - _NOT_PLACES)


def valid(name: object) -> str | None:
    """``name`` if it is a zone zoneinfo knows, else None; never a path or a stray value."""
    if not (isinstance(name, str) and 0 < len(name) <= 64):
        return None
    # UTC, the usual default, without reading zoneinfo's whole list (a tenth of a second) at start-up.
    return name if name == "UTC" or name in names() else None


@lru_cache(maxsize=128)
def zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def default() -> str:
    return settings.DEFAULT_TIME_ZONE


def for_account(user, org) -> str:
    """The zone for ``user`` (may be None) of ``org`` (may be None) where no browser says: e-mails."""
    return (valid(getattr(user, "time_zone", "")) or valid(getattr(org, "time_zone", ""))
            or default())


@lru_cache(maxsize=1)
def choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """The select's options: UTC, then each region's places, then the other names zoneinfo knows."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name in sorted(names()):
        region, _, place = name.partition("/")
        if region in _REGIONS and place:
            groups[region].append((name, place.replace("_", " ")))
        elif name != "UTC":
            groups["Other"].append((name, name.replace("_", " ")))
    return [("", [("UTC", "UTC")])] + [(region, groups[region]) for region in (*_REGIONS, "Other") if groups[region]]


def for_request(request) -> str:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        chosen = valid(user.time_zone)
        if chosen:
            return chosen
    browser = valid(request.COOKIES.get(COOKIE))
    if browser:
        return browser
    if user is not None and user.is_authenticated and user.org_id:
        return valid(user.org.time_zone) or default()  # loaded with the user (select_related): no query
    return default()


class TimeZoneMiddleware:
    """Shows every time on the page in the viewer's zone (``|date`` and ``localtime`` follow it).

    After the session and account middlewares, which have loaded the user and organisation already.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        timezone.activate(zone(for_request(request)))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
