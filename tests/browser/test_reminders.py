"""Reminders and resending in the browser: the sender sees the reminders the policy sent, and
presses Resend notification for a recipient who has not opened the message."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from hushpost.messaging.actions import Addressees, SendOptions, send_message
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender
from tests.helpers import MESSAGE_SUBJECT
from tests.personas import BOB, CAROL

pytestmark = pytest.mark.browser

REMINDER = "Reminder: Secure Messaging Notification"


def test_sender_sees_reminders_and_resends_a_notification(site, page, org, smtp, deliver, settings):
    settings.REMINDER_INTERVAL = 0  # each worker run looks; the policy's days are what counts
    org.remind_after_days, org.remind_times, org.remind_tells_sender = 2, 2, True
    org.save()
    alice = personas.sender(org)
    message = send_message(author=alice, addressees=Addressees(to=[BOB, CAROL]), subject="Quarterly statement",
                           body_html="<p>Attached.</p>", options=SendOptions(),
                           send_token=secrets.token_urlsafe(16))
    deliver()
    smtp.wait_for(BOB, MESSAGE_SUBJECT)
    clock.travel(timedelta(days=3))
    deliver()
    smtp.wait_for(BOB, REMINDER)
    smtp.wait_for(CAROL, REMINDER)
    problems: dict[str, list[str]] = {}

    sign_in_sender(page, site, alice)
    page.goto(f"{site}/app/m/{message.uid}")
    bob = page.locator(f'tr[data-recipient="{BOB}"]')
    expect(bob).to_contain_text("Reminded 1×, last")
    bob.get_by_role("button", name=f"Resend notification to {BOB}").click()
    expect(page.get_by_text(f"A new Secure Messaging Notification is on its way to {BOB}.")).to_be_visible()
    bob = page.locator(f'tr[data-recipient="{BOB}"]')
    expect(bob).to_contain_text("Resent 1×, last")
    check(page, "sender message, resent", problems)
    page.get_by_role("heading", name="Delivery").evaluate("heading => heading.scrollIntoView({block: 'start'})")
    shot(page, "35-sender-resend-notification")

    # Pressed again at once: nothing more goes, and the page says why.
    bob.get_by_role("button", name=f"Resend notification to {BOB}").click()
    expect(page.get_by_text("it can be sent again 5 minutes after the last one")).to_be_visible()
    deliver()
    assert len(smtp.wait_for(BOB, MESSAGE_SUBJECT, count=2)) == 2
    assert len(smtp.to(BOB, MESSAGE_SUBJECT)) == 2
    assert problems == {}
