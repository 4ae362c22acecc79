"""Login discovery in a real browser, across two deployments (us, eu) on loopback."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.steps import shot
from tests.personas import PASSWORD

pytestmark = pytest.mark.browser


def test_a_sender_who_starts_in_the_wrong_region_signs_in_at_their_own(deployments, page):
    us, eu = deployments
    page.goto(us.url + "/login")
    page.get_by_label("E-mail address").fill("eva@europa.example")
    page.get_by_role("button", name="Next").click()

    # The eu deployment's own sign-in page, the address carried over, the password next.
    expect(page).to_have_url(re.compile("^" + re.escape(eu.url + "/login?email=eva%40europa.example") + "$"))
    expect(page.get_by_label("E-mail address")).to_have_value("eva@europa.example")
    expect(page.get_by_label("Password")).to_be_focused()
    shot(page, "16-sign-in-in-your-region")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    # Signed in at eu; the password the operator typed at `user add` is replaced first.
    expect(page.get_by_role("heading", name="Choose your own password")).to_be_visible()
    assert page.url == eu.url + "/app/account?next=%2Fapp%2F"


def test_a_sender_of_this_region_goes_straight_to_the_password(deployments, page):
    us, _ = deployments
    page.goto(us.url + "/login")
    page.get_by_label("E-mail address").fill("sam@liberty.example")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Password")).to_be_focused()
    assert page.url.startswith(us.url)
    page.get_by_role("link", name="Use a different address").click()
    expect(page.get_by_label("E-mail address")).to_be_focused()
    expect(page.get_by_label("E-mail address")).to_have_value("")
