"""The browser's time zone is picked up by itself for an account that chose none."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect

from hushpost.messaging.actions import Addressees, SendOptions, send_message
from hushpost.messaging.models import Message
from tests import personas
from tests.browser.steps import sign_in_sender
from tests.personas import BOB

pytestmark = pytest.mark.browser

WINTER = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo (JST)


@pytest.fixture
def tokyo(browser, browser_context_args):
    """A browser set to Tokyo's time, as a sender travelling there would have it."""
    context = browser.new_context(**{**browser_context_args, "timezone_id": "Asia/Tokyo"})
    context.set_default_timeout(10_000)
    yield context
    context.close()


def test_a_sender_with_no_zone_sees_times_in_the_browsers_zone(site, tokyo, org):
    alice = personas.sender(org)
    message = send_message(author=alice, addressees=Addressees(to=[BOB]), subject="Quarterly statement",
                           body_html="<p>Attached.</p>", options=SendOptions(),
                           send_token=secrets.token_urlsafe(16))
    Message.objects.filter(pk=message.pk).update(created_at=WINTER)
    page = tokyo.new_page()

    sign_in_sender(page, site, alice)
    page.goto(f"{site}/app/sent")
    expect(page.locator(".message-row time")).to_have_text("15 Jan 2026, 21:00 JST")
    page.get_by_role("link", name="Quarterly statement").click()
    expect(page.get_by_text("Thursday 15 January 2026, 21:00 JST")).to_be_visible()
    page.goto(f"{site}/app/account")
    card = page.locator("#time-zone")
    expect(card).to_contain_text("Times are shown in Asia/Tokyo")
    expect(card.get_by_label("Show times in")).to_have_value("")  # Automatic: nothing stored
    alice.refresh_from_db()
    assert alice.time_zone == ""
