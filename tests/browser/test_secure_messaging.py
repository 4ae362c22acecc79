"""The secure-messaging procedure in a real browser, as sender and recipient see it.

Alice (staff) composes and sends in one browser; Bob (an outside recipient)
follows the e-mailed links in another. E-mails go through the real SMTP sink;
the real worker delivers them. Every step saves a screenshot for the README.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from hushpost.messaging.models import Delivery, Message
from tests.browser.steps import (
    BOB,
    MOBILE,
    VIEWPORT,
    choose_options,
    editor_ready,
    forge_reply,
    mailboxes,
    open_message,
    recipient_first_sign_in,
    send_message,
    shot,
    sign_in_sender,
    write_message,
)
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, send
from tests.personas import NEW_PASSWORD, PASSWORD

pytestmark = pytest.mark.browser

RECEIPT_SUBJECT = "Secure Messaging Read Receipt"
REPLY_SUBJECT = "Secure Messaging Reply Notification"


def test_send_read_reply_end_to_end(site, page, bob_context, smtp, deliver, org, alice):
    # Alice signs in.
    page.goto(f"{site}/login")
    expect(page.get_by_role("heading", name="Sign in to Secure Messaging")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_be_focused()
    page.get_by_label("E-mail address").fill(alice.email)
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_label("E-mail address")).to_have_value(alice.email)
    expect(page.get_by_label("Password")).to_be_focused()
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "01-sender-sign-in")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.get_by_text("Alice Moreno")).to_be_visible()

    # Compose, with a formatted body typed through the editor's toolbar.
    page.get_by_role("link", name="Compose").click()
    page.get_by_label("To", exact=True).fill(BOB)
    page.get_by_label("Subject").fill("Your test results")
    toolbar = page.get_by_role("toolbar", name="Formatting")
    expect(toolbar).to_be_visible()
    editor = page.get_by_role("textbox", name="Message")
    editor.click()
    page.keyboard.type("Dear Bob, your results are ")
    toolbar.get_by_role("button", name="Bold").click()
    page.keyboard.type("all normal")
    toolbar.get_by_role("button", name="Bold").click()
    page.keyboard.type(".")
    page.keyboard.press("Enter")
    toolbar.get_by_role("button", name="Bulleted list").click()
    page.keyboard.type("Blood pressure: 118/76")
    page.keyboard.press("Enter")
    page.keyboard.type("Cholesterol: 4.2 mmol/L")
    expect(editor.locator("b, strong")).to_have_text("all normal")
    expect(editor.locator("ul > li")).to_have_text(
        ["Blood pressure: 118/76", "Cholesterol: 4.2 mmol/L"]
    )
    shot(page, "02-compose")

    # Enter in a field shows the send options; it never sends straight away.
    dialog = page.get_by_role("dialog", name="Send options")
    page.get_by_label("Subject").press("Enter")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert Message.objects.count() == 0

    # Send opens the options dialog; it is modal, takes focus, and Escape closes it.
    send = page.get_by_role("button", name="Send", exact=True)
    send.click()
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("checkbox", name="Request Read Receipt")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(send).to_be_focused()
    assert Message.objects.count() == 0
    page.keyboard.press("Enter")  # reopen from the keyboard
    expect(dialog).to_be_visible()

    dialog.get_by_role("checkbox", name="Request Read Receipt").check()
    dialog.get_by_role("radio", name=re.compile(r"^Restricted - No Print(?!, No Reply)")).check()
    dialog.get_by_label("Expire Message in").select_option(label="7 Days")
    expect(dialog.get_by_role("radio", name=re.compile("^Restricted - No Print, No Reply"))).not_to_be_checked()
    shot(page, "03-send-options")
    dialog.get_by_role("button", name="Send securely").click()

    expect(page.get_by_text("Your secure message was sent to 1 recipient.")).to_be_visible()
    message = Message.objects.get()
    expect(page).to_have_url(f"{site}/app/m/{message.uid}")
    expect(page.get_by_role("heading", name="Your test results", level=1)).to_be_visible()
    summary = page.locator(".option-summary")
    expect(summary).to_contain_text("Read receipt: requested")
    expect(summary).to_contain_text("Restriction: Restricted - No Print")
    expect(summary).not_to_contain_text("Expiry: never")
    bob_row = page.locator("tr", has=page.get_by_role("rowheader", name=BOB))
    expect(bob_row).to_contain_text("Pending")
    shot(page, "04-sender-sent-pending")

    # The worker delivers: Bob gets the password e-mail and the message notification.
    deliver()
    [password_mail] = smtp.to(BOB, PASSWORD_SUBJECT)
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    assert "Your test results" not in notice.text and "all normal" not in notice.text
    assert notice.link().startswith(site)

    # Bob, in his own browser, follows the link: e-mail prefilled, temporary
    # password, then a password of his own before anything else.
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp, screenshots=("05-recipient-sign-in", "06-recipient-choose-password"))
    assert password_mail.temporary_password()  # the one he just used

    open_message(bob, site, org, message.uid, "Your test results")
    body = bob.locator(".message-body")
    expect(body.locator("b, strong")).to_have_text("all normal")
    expect(body.get_by_role("listitem")).to_have_text(["Blood pressure: 118/76", "Cholesterol: 4.2 mmol/L"])
    expect(bob.get_by_text("Expires", exact=True)).to_be_visible()
    expires = (message.expires_at).strftime("%-d %B %Y")
    expect(bob.locator(".meta")).to_contain_text(expires)
    expect(bob.get_by_text("Restricted by the sender: no printing.")).to_be_visible()
    actions = bob.get_by_role("toolbar", name="Message actions")
    expect(actions.get_by_role("link", name="Reply", exact=True)).to_be_visible()
    expect(actions.get_by_role("button", name="Delete")).to_be_visible()
    expect(actions.get_by_role("link", name="Print")).to_have_count(0)
    shot(bob, "07-recipient-message")
    bob.set_viewport_size(MOBILE)
    expect(actions.get_by_role("link", name="Reply", exact=True)).to_be_in_viewport()
    shot(bob, "08-recipient-message-mobile")
    bob.set_viewport_size(VIEWPORT)

    # Bob replies.
    actions.get_by_role("link", name="Reply", exact=True).click()
    expect(bob.get_by_role("heading", name="Reply", level=1)).to_be_visible()
    expect(bob.get_by_text("Re: Your test results")).to_be_visible()
    editor_ready(bob)
    expect(bob.get_by_label("Link address")).to_be_hidden()
    bob.get_by_role("textbox", name="Your reply").click()
    bob.keyboard.type("Thank you, see you on Tuesday.")
    shot(bob, "09-recipient-reply")
    bob.get_by_role("button", name="Send reply").click()
    expect(bob.get_by_text("Your reply was sent securely.")).to_be_visible()
    expect(bob).to_have_url(f"{site}/r/{org.slug}/m/{message.uid}")

    # Alice is told: a read receipt naming Bob, and a reply notification.
    deliver()
    [receipt] = smtp.to(alice.email, RECEIPT_SUBJECT)
    assert BOB in receipt.text
    [reply_notice] = smtp.to(alice.email, REPLY_SUBJECT)
    assert "Tuesday" not in reply_notice.text + reply_notice.html
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 1

    # Alice finds the reply in her Inbox and reads it.
    mailboxes(page).get_by_role("link", name="Inbox").click()
    reply_row = page.get_by_role("link", name=re.compile("Re: Your test results"))
    expect(reply_row).to_contain_text(BOB)
    shot(page, "10-sender-inbox")
    reply_row.click()
    expect(page.locator(".message-body")).to_have_text("Thank you, see you on Tuesday.")

    # Her Sent message shows Bob notified, when he first opened it and when he replied.
    mailboxes(page).get_by_role("link", name="Sent").click()
    page.get_by_role("link", name=re.compile("Your test results")).click()
    bob_row = page.locator("tr", has=page.get_by_role("rowheader", name=BOB))
    cells = bob_row.get_by_role("cell")
    expect(cells.nth(0)).to_contain_text("Notified")
    delivery = Delivery.objects.get(message=message)
    assert delivery.first_opened_at and delivery.replied_at
    # In the browser's zone (the tests' browsers run in UTC), named after the time.
    expect(cells.nth(1)).to_have_text(delivery.first_opened_at.strftime("%-d %b, %H:%M UTC"))
    expect(cells.nth(2)).to_have_text(delivery.replied_at.strftime("%-d %b, %H:%M UTC"))
    expect(bob_row).not_to_contain_text("Not yet")
    expect(page.get_by_role("heading", name="Replies")).to_be_visible()
    shot(page, "11-sender-delivery-status")


def test_second_message_sends_only_the_message_notification(site, page, bob_context, smtp, deliver, org, alice):
    sign_in_sender(page, site, alice)
    send_message(page, subject="Appointment", text="See you on Monday.")
    deliver()
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)

    send_message(page, subject="Invoice", text="Your invoice is attached.")
    deliver()
    assert len(smtp.to(BOB, PASSWORD_SUBJECT)) == 1
    assert len(smtp.to(BOB, MESSAGE_SUBJECT)) == 2

    # Signing in through the first link ended on that message, so it is read;
    # the new one waits in bold.
    bob.goto(f"{site}/r/{org.slug}/")
    rows = bob.get_by_role("list").locator(".message-row")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Invoice")
    expect(rows.nth(1)).to_contain_text("Appointment")
    expect(rows.first).to_have_class(re.compile(r"\bunread\b"))
    expect(rows.nth(1)).not_to_have_class(re.compile(r"\bunread\b"))
    shot(bob, "12-recipient-inbox")

    # The second link takes Bob, already signed in, straight to the new message.
    bob.goto(smtp.to(BOB, MESSAGE_SUBJECT)[-1].link())
    expect(bob.get_by_role("heading", name="Invoice", level=1)).to_be_visible()
    bob.get_by_role("link", name="Back").click()
    expect(rows.first).not_to_have_class(re.compile(r"\bunread\b"))


def test_no_print_no_reply_is_enforced(site, page, bob_context, smtp, deliver, org, alice):
    sign_in_sender(page, site, alice)
    uid = send_message(page, subject="Contract draft", text="Please read before Friday.",
                       restriction="no_print_no_reply")
    deliver()
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    open_message(bob, site, org, uid, "Contract draft")
    expect(bob.get_by_text("Restricted by the sender: no printing, no replies.")).to_be_visible()
    actions = bob.get_by_role("toolbar", name="Message actions")
    expect(actions.get_by_role("link", name=re.compile("Reply"))).to_have_count(0)
    expect(actions.get_by_role("link", name="Print")).to_have_count(0)
    expect(actions.get_by_role("button", name="Delete")).to_be_visible()
    shot(bob, "13-recipient-no-print-no-reply")

    response = forge_reply(bob, site, org, uid)
    assert response.status == 403
    assert "replies are not allowed" in response.text()
    assert Message.objects.filter(kind=Message.Kind.REPLY).count() == 0
    # Typing the reply address by hand gets the same answer, in words.
    bob.goto(f"{site}/r/{org.slug}/m/{uid}/reply")
    expect(bob.get_by_role("alert")).to_contain_text("replies are not allowed")


def test_expired_message_cannot_be_answered(site, page, bob_context, smtp, deliver, org, alice):
    sign_in_sender(page, site, alice)
    uid = send_message(page, subject="Lab slot", text="Your slot is at 9:00.", expire="7 Days")
    deliver()
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    open_message(bob, site, org, uid, "Lab slot")
    actions = bob.get_by_role("toolbar", name="Message actions")
    expect(actions.get_by_role("link", name="Reply", exact=True)).to_be_visible()

    clock.travel(timedelta(days=8))
    bob.reload()
    # A week later the session has long ended: Bob signs in again and lands on the message.
    expect(bob.get_by_text("signed out after 15 minutes without activity")).to_be_visible()
    bob.get_by_label("E-mail address").fill(BOB)
    bob.get_by_label("Password").fill(NEW_PASSWORD)
    bob.get_by_role("button", name="Sign in", exact=True).click()
    expect(bob.get_by_text(re.compile(r"This message expired on .+ You can no longer reply"))).to_be_visible()
    expect(bob.get_by_text("Expired", exact=True)).to_be_visible()
    expect(actions.get_by_role("link", name=re.compile("Reply"))).to_have_count(0)
    expect(actions.get_by_role("link", name="Print")).to_be_visible()
    expect(actions.get_by_role("button", name="Delete")).to_be_visible()
    shot(bob, "14-recipient-expired")

    response = forge_reply(bob, site, org, uid, body="Late answer")
    assert response.status == 403
    assert "expired" in response.text()
    assert Message.objects.filter(kind=Message.Kind.REPLY).count() == 0

    # Print still opens (in a new tab) and shows the message.
    with bob.expect_popup() as popup:
        actions.get_by_role("link", name="Print").click()
    printable = popup.value
    expect(printable.get_by_role("heading", name="Lab slot")).to_be_visible()
    printable.close()

    # Delete asks first, then removes it from the inbox.
    bob.once("dialog", lambda d: d.accept())
    actions.get_by_role("button", name="Delete").click()
    expect(bob.get_by_text("The message was deleted.")).to_be_visible()
    expect(bob.get_by_text("Lab slot")).to_have_count(0)


def test_double_clicked_send_sends_once(site, page, bob_context, smtp, deliver, org, alice):
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="Once only", text="This must arrive once.")
    choose_options(page)
    posts = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
    page.get_by_role("button", name="Send securely").dblclick()
    expect(page.get_by_text("Your secure message was sent to 1 recipient.")).to_be_visible()
    message = Message.objects.get()
    assert [r.url for r in posts] == [f"{site}/app/compose"]  # the page sent it once

    # Even a resubmission that gets past the page (same form, sent again) is
    # recognised by its one-time token: same message, nothing new.
    replay = page.request.post(posts[0].url, data=posts[0].post_data_buffer,
                               headers={"Content-Type": posts[0].headers["content-type"]},
                               max_redirects=0)
    assert replay.status == 302 and replay.headers["location"] == f"/app/m/{message.uid}"
    assert Message.objects.count() == 1

    deliver()
    assert len(smtp.to(BOB, MESSAGE_SUBJECT)) == 1
    mailboxes(page).get_by_role("link", name="Sent").click()
    expect(page.get_by_role("link", name=re.compile("Once only"))).to_have_count(1)


def test_recipient_lands_on_the_linked_message_after_choosing_a_password(
    site, page, smtp, deliver, org, sender_client
):
    assert send(sender_client, to=BOB, subject="Follow-up").status_code == 302
    uid = Message.objects.get().uid
    deliver()
    bob = page
    recipient_first_sign_in(bob, smtp)
    expect(bob).to_have_url(f"{site}/r/{org.slug}/m/{uid}", timeout=2_000)
