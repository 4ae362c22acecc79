"""An operator's first sign-in at /ops/ (password, then setting up the authenticator app) and a later one."""

from __future__ import annotations

from datetime import timedelta

import pyotp
import pytest
from playwright.sync_api import expect

from hushpost.accounts.models import User
from hushpost.lib import clock
from tests.browser.steps import check, shot
from tests.personas import CHARLIE, OPS_PASSWORD

pytestmark = pytest.mark.browser


def password_step(page, site: str) -> None:
    page.goto(f"{site}/ops/")
    page.get_by_label("E-mail address").fill(CHARLIE)
    page.get_by_label("Password").fill(OPS_PASSWORD)
    page.get_by_role("button", name="Next").click()


def test_an_operator_enrols_at_the_first_sign_in_and_then_signs_in_with_a_code(site, page, new_context, alice):
    found: dict[str, list[str]] = {}
    User.objects.create_superuser(CHARLIE, OPS_PASSWORD)  # as `hushpost createsuperuser` makes it
    password_step(page, site)
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    expect(page.locator("figure.qr svg")).to_be_visible()
    check(page, "operator's two-factor enrolment", found)
    shot(page, "22-operators-sign-in")
    page.goto(f"{site}/ops/accounts/user/")  # nothing opens before it is set up
    expect(page.get_by_label("E-mail address")).to_be_visible()

    password_step(page, site)
    totp = pyotp.TOTP(page.locator("code.secret").inner_text().replace(" ", ""))
    page.get_by_label("Code from the app").fill(totp.generate_otp(totp.timecode(clock.now())))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Two-factor sign-in is on")).to_be_visible()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(10)
    page.get_by_role("link", name="I have kept them").click()
    expect(page.get_by_role("link", name="Accounts")).to_be_visible()

    clock.travel(timedelta(seconds=31))  # the next code
    later = new_context().new_page()
    password_step(later, site)
    expect(later.get_by_role("heading", name="Two-factor sign-in")).to_be_visible()
    expect(later.get_by_label("Code")).to_be_focused()
    check(later, "operator's code step", found)
    later.get_by_label("Code").fill(totp.generate_otp(totp.timecode(clock.now())))
    later.get_by_role("button", name="Sign in", exact=True).click()
    later.get_by_role("main").get_by_role("link", name="Users").click()
    later.get_by_role("link", name=alice.email).click()
    expect(later.locator("div.readonly", has_text=alice.email)).to_be_visible()
    expect(later.locator("input[name=email]")).to_have_count(0)  # read-only: no field to type into
    expect(later.get_by_label("Is active")).to_be_visible()
    shot(later, "23-operators-read-only")
    assert found == {}, found
