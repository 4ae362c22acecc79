"""The gateway's one gate: which mail server may relay mail from which sender.

A client may relay for an organisation if its address is in one of the
organisation's networks, or if it signed in (SMTP AUTH over TLS) as the
organisation's gateway user.  The envelope sender and the From address must
each be an active sender account of such an organisation.  Every refusal
reads the same whether the organisation exists or not, so a stranger learns
nothing about who is hosted here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.contrib.auth.hashers import check_password, make_password
from django.db import connection

from hushpost.accounts import throttle
from hushpost.accounts.models import User
from hushpost.gateway.config import networks_of
from hushpost.gateway.replies import SmtpRefused
from hushpost.lib import rows
from hushpost.lib.client import normalise_ip
from hushpost.lib.input import usable
from hushpost.orgs.actions import org_for_address
from hushpost.orgs.models import Organization

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Client:
    """The mail server on the other end of an SMTP session."""

    ip: Address | None
    auth_org_id: int | None = None  # the organisation whose gateway user it signed in as

    @classmethod
    def of(cls, peer, auth_org_id: int | None = None) -> Client:
        host = peer[0] if isinstance(peer, tuple | list) and peer else None
        try:
            ip = ipaddress.ip_address(str(host).split("%", 1)[0]) if host else None
        except ValueError:
            ip = None
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket
            ip = ip.ipv4_mapped
        return cls(ip=ip, auth_org_id=auth_org_id)

    def may_relay_for(self, org: Organization) -> bool:
        if self.auth_org_id is not None and self.auth_org_id == org.pk:
            return True
        return self.ip is not None and any(self.ip in network for network in networks_of(org))


def authenticate(username: str, password: str, ip: str = "unknown") -> int | None:
    """The organisation whose gateway user this is, or None.

    Throttled like every sign-in (per user name and per client address): a
    guessing relay is slowed, then locked out, before any password is hashed.
    """

    def verify() -> int | None:
        org = Organization.objects.filter(gateway_auth_user=username, is_active=True).first() if usable(username) else None
        if org is None or not org.gateway_auth_password:
            make_password(password)  # the same work as a real check: the timing tells nothing
            return None
        return org.pk if check_password(password, org.gateway_auth_password) else None

    return throttle.check_secret(normalise_ip(ip), throttle.account_key("gateway", username), verify).value


# Every relayed e-mail's one look-up, written out rather than compiled by the ORM each time
# (most of its cost): the active sender account an address names through the domains its
# organisation holds, with the organisation.
_PARTS = (rows.Columns(User, "u"), rows.Columns(Organization, "o"))
_SENDER = (
    "SELECT " + ", ".join(part.sql for part in _PARTS) +  # noqa: S608 - the models' own columns
    ' FROM "accounts_user" u INNER JOIN "orgs_organization" o ON o."id" = u."org_id"'
    ' INNER JOIN "orgs_domain" d ON d."org_id" = o."id"'
    ' WHERE u."email" = %s AND u."role" = %s AND u."is_active" AND d."name" = %s'
    ' ORDER BY u."id" LIMIT 1'
)
_org = User._meta.get_field("org")


def _active_sender(address: str, domain: str) -> User | None:
    with connection.cursor() as cursor:
        cursor.execute(_SENDER, [address, User.Role.SENDER.value, domain])
        row = cursor.fetchone()
    if row is None:
        return None
    user, org = rows.build(_PARTS, row)
    _org.set_cached_value(user, org)
    return user


def sender_of(address: str, client: Client) -> User:
    """The active sender account ``address`` names, if ``client`` may relay its mail.

    One query finds the sender through the domain of the address; only a
    refusal looks the domain up again, to say which refusal it is.
    """
    if not usable(address):  # a NUL would fail the query, not name a sender: refuse it for good
        raise SmtpRefused(553, "5.1.7", "the sender address contains characters no address has")
    address = address.strip().lower()
    domain = address.rsplit("@", 1)[-1] if "@" in address else ""
    sender = _active_sender(address, domain) if domain else None
    org = sender.org if sender is not None else (org_for_address(address) if domain else None)
    if org is None or not org.is_active or not client.may_relay_for(org):
        raise SmtpRefused(550, "5.7.1", f"{address} is not a Hushpost sender of an organisation "
                                    f"this server relays for (client {client.ip})")
    if sender is None:
        raise SmtpRefused(550, "5.7.1", f"{address} is not an active Hushpost sender of {org.slug}")
    return sender
