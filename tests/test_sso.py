"""Single sign-on's rules, the same whichever protocol carried the sign-on: who may come in, what
is created, what the admin group does, and how the address-first sign-in routes an organisation's
senders to its identity provider. The protocols themselves, against real identity providers, are
tests/test_sso_oidc.py, tests/test_sso_saml.py and their browser tests."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import RequestFactory

from hushpost.accounts.actions import create_sender, set_active
from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from hushpost.sso.models import SingleSignOn
from hushpost.sso.signin import Identity, SSORefused, complete, first_use
from tests import personas

pytestmark = pytest.mark.django_db
INVITED = "You're invited to Northwind Health's secure messaging portal"


@pytest.fixture
def sso(org):
    return SingleSignOn.objects.create(org=org, protocol="oidc", oidc_issuer="https://idp.northwind.example",
                                       oidc_client_id="hushpost")


def _request():
    return RequestFactory().get("/sso/northwind-health/oidc/callback", REMOTE_ADDR="192.0.2.7")


def _refusal(sso, identity) -> str:
    with pytest.raises(SSORefused) as refused:
        complete(_request(), sso, identity, protocol="oidc")
    return refused.value.reason


def test_a_known_sender_at_the_organisations_domain_comes_in(sso, alice):
    assert complete(_request(), sso, Identity(email="Alice@Northwind.example"), protocol="oidc") == alice


def test_an_address_outside_the_organisations_domains_is_refused(sso, alice, make_org):
    make_org("Harbour Legal", "harbour.example")
    assert _refusal(sso, Identity(email="hal@harbour.example")) == "domain"
    assert _refusal(sso, Identity(email="")) == "no_email"


def test_a_disabled_sender_is_refused(sso, alice):
    set_active(alice, False)
    assert _refusal(sso, Identity(email=alice.email)) == "disabled"


def test_without_account_creation_an_unknown_address_is_refused(sso):
    assert _refusal(sso, Identity(email="newcomer@northwind.example")) == "no_account"
    assert not User.objects.filter(email="newcomer@northwind.example").exists()


def test_account_creation_makes_a_sender_with_no_password_and_records_it(sso):
    sso.create_accounts = True
    sso.save()
    user = complete(_request(), sso, Identity(email="newcomer@northwind.example", name="Nia Newcomer"),
                    protocol="oidc")
    assert user.is_sender and user.org == sso.org and user.name == "Nia Newcomer"
    assert not user.has_usable_password() and not user.is_org_admin
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SSO_ACCOUNT_CREATED, actor=user).count() == 1
    # No invitation: they are already in.
    assert not Notification.objects.filter(user=user).exists()
    # The second sign-in finds the same account.
    assert complete(_request(), sso, Identity(email="newcomer@northwind.example"), protocol="oidc") == user


def test_the_admin_group_gives_and_takes_the_admin_role(sso, alice):
    sso.admin_group = "securemessaging-admins"
    sso.save()
    complete(_request(), sso, Identity(email=alice.email, groups=["staff", "securemessaging-admins"]),
             protocol="oidc")
    alice.refresh_from_db()
    assert alice.is_org_admin
    complete(_request(), sso, Identity(email=alice.email, groups=["staff"]), protocol="oidc")
    alice.refresh_from_db()
    assert not alice.is_org_admin
    details = list(AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, actor=alice)
                   .values_list("detail", flat=True))
    assert any("made an admin" in d for d in details) and any("no longer an admin" in d for d in details)


def test_without_an_admin_group_roles_stay_as_the_admin_set_them(sso, org):
    ada = personas.ada(org)
    complete(_request(), sso, Identity(email=ada.email, groups=[]), protocol="oidc")
    ada.refresh_from_db()
    assert ada.is_org_admin


def test_an_assertion_works_once():
    later = clock.now() + timedelta(minutes=5)
    assert first_use("https://idp.example", "id-1", later)
    assert not first_use("https://idp.example", "id-1", later)
    assert first_use("https://other-idp.example", "id-1", later)


# --- the address-first sign-in ---------------------------------------------------------------

def _moves_on_to(response) -> str:
    """Where a "Continue with single sign-on" page sends the browser at once (a refresh, not a
    redirect: the sign-in form's form-action could not allow every identity provider)."""
    assert response.status_code == 200, response.content[:300]
    found = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]+)">', response.content.decode())
    assert found, response.content.decode()[:500]
    return html.unescape(found.group(1))


def test_next_takes_a_sender_of_an_sso_required_organisation_to_its_identity_provider(client, sso, alice):
    sso.required = True
    sso.save()
    response = client.post("/login?next=/app/sent", {"email": alice.email})
    url = _moves_on_to(response)
    assert url == "/sso/northwind-health/start?next=%2Fapp%2Fsent"
    assert alice.email not in url  # the address waits in the session, not in a URL servers log
    assert "Continue with single sign-on" in response.content.decode()


def test_arriving_from_another_region_with_the_address_goes_on_to_the_identity_provider(client, sso, alice):
    sso.required = True
    sso.save()
    response = client.get("/login", {"email": alice.email})
    assert _moves_on_to(response).startswith("/sso/northwind-health/start")


def test_a_password_is_refused_when_sso_is_required_and_never_checked(client, sso, alice):
    sso.required = True
    sso.save()
    response = client.post("/login", {"email": alice.email, "password": personas.PASSWORD})
    page = response.content.decode()
    assert response.status_code == 403
    assert "signs its staff in through its own identity provider" in page
    assert "Continue with single sign-on" in page and 'name="password"' not in page
    assert "_auth_user_id" not in client.session


def test_with_sso_optional_the_password_step_offers_both(client, sso, alice):
    page = client.post("/login", {"email": alice.email}).content.decode()
    assert "Continue with single sign-on" in page and 'name="password"' in page
    response = client.post("/login", {"email": alice.email, "sso": "1"})
    assert _moves_on_to(response).startswith("/sso/northwind-health/start")
    # And the password still works.
    assert personas.password_step(client, alice.email).status_code == 302


def test_organisations_without_sso_see_the_password_step_only(client, alice):
    page = client.post("/login", {"email": alice.email}).content.decode()
    assert "single sign-on" not in page and 'name="password"' in page


def test_sso_off_leaves_the_password_in_use(client, sso, alice):
    sso.protocol, sso.required = "", False
    sso.save()
    assert personas.password_step(client, alice.email).status_code == 302


def test_forgot_password_says_there_is_none_when_sso_is_required(client, sso, alice):
    sso.required = True
    sso.save()
    response = client.post("/forgot", {"email": alice.email})
    assert response.status_code == 400
    assert "holds no password to reset" in response.content.decode()
    assert not Notification.objects.filter(user=alice, kind=Notification.Kind.RESET).exists()


def test_the_invitation_of_an_sso_required_organisation_has_no_password_link(sso, smtp, deliver):
    sso.required = True
    sso.save()
    create_sender(email="nia@northwind.example", name="Nia", org=sso.org)
    deliver()
    mail = smtp.wait_for("nia@northwind.example", INVITED)[-1]
    text = mail.text
    assert "single sign-on" in text and "/login" in text
    assert "/welcome" not in text and "choose your own password" not in text
    assert "/welcome" not in mail.html and "Go to sign-in" in mail.html


def test_the_invitation_of_an_sso_optional_organisation_offers_both(sso, smtp, deliver):
    create_sender(email="nia@northwind.example", name="Nia", org=sso.org)
    deliver()
    text = smtp.wait_for("nia@northwind.example", INVITED)[-1].text
    assert "single sign-on" in text and "/welcome" in text


# --- the admin's page ----------------------------------------------------------------------------

def test_sso_required_cannot_be_saved_without_an_identity_provider(org):
    ada = personas.ada(org)
    client = personas.signed_in_sender(ada)
    response = client.post("/app/admin/sso", {"protocol": "", "required": "on", "group_claim": "groups"})
    assert response.status_code == 400
    assert "Choose an identity provider first" in response.content.decode()
    assert not SingleSignOn.objects.filter(org=org, required=True).exists()


def test_the_sso_page_is_for_the_organisations_admins_only(org, alice):
    client = personas.signed_in_sender(alice)
    assert client.get("/app/admin/sso").status_code == 404


def test_the_sso_page_shows_what_to_register_at_the_identity_provider(org):
    client = personas.signed_in_sender(personas.ada(org))
    page = client.get("/app/admin/sso").content.decode()
    assert "/sso/northwind-health/oidc/callback" in page and "/sso/northwind-health/saml/acs" in page


def test_an_operator_can_turn_a_broken_sso_off_from_the_shell(client, sso, alice):
    sso.required = True
    sso.save()
    out = StringIO()
    call_command("sso", "off", sso.org.slug, stdout=out)
    assert "Single sign-on of northwind-health is off." in out.getvalue()
    assert "Client secret:" in out.getvalue()
    assert personas.password_step(client, alice.email).status_code == 302
    assert AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, detail="turned single sign-on off").exists()


def test_the_senders_list_shows_who_signs_in_with_sso(sso, org):
    ada = personas.ada(org)
    create_sender(email="nia@northwind.example", name="Nia", org=org)
    page = personas.signed_in_sender(ada).get("/app/admin/").content.decode()
    row = page[page.index("nia@northwind.example"):]
    row = row[:row.index("</tr>")]
    assert "Single sign-on" in row and "Invited" not in row and "Resend invitation" not in row
