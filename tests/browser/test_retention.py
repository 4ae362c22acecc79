"""Retention and legal hold in the browser: an admin sets the policy, sees what the next purge
removes, and holds a recipient's messages and a conversation picked on the Messages tab."""

from __future__ import annotations

import secrets
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.lib import clock
from hushpost.messaging.actions import Addressees, SendOptions, send_message
from hushpost.messaging.models import Message
from hushpost.retention.models import LegalHold
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender
from tests.personas import BOB, CAROL, PASSWORD

pytestmark = pytest.mark.browser

DAVE = "dave@client.example"


def _sent_long_ago(author, to: list[str], days: int, *, expired_days: int | None = None) -> Message:
    """A message sent ``days`` ago (and expired ``expired_days`` ago), nobody having touched it since."""
    message = send_message(author=author, addressees=Addressees(to=to), subject="Quarterly statement",
                           body_html="<p>Attached.</p>", options=SendOptions(),
                           send_token=secrets.token_urlsafe(16))
    sent = clock.now() - timedelta(days=days)
    expires = clock.now() - timedelta(days=expired_days) if expired_days is not None else None
    Message.objects.filter(pk=message.pk).update(created_at=sent, expires_at=expires)
    message.deliveries.update(created_at=sent)
    return message


def test_admin_sets_retention_and_places_legal_holds(site, page, org):
    ada = personas.ada(org)
    alice = personas.sender(org)
    _sent_long_ago(alice, [BOB], 120, expired_days=90)
    _sent_long_ago(alice, [CAROL], 400)
    picked = _sent_long_ago(alice, [DAVE, BOB], 500)
    problems: dict[str, list[str]] = {}

    sign_in_sender(page, site, ada)
    page.goto(f"{site}/app/admin/")
    page.get_by_role("link", name="Retention").click()
    expect(page.get_by_text("Nothing is purged until you set a number of days below.")).to_be_visible()
    check(page, "admin retention, off", problems)

    page.get_by_label("Purge expired messages after (days)").fill("30")
    page.get_by_label("Purge conversations without activity for (days)").fill("365")
    page.get_by_role("button", name="Save retention policy").click()
    # Content will be destroyed where none was: asked however recently Ada signed in.
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_text("The retention policy is saved.")).to_be_visible()
    next_purge = page.locator("[data-next-purge]")
    expect(next_purge).to_contain_text("3 messages")
    due = page.get_by_role("table", name="Messages the next purge will remove")
    expect(due.get_by_role("row")).to_have_count(4)
    expect(due).to_contain_text("Expired")
    expect(due).to_contain_text("No activity in its conversation since")
    expect(due).not_to_contain_text("Quarterly statement")  # never the subject
    check(page, "admin retention, on", problems)
    page.get_by_label("Purge expired messages after (days)").evaluate(
        "field => field.labels[0].scrollIntoView({block: 'start'})")
    shot(page, "33-admin-retention")

    # A recipient's messages are held: the next purge leaves Carol's conversation alone.
    page.get_by_label("A recipient (every conversation they took part in, under any of their accounts)").check()
    page.get_by_label("Address").fill(CAROL)
    page.get_by_label("Reason").fill("Matter 2026-114: Harbour v. Northwind")
    page.get_by_role("button", name="Place hold").click()
    expect(page.get_by_text(f"Legal hold placed: Recipient {CAROL} is kept until it is released.")).to_be_visible()
    expect(next_purge).to_contain_text("2 messages")
    expect(next_purge).to_contain_text("1 message that would be due is kept by a legal hold")

    # A conversation, picked on the Messages tab.
    page.get_by_role("link", name="Messages").click()
    page.locator(f"tr[data-message='{picked.uid}']").get_by_role("link", name="Hold").click()
    expect(page.get_by_label("The conversation picked on the Messages tab")).to_be_checked()
    page.get_by_label("Reason").fill("Complaint 77, kept for the ombudsman")
    page.get_by_role("button", name="Place hold").click()
    expect(next_purge).to_contain_text("1 message,")
    holds = page.get_by_role("table", name="Legal holds in force")
    expect(holds.get_by_role("row")).to_have_count(3)
    expect(holds).to_contain_text(f"Conversation from {alice.email}")
    expect(holds).to_contain_text(ada.email)
    expect(page.get_by_text("every account of Northwind Health at that address")).to_be_visible()
    check(page, "admin legal holds", problems)
    page.get_by_role("heading", name="Legal holds").scroll_into_view_if_needed()
    shot(page, "34-admin-legal-holds")

    # Released, Carol's conversation is due again.
    page.once("dialog", lambda dialog: dialog.accept())
    holds.locator("tr", has_text=CAROL).get_by_role("button", name="Release").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_text(f"Hold released: Recipient {CAROL} follows the retention policy again.")).to_be_visible()
    expect(next_purge).to_contain_text("2 messages")
    assert LegalHold.objects.filter(released_at__isnull=False).count() == 1
    assert not problems, problems
