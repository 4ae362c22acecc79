"""An admin e-mails a sender a reset link, and confirms it's them when the sign-in is old.

The admin never sees or chooses the sender's password: the sender opens the
e-mailed link in their own browser and chooses it there.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender
from tests.personas import PASSWORD

pytestmark = pytest.mark.browser
CHOSEN = "Copper-kettle-orchard-58"


def test_admin_sends_a_reset_link_after_confirming_its_them(site, page, bob_context, smtp, deliver, org,
                                                            alice):
    ada = personas.ada(org)
    problems: dict[str, list[str]] = {}
    sign_in_sender(page, site, ada)
    page.get_by_role("link", name="Administration").click()
    clock.travel(timedelta(minutes=11))  # busy since, but the sign-in is a while ago

    row = page.locator("tr", has=page.get_by_text(alice.email))
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    check(page, "confirm it's you", problems)
    shot(page, "21-confirm-its-you")
    page.get_by_label("Your password").fill("not my password")
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_role("alert")).to_have_text("Your current password is not right.")
    deliver()
    assert not smtp.to(alice.email, "Secure Messaging Password Reset")
    clock.travel(timedelta(seconds=61))
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_text(f"A password reset link is on its way to {alice.email}")).to_be_visible()

    # Alice, in her own browser, follows the link and chooses her password.
    deliver()
    link = smtp.wait_for(alice.email, "Secure Messaging Password Reset")[-1].link()
    alice_page = bob_context.new_page()
    alice_page.goto(link)
    expect(alice_page.get_by_label("New password")).to_be_visible()
    assert "#" not in alice_page.url
    check(alice_page, "choose a new password", problems)
    alice_page.get_by_label("New password").fill(CHOSEN)
    alice_page.get_by_label("Type it again").fill(CHOSEN)
    alice_page.get_by_role("button", name="Save new password").click()
    expect(alice_page.get_by_text("Your password is changed")).to_be_visible()
    sign_in_sender(alice_page, site, alice, password=CHOSEN)
    # The same link, opened again, no longer works.
    alice_page.goto(link)
    expect(alice_page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    assert problems == {}, problems
