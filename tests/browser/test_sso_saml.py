"""SAML 2.0 single sign-on in the browser: Northwind's senders sign in at a real identity provider
(pysaml2's, in its own process), and every answer that must not open a session is refused."""

from __future__ import annotations

from datetime import timedelta
from importlib import import_module

import pytest
from django.conf import settings
from playwright.sync_api import Page, expect

from hushpost.accounts.models import User
from hushpost.accounts.reauth import CONFIRMED
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.sso.models import SingleSignOn
from hushpost.sso.signin import REASONS
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender

pytestmark = pytest.mark.browser


@pytest.fixture
def northwind_saml(org, saml_idp):
    """Northwind signs its senders in through the test identity provider, SAML only."""
    return SingleSignOn.objects.create(org=org, protocol="saml", saml_metadata_xml=saml_idp.metadata(),
                                       saml_metadata_url=saml_idp.metadata_url, required=True)


def through_identity_provider(page: Page, site: str, email: str, *, username: str = "", start: str = "/login"):
    """Address first, Next, then the identity provider's own login form."""
    page.goto(f"{site}{start}")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.get_by_label("Username").fill(username or email)
    page.get_by_label("Password").fill("at the identity provider only")
    page.get_by_role("button", name="Log in").click()


def refused_with(page: Page, reason: str, *, signed_in: int = 0) -> str:
    """The refusal page, and the audit trail's record of why."""
    expect(page.get_by_role("heading", name="We couldn't sign you in")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text(REASONS[reason])
    event = AuditEvent.objects.filter(action=AuditEvent.Action.SSO_REFUSED).latest("pk")
    assert event.detail.startswith(f"saml: {reason}"), event.detail
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SSO_SIGN_IN).count() == signed_in
    return event.detail


def session_of(page: Page) -> dict:
    """What the portal keeps in this browser's session."""
    key = next(c["value"] for c in page.context.cookies() if c["name"] == settings.SESSION_COOKIE_NAME)
    return dict(import_module(settings.SESSION_ENGINE).SessionStore(session_key=key).load())


def test_a_sender_signs_in_at_the_identity_provider(site, page, northwind_saml, alice):
    through_identity_provider(page, site, alice.email)
    expect(page).to_have_url(f"{site}/app/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    event = AuditEvent.objects.filter(action=AuditEvent.Action.SSO_SIGN_IN).get()
    assert event.actor_email == alice.email and event.detail == "saml"
    # The identity provider authenticated Alice just now: that counts as "confirm it's you".
    assert session_of(page)[CONFIRMED]["user"] == alice.pk


def test_an_identity_provider_session_a_quarter_of_an_hour_old_signs_in_but_does_not_confirm(
        site, page, northwind_saml, alice, saml_idp):
    saml_idp.next_response(authn_offset=-15 * 60)
    through_identity_provider(page, site, alice.email)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    assert CONFIRMED not in session_of(page)


def test_asked_to_sign_in_again_an_identity_provider_that_did_not_is_refused(
        site, page, northwind_saml, alice, saml_idp):
    """ForceAuthn asks for a new authentication; an AuthnInstant from before the request is not one."""
    saml_idp.next_response(authn_offset=-15 * 60)
    page.goto(f"{site}/sso/{northwind_saml.org.slug}/start?force=1")
    page.get_by_label("Username").fill(alice.email)
    page.get_by_role("button", name="Log in").click()
    assert "the provider did not sign the person in again" in refused_with(page, "expired")


def test_an_admin_without_a_password_confirms_at_the_identity_provider(
        site, page, northwind_saml, saml_idp):
    ada = personas.ada(northwind_saml.org)
    ada.set_unusable_password()
    ada.save()
    through_identity_provider(page, site, ada.email)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    clock.travel(timedelta(minutes=11))  # the sign-in is a while ago
    page.goto(f"{site}/app/admin/sso")
    page.get_by_label("Admin group").fill("secure-messaging-admins")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_role("link", name="Confirm with single sign-on").click()
    expect(page.get_by_text("The service asks you to sign in again.")).to_be_visible()
    saml_idp.next_response(authn_offset=11 * 60)  # the identity provider's now, on the portal's clock
    page.get_by_label("Username").fill(ada.email)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site}/app/admin/sso")
    page.get_by_label("Admin group").fill("secure-messaging-admins")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_label("Admin group")).to_have_value("secure-messaging-admins")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_have_count(0)
    northwind_saml.refresh_from_db()
    assert northwind_saml.admin_group == "secure-messaging-admins"


def test_the_identity_provider_is_told_the_address_and_asked_to_authenticate_again(
        site, page, northwind_saml, alice):
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("Username")).to_have_value(alice.email)
    expect(page.get_by_text("The service asks you to sign in again.")).to_have_count(0)
    # "Confirm it's you" starts the same way with force=1: ForceAuthn in the request.
    page.goto(f"{site}/sso/{northwind_saml.org.slug}/start?force=1")
    expect(page.get_by_text("The service asks you to sign in again.")).to_be_visible()


def test_a_deep_link_returns_to_its_page_after_sign_in(site, page, northwind_saml, alice):
    page.goto(f"{site}/app/sent")
    expect(page).to_have_url(f"{site}/login?next=%2Fapp%2Fsent")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Username").fill(alice.email)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site}/app/sent")


def test_a_sender_may_choose_single_sign_on_where_it_is_optional(site, page, northwind_saml, alice):
    northwind_saml.required = False
    northwind_saml.save()
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Continue with single sign-on").click()
    page.get_by_label("Username").fill(alice.email)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{site}/app/")


def test_the_first_sign_in_creates_the_account_and_the_admin_group_makes_an_admin(
        site, page, northwind_saml, saml_idp):
    northwind_saml.create_accounts = True
    northwind_saml.admin_group = "secure-messaging-admins"
    northwind_saml.save()
    saml_idp.next_response(groups=["staff", "secure-messaging-admins"])
    through_identity_provider(page, site, "nia@northwind.example")
    expect(page).to_have_url(f"{site}/app/")
    nia = User.objects.get(email="nia@northwind.example")
    assert nia.is_org_admin and nia.name == "Nia" and not nia.has_usable_password()
    page.goto(f"{site}/app/admin/")
    expect(page.get_by_role("heading", name="Senders")).to_be_visible()


def test_a_signed_response_covers_its_assertion(site, page, northwind_saml, alice, saml_idp):
    saml_idp.next_response(misbehave="response_signed")
    through_identity_provider(page, site, alice.email)
    expect(page).to_have_url(f"{site}/app/")


def test_entra_id_s_claim_names_give_the_address_and_the_groups(site, page, northwind_saml, alice, saml_idp):
    northwind_saml.admin_group = "5f1c2d3e-admins"
    northwind_saml.save()
    saml_idp.next_response(shape="entra", groups=["5f1c2d3e-admins"])
    through_identity_provider(page, site, alice.email)
    expect(page).to_have_url(f"{site}/app/")
    assert User.objects.get(pk=alice.pk).is_org_admin


@pytest.mark.parametrize("misbehave, reason", [
    ("audience", "audience"),
    ("issuer", "issuer"),
    ("expired", "expired"),
    ("confirmation_expired", "expired"),
    ("not_yet_valid", "not_yet_valid"),
    ("unsigned", "unsigned"),
    ("other_key", "signature"),
    ("sha1", "signature"),
    ("denied", "idp_error"),
])
def test_an_answer_that_cannot_be_trusted_is_refused(site, page, northwind_saml, alice, saml_idp,
                                                     misbehave, reason):
    saml_idp.next_response(misbehave=misbehave)
    through_identity_provider(page, site, alice.email)
    detail = refused_with(page, reason)
    if misbehave == "sha1":
        assert "weak algorithm http://www.w3.org/2000/09/xmldsig#rsa-sha1" in detail
    if misbehave == "other_key":
        problems: dict[str, list[str]] = {}
        check(page, "single sign-on refused", problems)
        assert problems == {}, problems
        shot(page, "30-single-sign-on-refused")


@pytest.mark.parametrize("who, reason", [
    ("someone@elsewhere.example", "domain"),
    ("nobody@northwind.example", "no_account"),
    ("alice@northwind.example", "disabled"),
])
def test_the_organisation_s_rules_apply_to_who_the_identity_provider_names(
        site, page, northwind_saml, alice, who, reason):
    if reason == "disabled":
        User.objects.filter(pk=alice.pk).update(is_active=False)
    through_identity_provider(page, site, alice.email, username=who)
    refused_with(page, reason)


def test_the_same_answer_posted_twice_is_refused(site, page, northwind_saml, alice, saml_idp):
    through_identity_provider(page, site, alice.email)
    expect(page).to_have_url(f"{site}/app/")
    page.goto(f"{saml_idp.url}/replay")  # a session waiting for no answer reads none
    refused_with(page, "state", signed_in=1)
    # Even a session waiting for an answer takes that one only once.
    page.goto(f"{site}/sso/{northwind_saml.org.slug}/start")
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    page.goto(f"{saml_idp.url}/replay")
    refused_with(page, "replay", signed_in=1)


def test_an_answer_nobody_asked_for_is_refused(site, page, northwind_saml, alice, saml_idp):
    saml_idp.next_response(email=alice.email)
    page.goto(f"{saml_idp.url}/unsolicited?sp={site}/sso/{northwind_saml.org.slug}/saml/metadata")
    refused_with(page, "state")


def test_an_answer_to_a_request_this_session_no_longer_waits_for_is_refused(site, page, northwind_saml, alice):
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Test identity provider")).to_be_visible()
    # The sender starts again in another tab: the session now waits for that request only.
    again = page.context.new_page()
    through_identity_provider(again, site, alice.email)
    expect(again).to_have_url(f"{site}/app/")
    page.get_by_label("Username").fill(alice.email)
    page.get_by_role("button", name="Log in").click()
    refused_with(page, "state", signed_in=1)


def test_the_admin_saves_saml_settings_from_the_metadata_url(site, page, org, saml_idp):
    admin = personas.ada(org)
    sign_in_sender(page, site, admin)
    page.goto(f"{site}/app/admin/sso")
    page.get_by_label("SAML 2.0").check()
    page.get_by_label("IdP metadata URL").fill(f"{saml_idp.url}/nothing-here")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("could not be fetched")
    page.get_by_label("IdP metadata URL").fill("")
    page.get_by_label("…or the IdP metadata XML").fill("<html><body>Sign in</body></html>")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text("That is not SAML metadata of an identity provider")
    assert not SingleSignOn.objects.filter(org=org, protocol="saml").exists()

    page.get_by_label("IdP metadata URL").fill(saml_idp.metadata_url)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_have_count(0)
    sso = SingleSignOn.objects.get(org=org)
    assert sso.protocol == "saml" and f'entityID="{saml_idp.metadata_url}"' in sso.saml_metadata_xml
    expect(page.get_by_text(f"{site}/sso/{org.slug}/saml/acs")).to_be_visible()
