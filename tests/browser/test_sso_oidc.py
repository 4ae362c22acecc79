"""A sender of an organisation using OpenID Connect signs in at its identity provider.

The provider is a real one in its own process (tests/idp/oidc_provider.py) with a login form
Chromium fills in; it is made to misbehave for one answer at a time, and every refusal shows the
refusal page and is in the audit trail with its reason.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import Page, expect

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.sso.signin import REASONS
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender
from tests.idp.oidc_provider import CLIENT_ID, CLIENT_SECRET, IDP_PASSWORD

pytestmark = pytest.mark.browser
IDP = "Test Identity Provider"
REFUSED = "We couldn't sign you in"


@pytest.fixture
def sso(org, idp):
    return personas.oidc_sign_on(org, idp.issuer)


def continue_with_sso(page: Page, site: str, email: str) -> None:
    """The address first, Next, then Continue with single sign-on."""
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Continue with single sign-on").click()


def to_identity_provider(page: Page, site: str, email: str) -> None:
    """On to the provider's login form."""
    continue_with_sso(page, site, email)
    expect(page.get_by_role("heading", name=IDP)).to_be_visible()


def provider_login(page: Page, username: str | None = None) -> None:
    if username is not None:
        page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(IDP_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def refusals() -> list[str]:
    return list(AuditEvent.objects.filter(action=AuditEvent.Action.SSO_REFUSED).values_list("detail", flat=True))


def test_a_sender_signs_in_at_the_identity_provider(site, page, sso, alice, idp):
    problems: dict[str, list[str]] = {}
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Northwind Health signs you in with its own identity provider.")).to_be_visible()
    check(page, "sign-in with single sign-on", problems)
    shot(page, "27-sign-in-with-single-sign-on")
    page.get_by_role("button", name="Continue with single sign-on").click()
    expect(page.get_by_role("heading", name=IDP)).to_be_visible()
    expect(page.get_by_label("Username")).to_have_value(alice.email)  # the login hint
    provider_login(page)
    expect(page).to_have_url(f"{site}/app/")
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    assert idp.seen()["authorize"]["code_challenge_method"] == "S256"
    assert CLIENT_SECRET not in str(idp.seen()["authorize"])
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SSO_SIGN_IN, actor=alice).count() == 1
    assert problems == {}, problems


def test_a_deep_link_comes_back_to_its_page(site, page, sso, alice):
    page.goto(f"{site}/app/sent")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Continue with single sign-on").click()
    provider_login(page)
    expect(page).to_have_url(f"{site}/app/sent")


# What the provider does wrong, who signs in there, and the reason in the audit trail.
REFUSALS = {
    "issuer": ({"token": {"iss": "http://127.0.0.1:1"}}, None, "issuer"),
    "audience": ({"token": {"aud": "another-service"}}, None, "audience"),
    "several audiences": ({"token": {"aud": [CLIENT_ID, "another-service"]}}, None, "audience"),
    "expired": ({"token": {"exp": -3600, "iat": -7200}}, None, "expired"),
    "not yet valid": ({"token": {"nbf": 3600}}, None, "not_yet_valid"),
    "issued in the future": ({"token": {"iat": 3600}}, None, "not_yet_valid"),
    "another key": ({"token": {"key": "other"}}, None, "signature"),
    "an unpublished key": ({"token": {"key": "unknown"}}, None, "signature"),
    "alg none": ({"token": {"alg": "none"}}, None, "unsigned"),
    "HMAC with the client secret": ({"token": {"alg": "HS256"}}, None, "signature"),
    "address not verified": ({"token": {"claims": {"email_verified": False}}}, None, "no_email"),
    "no address": ({"token": {"claims": {"email": None}}}, None, "no_email"),
    "address outside the domains": ({}, "mallory@elsewhere.example", "domain"),
    "no account, none created": ({}, "newcomer@northwind.example", "no_account"),
    "provider error": ({"error": "access_denied"}, None, "idp_error"),
}


@pytest.mark.parametrize("wishes, username, reason", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_wrong_answer_is_refused_and_recorded(site, page, sso, alice, idp, wishes, username, reason):
    to_identity_provider(page, site, alice.email)
    idp.misbehave(**wishes)
    provider_login(page, username)
    expect(page.get_by_role("heading", name=REFUSED)).to_be_visible()
    if reason == "issuer":  # the refusal page, once
        problems: dict[str, list[str]] = {}
        check(page, "single sign-on refused", problems)
        assert problems == {}, problems
    expect(page.get_by_role("alert")).to_have_text(REASONS[reason])
    assert [detail.split(" (")[0] for detail in refusals()] == [f"oidc: {reason}"]
    page.goto(f"{site}/app/")
    expect(page.get_by_label("E-mail address")).to_be_visible()  # still signed out


def test_a_disabled_sender_is_refused(site, page, sso, alice):
    User.objects.filter(pk=alice.pk).update(is_active=False)
    to_identity_provider(page, site, alice.email)
    provider_login(page)
    expect(page.get_by_role("alert")).to_have_text(REASONS["disabled"])
    assert refusals() == ["oidc: disabled"]


def test_an_answer_opened_twice_is_refused_the_second_time(site, page, sso, alice):
    callbacks = []
    page.on("request", lambda request: "/oidc/callback" in request.url and callbacks.append(request.url))
    to_identity_provider(page, site, alice.email)
    provider_login(page)
    expect(page).to_have_url(f"{site}/app/")
    page.goto(callbacks[0])
    expect(page.get_by_role("alert")).to_have_text(REASONS["state"])
    assert refusals() == ["oidc: state (unknown or used state)"]


def test_an_id_token_presented_again_is_refused(site, page, sso, alice, idp):
    to_identity_provider(page, site, alice.email)
    provider_login(page)
    expect(page).to_have_url(f"{site}/app/")
    page.get_by_role("button", name="Sign out").click()
    idp.misbehave(token={"replay": True})  # the token of the first sign-in, with its nonce
    continue_with_sso(page, site, alice.email)  # the provider remembers Alice: no form this time
    expect(page.get_by_role("alert")).to_have_text(REASONS["replay"])
    assert refusals() == ["oidc: replay (nonce not of this sign-in)"]


def test_a_new_sender_gets_an_account_where_the_organisation_allows_it(site, page, org, idp):
    personas.oidc_sign_on(org, idp.issuer, create_accounts=True)
    to_identity_provider(page, site, "newcomer@northwind.example")
    provider_login(page)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    newcomer = User.objects.get(email="newcomer@northwind.example")
    assert newcomer.is_sender and not newcomer.has_usable_password() and not newcomer.is_org_admin
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SSO_ACCOUNT_CREATED, actor=newcomer).exists()


def test_the_admin_group_opens_the_administration(site, page, org, alice, idp):
    personas.oidc_sign_on(org, idp.issuer, admin_group="secure-messaging-admins")
    to_identity_provider(page, site, alice.email)
    idp.misbehave(token={"claims": {"groups": ["staff", "secure-messaging-admins"]}})
    provider_login(page)
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Senders")).to_be_visible()
    alice.refresh_from_db()
    assert alice.is_org_admin


def test_a_password_is_refused_once_single_sign_on_is_required(site, page, sso, alice):
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    sso.required = True  # the admin turns it on while Alice is at the password step
    sso.save()
    page.get_by_label("Password").fill(personas.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Northwind Health signs its staff in through its own identity provider, so passwords are not used "
        "here. Continue with single sign-on.")
    page.get_by_role("button", name="Continue with single sign-on").click()
    provider_login(page)
    expect(page).to_have_url(f"{site}/app/")


def test_the_admin_sets_up_openid_connect(site, page, org, idp):
    ada = personas.ada(org)
    sign_in_sender(page, site, ada)
    page.goto(f"{site}/app/admin/sso")
    page.get_by_role("radio", name="OpenID Connect").check()
    page.get_by_label("Issuer or discovery URL").fill("http://127.0.0.1:9")
    page.get_by_label("Client ID").fill(CLIENT_ID)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("alert")).to_contain_text(
        "Hushpost could not reach http://127.0.0.1:9/.well-known/openid-configuration")
    page.get_by_label("Issuer or discovery URL").fill(idp.issuer)
    page.get_by_label("Client secret").fill(CLIENT_SECRET)
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("A client secret is saved.")).to_be_visible()
    expect(page.get_by_label("Issuer or discovery URL")).to_have_value(idp.issuer)
    shot(page, "28-admin-single-sign-on")
    page.get_by_role("button", name="Sign out").click()
    alice = personas.sender(org)
    to_identity_provider(page, site, alice.email)
    provider_login(page)
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_an_admin_without_a_password_confirms_at_the_identity_provider(site, page, sso, idp):
    ada = personas.ada(sso.org)
    ada.set_unusable_password()
    ada.save()
    problems: dict[str, list[str]] = {}
    to_identity_provider(page, site, ada.email)
    provider_login(page)
    page.get_by_role("link", name="Administration").click()
    page.goto(f"{site}/app/admin/sso")
    clock.travel(timedelta(minutes=11))  # the sign-in is a while ago
    idp.misbehave(clock=11 * 60)
    page.get_by_label("Admin group").fill("secure-messaging-admins")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(page.get_by_label("Your password")).to_have_count(0)
    check(page, "confirm it's you with single sign-on", problems)
    page.get_by_role("link", name="Confirm with single sign-on").click()
    # The provider asks again although it remembers Ada (prompt=login, max_age=0).
    expect(page.get_by_role("heading", name=IDP)).to_be_visible()
    assert idp.seen()["authorize"]["prompt"] == "login" and idp.seen()["authorize"]["max_age"] == "0"
    provider_login(page, ada.email)
    expect(page).to_have_url(f"{site}/app/admin/sso")
    page.get_by_label("Admin group").fill("secure-messaging-admins")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_label("Admin group")).to_have_value("secure-messaging-admins")
    expect(page.get_by_role("heading", name="Confirm it's you")).to_have_count(0)
    sso.refresh_from_db()
    assert sso.admin_group == "secure-messaging-admins"
    assert problems == {}, problems
