"""An organisation's gateway settings: who may relay its mail, and which mail becomes secure.

Set by operators with ``hushpost gateway set``; read by :mod:`.access` and
:mod:`.options` for every message.
"""

from __future__ import annotations

import ipaddress
import re

from django.contrib.auth.hashers import make_password

from hushpost.accounts.passwords import password_problems
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Organization

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
USER_NAME = re.compile(r"^[A-Za-z0-9._@+-]{1,100}$")
MAX_KEYWORD = Organization._meta.get_field("gateway_keyword").max_length


# The widest network an operator may give without saying so explicitly.  IPv4: a /8
# (10.0.0.0/8, a whole private range, is the most any organisation's own relays
# span).  IPv6: a /32, the smallest block a registry allocates to a provider; an
# organisation's own site is a /48, so anything wider spans other people's hosts.
WIDEST_PREFIX = {4: 8, 6: 32}


def _items(value: str) -> list[str]:
    return [item for item in re.split(r"[,\s]+", value.strip()) if item]


def parse_networks(value: str) -> list[Network]:
    """Stored networks (written through :func:`clean_networks`) as network objects."""
    networks: list[Network] = []
    for item in _items(value):
        try:
            network = ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise Refused(
                f"{item!r} is not a network; write it as 10.0.0.0/8, 2001:db8::/32 or 192.0.2.7"
            ) from None
        if network not in networks:
            networks.append(network)
    return networks


def is_wide(network: Network) -> bool:
    return network.prefixlen < WIDEST_PREFIX[network.version]


def clean_networks(value: str, *, allow_wide: bool = False) -> str:
    """The one check of networks an operator sets (``hushpost gateway set``; the operators' admin only shows them).

    ``10.0.0.0/8, 192.0.2.7`` (commas or spaces); a bare address is one host.
    An address with host bits (10.1.2.3/8) is a typo, never read as the network
    around it, and a network wider than :data:`WIDEST_PREFIX` needs ``allow_wide``:
    a mistyped prefix must not open the gateway to everyone.  Returns the text to store.
    """
    networks = parse_networks(value)  # refuses what is no network at all
    for item in _items(value):
        try:
            ipaddress.ip_network(item)
        except ValueError:
            host = ipaddress.ip_interface(item)
            hint = f"{host.ip}/{host.max_prefixlen} for that one host"
            if not is_wide(host.network):
                hint = f"{host.network} for the whole network, or {hint}"
            raise Refused(
                f"{item!r} has host bits set (beyond its /{host.network.prefixlen} prefix): did you mean {hint}?"
            ) from None
    for network in networks:
        if is_wide(network) and not allow_wide:
            bits = network.max_prefixlen - network.prefixlen
            count = f"{network.num_addresses:,}" if bits <= 32 else f"2^{bits}"
            raise Refused(
                f"{network} spans {count} addresses: wider than "
                f"/{WIDEST_PREFIX[network.version]}, the widest "
                f"IPv{network.version} network an organisation's relays need; allow it explicitly "
                "(--allow-wide-network) only if every address in it is yours alone"
            )
    return ", ".join(str(n) for n in networks)


def networks_of(org: Organization) -> list[Network]:
    try:
        return parse_networks(org.gateway_networks)
    except Refused:  # written only through clean_networks; never widen on a bad one
        return []


def accepts_anything(org: Organization) -> bool:
    return bool(networks_of(org)) or bool(org.gateway_auth_user and org.gateway_auth_password)


def clean_keyword(value: str) -> str:
    keyword = " ".join(value.split())
    if not keyword:
        raise Refused("the keyword cannot be empty; use --route-all to make all mail secure")
    if len(keyword) > MAX_KEYWORD:
        raise Refused(f"the keyword is longer than {MAX_KEYWORD} characters")
    return keyword


def configure(
    org: Organization,
    *,
    networks: str | None = None,
    auth_user: str | None = None,
    password: str | None = None,
    remove_auth: bool = False,
    keyword: str | None = None,
    route_all: bool | None = None,
    allow_wide_network: bool = False,
) -> Organization:
    """Change the settings given (None leaves one as it is) and save them."""
    changed: list[str] = []
    if networks is not None:
        org.gateway_networks = clean_networks(networks, allow_wide=allow_wide_network)
        changed.append("gateway_networks")
    if remove_auth and auth_user is not None:
        raise Refused("give either a new gateway user or --no-auth, not both")
    if remove_auth:
        org.gateway_auth_user, org.gateway_auth_password = None, ""
        changed += ["gateway_auth_user", "gateway_auth_password"]
    if auth_user is not None:
        name = auth_user.strip()
        if not USER_NAME.match(name):
            raise Refused(
                "the gateway user name is 1 to 100 letters, digits and . _ @ + - (no spaces)"
            )
        if Organization.objects.filter(gateway_auth_user=name).exclude(pk=org.pk).exists():
            raise Refused(f"the gateway user name {name!r} is taken by another organisation")
        problems = password_problems(password or "", email=name, name=org.name)
        if problems:
            raise Refused(" ".join(problems))
        org.gateway_auth_user, org.gateway_auth_password = name, make_password(password)
        changed += ["gateway_auth_user", "gateway_auth_password"]
    if keyword is not None:
        org.gateway_keyword = clean_keyword(keyword)
        changed.append("gateway_keyword")
    if route_all is not None:
        org.gateway_route_all = route_all
        changed.append("gateway_route_all")
    if changed:
        org.save(update_fields=list(dict.fromkeys(changed)))
    return org


def describe(org: Organization) -> list[tuple[str, str]]:
    """The settings as an operator reads them; the password hash never appears."""
    networks = ", ".join(f"{n} (wide: allowed explicitly)" if is_wide(n) else str(n)
                         for n in networks_of(org)) or "none"
    user = org.gateway_auth_user if org.gateway_auth_user and org.gateway_auth_password else None
    if accepts_anything(org):
        accepts = "yes"
    else:
        accepts = "no: set --networks or --auth-user"
    return [
        ("Organisation", f"{org.name} ({org.slug})"),
        ("Domains", ", ".join(d.name for d in org.domains.order_by("name")) or "none"),
        ("Client networks", networks),
        ("SMTP AUTH user", f"{user} (password set)" if user else "none"),
        ("Keyword", f"{org.gateway_keyword} (any case)"),
        ("Route all mail", "yes: every message relayed is secure" if org.gateway_route_all else "no"),
        ("Accepts mail", accepts),
    ]
