"""Which networks may relay: a typo never opens the gateway to everyone.

`hushpost gateway set`, the one place networks are set (the operators' admin at
/ops/ shows them read-only), refuses an address with host bits with the right
spelling suggested, and a network wider than /8 (IPv4) or /32 (IPv6) needs an
explicit yes.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from hushpost.gateway.config import configure
from hushpost.messaging.models import Message
from tests.gateway_mail import mail, submit

pytestmark = pytest.mark.django_db(transaction=True)


def gateway_set(org, *args) -> str:
    out = io.StringIO()
    call_command("gateway", "set", org.slug, *args, stdout=out)
    return " ".join(out.getvalue().split())


@pytest.mark.parametrize(("typed", "refusal"), [
    ("10.1.2.3/0", "'10.1.2.3/0' has host bits set (beyond its /0 prefix): did you mean 10.1.2.3/32 "
                   "for that one host?"),
    ("10.0.0.0/8, 10.1.2.3/8", "'10.1.2.3/8' has host bits set (beyond its /8 prefix): did you mean "
                               "10.0.0.0/8 for the whole network, or 10.1.2.3/32 for that one host?"),
    ("2001:db8::1/48", "did you mean 2001:db8::/48 for the whole network, or 2001:db8::1/128 for that one host?"),
    ("0.0.0.0/0", "0.0.0.0/0 spans 4,294,967,296 addresses: wider than /8"),
    ("10.0.0.0/7", "10.0.0.0/7 spans 33,554,432 addresses: wider than /8"),
    ("::/0", "::/0 spans 2^128 addresses: wider than /32, the widest IPv6 network"),
    ("2001:db8::/31", "2001:db8::/31 spans 2^97 addresses"),
])
def test_a_mistyped_or_wide_network_is_refused_and_nothing_changes(make_gateway, org, alice, typed, refusal):
    configure(org, networks="192.0.2.7")
    gateway = make_gateway()
    with pytest.raises(CommandError) as refused:
        gateway_set(org, "--networks", typed)
    assert refusal in str(refused.value)
    org.refresh_from_db()
    assert org.gateway_networks == "192.0.2.7/32"
    # The gateway still refuses this loopback client, as before the typo.
    code, reply = submit(gateway.port, mail())
    assert code == 550 and "(client 127.0.0.1)" in reply
    assert not Message.objects.exists()


def test_the_widest_networks_allowed_without_asking_are_slash_8_and_slash_32(org):
    shown = gateway_set(org, "--networks", "10.0.0.0/8 2001:db8::/32 192.0.2.7")
    assert "Client networks: 10.0.0.0/8, 2001:db8::/32, 192.0.2.7/32" in shown


def test_a_wide_network_is_accepted_when_the_operator_says_so(make_gateway, org, alice):
    shown = gateway_set(org, "--networks", "0.0.0.0/0", "--allow-wide-network")
    assert "Client networks: 0.0.0.0/0 (wide: allowed explicitly)" in shown
    gateway = make_gateway()
    assert submit(gateway.port, mail())[0] == 250
