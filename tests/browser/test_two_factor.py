"""Two-factor sign-in in the browser: set it up from the account page, then sign in with a code."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from tests.browser.steps import check, enter_password, shot, sign_in_sender

pytestmark = pytest.mark.browser


def test_a_sender_sets_up_an_authenticator_and_signs_in_with_it(site, page, alice, new_context):
    found: dict[str, list[str]] = {}
    sign_in_sender(page, site, alice)
    page.get_by_role("link", name=alice.display_name).click()
    page.get_by_role("link", name="Set up two-factor sign-in").click()
    expect(page.locator("figure.qr svg")).to_be_visible()
    check(page, "two-factor set-up", found)
    shot(page, "20-two-factor-setup")
    secret = page.locator("code.secret").inner_text().replace(" ", "")
    totp = pyotp.TOTP(secret)
    page.get_by_label("Code from the app").fill(totp.generate_otp(totp.timecode(clock.now())))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(10)

    clock.travel(timedelta(seconds=31))  # the next code
    other = new_context().new_page()
    enter_password(other, site, alice)
    expect(other.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(other.get_by_label("Code")).to_be_focused()
    check(other, "two-factor sign-in", found)
    other.get_by_label("Code").fill(totp.generate_otp(totp.timecode(clock.now())))
    other.get_by_role("button", name="Sign in", exact=True).click()
    expect(other.get_by_role("heading", name="Inbox")).to_be_visible()
    assert found == {}, found
