"""Telling Hushpost's e-mails from look-alikes, in a real browser: the link names the e-mail, not
the address; the sign-in page it opens shows the e-mail's reference code, as the sender's Sent page
and the recipient's Inbox do; the security phrase chosen at first sign-in is in the next e-mail and
on no page."""

from __future__ import annotations

import re
from urllib.parse import unquote

import pytest
from playwright.sync_api import expect

from tests.browser.steps import BOB, send_message, shot, sign_in_sender
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT
from tests.personas import NEW_PASSWORD

pytestmark = pytest.mark.browser

PHRASE = "blue heron at dawn"
CODE = re.compile(r"Reference:? ([2-9A-HJ-NP-Z]{4}-[2-9A-HJ-NP-Z]{4})")


def test_the_code_in_the_e_mail_is_on_the_sign_in_page_and_the_senders_sent_page(
        site, page, bob_context, smtp, deliver, org, alice):
    sign_in_sender(page, site, alice)
    send_message(page, subject="Lease renewal")
    deliver()
    [notice] = smtp.to(BOB, MESSAGE_SUBJECT)
    code = CODE.search(notice.text).group(1)
    for mail in smtp.to(BOB):
        assert not [u for u in re.findall(r"https?://[^\s\"<>]+", mail.text + mail.html) if "bob" in unquote(u)]

    bob = bob_context.new_page()
    bob.goto(notice.link())
    expect(bob.get_by_label("E-mail address")).to_have_value(BOB)
    expect(bob.locator("#reference")).to_contain_text(f"Reference {code}: the same code is in your e-mail")
    shot(bob, "39-recipient-sign-in-reference")

    page.goto(f"{site}/app/sent")
    expect(page.locator(".message-row").first).to_contain_text(code)

    # First sign-in: a password of his own and, optionally, a security phrase.
    bob.get_by_label("Password").fill(smtp.to(BOB, PASSWORD_SUBJECT)[-1].temporary_password())
    bob.get_by_role("button", name="Sign in", exact=True).click()
    expect(bob.get_by_role("heading", name="Choose your password")).to_be_visible()
    bob.get_by_label("New password").fill(NEW_PASSWORD)
    bob.get_by_label("Type it again").fill(NEW_PASSWORD)
    bob.get_by_label("Security phrase (optional)").fill(PHRASE)
    shot(bob, "40-recipient-security-phrase")
    bob.get_by_role("button", name="Save password and continue").click()
    expect(bob.get_by_role("heading", name="Lease renewal", level=1)).to_be_visible()
    expect(bob.locator(".meta")).to_contain_text(code)

    page.goto(f"{site}/app/compose")
    send_message(page, subject="Signed copy")
    deliver()
    later = smtp.to(BOB, MESSAGE_SUBJECT)[-1]
    assert f"Your security phrase: {PHRASE}" in later.text
    stranger = bob_context.browser.new_page()
    stranger.goto(later.link())
    expect(stranger.get_by_label("E-mail address")).to_have_value(BOB)
    assert PHRASE not in stranger.content()
    expect(stranger.locator("#reference")).to_contain_text(CODE.search(later.text).group(1))


def test_an_unknown_code_gets_the_plain_sign_in_page(site, page, org):
    page.goto(f"{site}/r/{org.slug}/n/{'A' * 35}")
    expect(page.get_by_role("heading", name="Secure Messaging")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value("")
    expect(page.locator("#reference")).to_have_count(0)
