"""Which networks may relay: a typo never opens the gateway to everyone.

`hushpost gateway set` and the operators' admin at /ops/ check networks the same
way: an address with host bits is refused with the right spelling suggested,
and a network wider than /8 (IPv4) or /32 (IPv6) needs an explicit yes.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.forms.models import model_to_dict
from django.test import Client

from hushpost.accounts.models import User
from hushpost.gateway.config import configure
from hushpost.messaging.models import Message
from tests.gateway_mail import mail, submit
from tests.test_access import BACKEND
from tests.test_gateway import make_gateway  # noqa: F401 - the real gateway, on loopback

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


def admin_form(org, **changes) -> dict:
    """The operators' change form for ``org`` as a browser posts it, with ``changes``."""
    data = {}
    for name, value in {**model_to_dict(org, exclude=["id"]), **changes}.items():
        if value is True:
            data[name] = "on"
        elif value is not None and value is not False:
            data[name] = str(value)
    domain = org.domains.get()
    return data | {
        "domains-TOTAL_FORMS": "1", "domains-INITIAL_FORMS": "1", "domains-MIN_NUM_FORMS": "0",
        "domains-MAX_NUM_FORMS": "1000", "domains-0-id": str(domain.pk), "domains-0-org": str(org.pk),
        "domains-0-name": domain.name, "_save": "Save",
    }


def test_the_operators_admin_checks_networks_as_the_cli_does(org):
    configure(org, networks="192.0.2.7")
    operator = User.objects.create_superuser("op@ops.example", "Operator-pass-phrase-71")
    client = Client()
    client.force_login(operator, backend=BACKEND)
    url = f"/ops/orgs/organization/{org.pk}/change/"
    page = client.get(url).content.decode()
    assert "Allow a wide gateway network" in page

    r = client.post(url, admin_form(org, gateway_networks="10.1.2.3/0"))
    assert r.status_code == 200
    assert "did you mean 10.1.2.3/32 for that one host?" in r.content.decode()
    r = client.post(url, admin_form(org, gateway_networks="0.0.0.0/0"))
    assert r.status_code == 200 and "wider than /8" in r.content.decode()
    org.refresh_from_db()
    assert org.gateway_networks == "192.0.2.7/32"

    r = client.post(url, admin_form(org, gateway_networks="10.0.0.0/8 192.0.2.7"))
    assert r.status_code == 302, r.context["adminform"].form.errors
    org.refresh_from_db()
    assert org.gateway_networks == "10.0.0.0/8, 192.0.2.7/32"  # stored as the CLI stores it
    r = client.post(url, admin_form(org, gateway_networks="0.0.0.0/0", allow_wide_network=True))
    assert r.status_code == 302
    org.refresh_from_db()
    assert org.gateway_networks == "0.0.0.0/0"
    # Another change leaves the networks alone: no need to tick the box again.
    r = client.post(url, admin_form(org, sender_name="Northwind Health Team"))
    assert r.status_code == 302
    org.refresh_from_db()
    assert (org.sender_name, org.gateway_networks) == ("Northwind Health Team", "0.0.0.0/0")
