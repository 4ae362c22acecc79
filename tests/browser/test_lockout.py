"""A full lockout run in the browser: the attacker's view, the owner's e-mail, the admin's unlock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from tests import personas
from tests.browser.steps import shot, sign_in_sender
from tests.personas import PASSWORD

pytestmark = pytest.mark.browser


def test_guessing_locks_the_account_and_an_admin_unlocks_it(site, page, bob_context, smtp, deliver, org, alice):
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    for guess in range(5):
        page.get_by_label("Password").fill(f"Guess-number-{guess}-wrong")
        page.get_by_role("button", name="Sign in", exact=True).click()
        expect(page.get_by_role("alert")).to_be_visible()
        clock.travel(timedelta(seconds=61))  # the growing waits, passed without sleeping
    expect(page.get_by_role("alert")).to_contain_text("signing in with this address is paused for 15 minutes")
    shot(page, "19-sign-in-locked")
    # The right password does not get in while it is locked.
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("paused")
    deliver()
    assert smtp.wait_for(alice.email, "Secure Messaging Account Locked")

    # Alice asks her admin, who unlocks her from the senders list.
    admin_page = bob_context.new_page()
    ada = personas.ada(org)
    sign_in_sender(admin_page, site, ada)
    admin_page.get_by_role("link", name="Administration").click()
    row = admin_page.locator("tr", has=admin_page.get_by_text(alice.email))
    expect(row.get_by_text("Locked")).to_be_visible()
    row.get_by_role("button", name="Unlock").click()
    expect(admin_page.get_by_text(f"{alice.email} can sign in again.")).to_be_visible()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page).to_have_url(f"{site}/app/")
