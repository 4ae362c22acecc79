"""Passkeys in the browser, through Chromium's virtual authenticator (a platform passkey with
fingerprint-like user verification): add one on the account page, sign in with it alone or
after the password, remove it; the recipient's portal keeps its own."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import Page, expect

from hushpost.accounts import twofactor
from hushpost.accounts.models import User
from hushpost.lib import clock
from tests.browser.steps import check, enter_password, shot, sign_in_sender
from tests.personas import NEW_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def site(site):
    # WebAuthn refuses IP addresses as relying-party IDs: the live server and BASE_URL must say localhost.
    assert re.fullmatch(r"http://localhost:\d+", site), site
    return site


@pytest.fixture
def authenticator(context, page):
    """A passkey device built into this tab's "computer", unlocking with the user's fingerprint."""
    session = context.new_cdp_session(page)
    session.send("WebAuthn.enable")
    added = session.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True, "automaticPresenceSimulation": True}})
    return session, added["authenticatorId"]


def confirm_its_you(page: Page, password: str = PASSWORD, code: str | None = None) -> None:
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_label("Your password").fill(password)
    if code is not None:
        page.get_by_label("Code from your authenticator app, or a recovery code").fill(code)
    page.get_by_role("button", name="Confirm and continue").click()


def add_passkey(page: Page, password: str = PASSWORD, code: str | None = None) -> None:
    """On an account page: "Add a passkey", confirm it's you, and let the device make one."""
    page.get_by_role("button", name="Add a passkey").click()
    confirm_its_you(page, password, code)
    expect(page.get_by_role("heading", name="Add a passkey")).to_be_visible()
    page.get_by_role("button", name="Create passkey").click()
    expect(page.get_by_text("from now on you can sign in with it")).to_be_visible()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_text("You have signed out.")).to_be_visible()


def test_a_sender_signs_in_with_a_passkey_alone_then_after_the_password(site, page, alice, org, authenticator):
    found: dict[str, list[str]] = {}
    sign_in_sender(page, site, alice)
    page.get_by_role("link", name=alice.display_name).click()
    add_passkey(page)
    passkeys = page.get_by_role("table", name="Your passkeys")
    expect(passkeys.get_by_role("row")).to_have_count(2)
    expect(passkeys).to_contain_text("Passkey added")
    check(page, "account with a passkey", found)
    passkeys.scroll_into_view_if_needed()
    shot(page, "31-passkeys-account")
    sign_out(page)

    # No address, no password: the device says who.
    page.goto(f"{site}/login")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_visible()
    check(page, "sign-in with a passkey", found)
    shot(page, "32-passkey-sign-in")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page).to_have_url(f"{site}/app/")
    sign_out(page)

    # The password now leads to the second step, which the passkey answers.
    enter_password(page, site, alice)
    expect(page.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(page.get_by_label("Code")).to_have_count(0)  # no authenticator app on this account
    check(page, "second step with a passkey", found)
    shot(page, "passkey-second-step")
    page.get_by_role("button", name="Use your passkey").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    sign_out(page)

    # A sender's passkey opens nothing on a recipient portal.
    page.goto(f"{site}/r/{org.slug}/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("That passkey does not open an account on this page")
    expect(page).to_have_url(f"{site}/r/{org.slug}/login")
    assert found == {}, found


def test_a_removed_passkey_stops_working(site, page, alice, authenticator):
    sign_in_sender(page, site, alice)
    page.goto(f"{site}/app/account")
    add_passkey(page)
    name = page.get_by_role("table", name="Your passkeys").get_by_role("cell").first.inner_text()
    page.get_by_role("button", name=f"Remove {name}").click()
    confirm_its_you(page)
    expect(page.get_by_text("it no longer signs you in")).to_be_visible()
    expect(page.get_by_text("No passkeys yet.")).to_be_visible()
    sign_out(page)
    page.goto(f"{site}/login")
    page.get_by_role("button", name="Sign in with a passkey").click()  # the device still holds it
    expect(page.get_by_role("alert")).to_contain_text("That passkey does not open an account on this page")
    expect(page).to_have_url(f"{site}/login")


def test_an_authenticator_app_still_works_beside_a_passkey(site, page, alice, authenticator):
    secret = twofactor.new_secret()
    totp = pyotp.TOTP(secret)
    assert twofactor.enable(alice, secret, totp.generate_otp(totp.timecode(clock.now())))
    enter_password(page, site, alice)

    def next_code() -> str:
        clock.travel(timedelta(seconds=31))  # each code works once: the next one
        return totp.generate_otp(totp.timecode(clock.now()))

    page.get_by_label("Code").fill(next_code())
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.goto(f"{site}/app/account")
    add_passkey(page, code=next_code())
    sign_out(page)

    enter_password(page, site, alice)
    expect(page.get_by_role("button", name="Use your passkey")).to_be_visible()
    page.get_by_label("Code").fill(next_code())
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def test_a_recipient_signs_in_with_a_passkey_on_their_portal(site, page, org, authenticator):
    bob = User(role=User.Role.RECIPIENT, org=org, email="bob@client.example")
    bob.set_password(NEW_PASSWORD)
    bob.save()
    page.goto(f"{site}/r/{org.slug}/login")
    page.get_by_label("E-mail address").fill(bob.email)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    page.get_by_role("link", name=bob.email).click()
    add_passkey(page, password=NEW_PASSWORD)
    sign_out(page)

    page.goto(f"{site}/r/{org.slug}/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page).to_have_url(f"{site}/r/{org.slug}/")


def test_a_browser_without_passkeys_says_so(site, page, alice):
    page.add_init_script("delete window.PublicKeyCredential;")
    page.goto(f"{site}/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("This browser cannot use passkeys")


def test_a_fingerprint_that_does_not_match_signs_nobody_in(site, page, alice, authenticator):
    sign_in_sender(page, site, alice)
    page.goto(f"{site}/app/account")
    add_passkey(page)
    sign_out(page)
    session, device = authenticator
    session.send("WebAuthn.setUserVerified", {"authenticatorId": device, "isUserVerified": False})
    page.goto(f"{site}/login")
    page.get_by_role("button", name="Sign in with a passkey").click()
    expect(page.get_by_role("alert")).to_contain_text("No passkey was used")
    expect(page.get_by_role("button", name="Sign in with a passkey")).to_be_focused()
    expect(page).to_have_url(f"{site}/login")
