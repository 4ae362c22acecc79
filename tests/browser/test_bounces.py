"""A sender sees that a recipient's e-mail bounced, and why, and sends the message to the right address."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from hushpost.notifications.models import Notification
from tests.browser.steps import check, mailboxes, send_message, shot, sign_in_sender
from tests.gateway_mail import delivery_report, headers_of, send_report
from tests.helpers import MESSAGE_SUBJECT

TYPO = "bob@clinet.example"
RIGHT = "bob@client.example"


def test_the_sender_sees_a_bounce_and_corrects_the_address(site, page, smtp, deliver, org, alice, make_gateway,
                                                           settings):
    settings.BOUNCE_ADDRESS = "bounces@bounce.northwind.example"
    gateway = make_gateway()
    sign_in_sender(page, site, alice)
    uid = send_message(page, to=TYPO, subject="Your appointment on Friday")
    deliver()
    received = smtp.wait_for(TYPO, MESSAGE_SUBJECT)[0]

    # The recipient's mail server accepted it, then found no such mailbox and sent its report back.
    report = delivery_report(received.mail_from, TYPO, headers_of(received.message, received.mail_from))
    assert send_report(gateway.port, report, received.mail_from)[-1][0] == 250

    mailboxes(page).get_by_role("link", name="Sent").click()
    row = page.get_by_role("link", name=re.compile("Your appointment on Friday"))
    expect(row).to_contain_text("Bounced")
    row.click()
    expect(page).to_have_url(f"{site}/app/m/{uid}")
    status = page.locator(f'tr[data-recipient="{TYPO}"]')
    expect(status.locator(".state")).to_have_text("Bounced")
    expect(status).to_contain_text("5.1.1")
    expect(status).to_contain_text("User unknown in virtual mailbox table")
    found: dict[str, list[str]] = {}
    check(page, "bounced message page", found)
    assert not found, found
    page.get_by_label("Corrected address").fill(RIGHT)
    page.evaluate("window.scrollBy(0, document.querySelector('.status-table').getBoundingClientRect().top - 380)")
    shot(page, "36-sender-bounced-correct-address")

    # A double click: the form goes twice, the message to the right address once.
    page.get_by_role("button", name="Send to this address").dblclick()
    expect(page.get_by_text(f"The message is on its way to {RIGHT}.")).to_be_visible()
    expect(status).to_contain_text(f"Sent instead to {RIGHT}")
    expect(page.locator(f'tr[data-recipient="{RIGHT}"] .state')).to_have_text("Pending")
    expect(page.get_by_text("Status: Pending")).to_be_visible()

    deliver()
    assert len(smtp.wait_for(RIGHT, MESSAGE_SUBJECT)) == 1
    page.reload()
    expect(page.locator(f'tr[data-recipient="{RIGHT}"] .state')).to_have_text("Notified")
    assert Notification.objects.filter(user__email=RIGHT, kind=Notification.Kind.MESSAGE).count() == 1
