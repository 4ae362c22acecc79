"""Every page a sender or recipient sees passes axe-core's accessibility rules.

axe-core (through axe-playwright-python) checks labels, names, roles,
contrast, landmarks and ARIA use in the real rendered page; a moderate,
serious or critical finding fails the test with the rule and the elements it
names (only "minor" ones would pass).
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hushpost.messaging.models import Message
from tests import personas
from tests.browser.steps import (
    MOBILE,
    VIEWPORT,
    check,
    choose_options,
    recipient_first_sign_in,
    send_message,
    sign_in_sender,
    write_message,
)

pytestmark = pytest.mark.browser


def test_pages_have_no_serious_accessibility_problems(site, page, bob_context, smtp, deliver, org, alice):
    found: dict[str, list[str]] = {}
    page.goto(f"{site}/login")
    check(page, "sender sign-in", found)
    sign_in_sender(page, site, alice)
    check(page, "sender inbox (empty)", found)
    write_message(page, to="bob@client.example", subject="Results", text="All normal.")
    check(page, "compose", found)
    choose_options(page, read_receipt=True, restriction="no_print", expire="7 Days")
    check(page, "send options dialog", found)
    page.get_by_role("button", name="Send securely").click()
    expect(page.get_by_text("Your secure message was sent")).to_be_visible()
    check(page, "sent message with delivery status", found)
    page.goto(f"{site}/app/sent")
    check(page, "sent list", found)
    page.set_viewport_size(MOBILE)
    page.reload()
    check(page, "sent list on a phone", found)
    page.set_viewport_size(VIEWPORT)
    deliver()

    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    check(bob, "recipient message", found)
    uid = Message.objects.get().uid
    bob.goto(f"{site}/r/{org.slug}/")
    check(bob, "recipient inbox", found)
    bob.goto(f"{site}/r/{org.slug}/m/{uid}/reply")
    check(bob, "recipient reply", found)
    bob.set_viewport_size(MOBILE)
    bob.goto(f"{site}/r/{org.slug}/m/{uid}")
    check(bob, "recipient message on a phone", found)
    bob.goto(f"{site}/r/{org.slug}/password")
    check(bob, "change password", found)

    anonymous = bob_context.browser.new_page()
    anonymous.goto(f"{site}/r/{org.slug}/login?email=bob%40client.example")
    check(anonymous, "recipient sign-in", found)
    anonymous.get_by_label("Password").fill("not-the-password")
    anonymous.get_by_role("button", name="Sign in", exact=True).click()
    check(anonymous, "recipient sign-in error", found)
    anonymous.goto(f"{site}/r/{org.slug}/m/{uid}/print")
    check(anonymous, "redirect to sign-in", found)
    anonymous.close()

    send_message(page, subject="Second", text="Another one.")
    assert found == {}, "\n".join(f"{where}: {problem}" for where, items in found.items() for problem in items)


def test_account_recall_and_audit_pages_are_accessible(site, page, bob_context, smtp, deliver, org):
    found: dict[str, list[str]] = {}
    ada = personas.ada(org)
    sign_in_sender(page, site, ada)
    uid = send_message(page, subject="To recall", text="Soon gone.")
    deliver()
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    page.goto(f"{site}/app/m/{uid}")
    check(page, "sent message with recall and expiry", found)
    page.once("dialog", lambda dialog: dialog.accept())  # "Recall this message for every recipient?"
    page.get_by_role("button", name="Recall for everyone").click()
    expect(page.get_by_text("The message was recalled.")).to_be_visible()
    bob.goto(f"{site}/r/{org.slug}/m/{uid}")
    expect(bob.get_by_role("heading", name="This message was recalled by the sender")).to_be_visible()
    check(bob, "recalled message", found)
    for path, where in (("/app/account", "sender account"), ("/app/admin/messages", "admin messages"),
                        ("/app/admin/audit", "admin audit trail")):
        page.goto(site + path)
        check(page, where, found)
    page.set_viewport_size(MOBILE)  # the admin tabs, a strip that scrolls sideways
    page.goto(f"{site}/app/admin/branding")
    check(page, "admin branding on a phone", found)
    page.set_viewport_size(VIEWPORT)
    anonymous = bob_context.browser.new_page()
    anonymous.goto(f"{site}/forgot")
    check(anonymous, "forgot password", found)
    anonymous.get_by_label("E-mail address").fill("someone@example.org")
    anonymous.get_by_role("button", name="E-mail me a link").click()
    check(anonymous, "forgot password sent", found)
    anonymous.close()
    assert found == {}, "\n".join(f"{where}: {problem}" for where, items in found.items() for problem in items)
