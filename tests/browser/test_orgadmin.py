"""Organisation administration in the browser: what an admin does, and sees of nobody else."""

from __future__ import annotations

import email
import email.policy
import re
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import expect

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender
from tests.helpers import send, signed_in_as, upload
from tests.personas import BOB, PASSWORD

INVITED = "You're invited to Northwind Health's secure messaging portal"
CHOSEN = "Granite-violin-harbour-61"

pytestmark = pytest.mark.browser


def test_admin_manages_senders_and_policy(site, page, bob_context, org, smtp, deliver):
    ada = personas.ada(org)
    other = personas.harbour()
    hal = personas.hal(other)
    problems: dict[str, list[str]] = {}

    sign_in_sender(page, site, ada)
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    check(page, "admin senders", problems)
    # The admin types who, never a password: the invitee chooses their own.
    expect(page.locator("input[type=password]")).to_have_count(0)
    page.get_by_label("E-mail address").fill("new@northwind.example")
    page.get_by_label("Name").fill("Nia Newcomer")
    page.get_by_role("button", name="Add sender and send invitation").click()
    expect(page.get_by_text("An invitation is on its way to new@northwind.example")).to_be_visible()
    row = page.locator("tr", has=page.get_by_text("new@northwind.example"))
    expect(row.get_by_text("Invited")).to_be_visible()
    expect(row.get_by_role("button", name="Resend invitation")).to_be_visible()

    deliver()
    link = smtp.wait_for("new@northwind.example", INVITED)[-1].link()
    nia_page = bob_context.new_page()
    nia_page.goto(link)
    expect(nia_page).to_have_title(re.compile("^Set up your account"))
    expect(nia_page.get_by_role("heading", name="Set up your account")).to_be_visible()
    assert "#" not in nia_page.url  # the secret left the address bar
    nia_page.get_by_label("Your password").fill(CHOSEN)
    nia_page.get_by_label("Type it again").fill(CHOSEN)
    shot(nia_page, "25-invitation-set-up")
    nia_page.get_by_role("button", name="Set up my account").click()
    expect(nia_page.get_by_text("Your account is ready")).to_be_visible()
    expect(nia_page.get_by_label("E-mail address")).to_have_value("new@northwind.example")  # filled in
    nia_page.get_by_label("Password").fill(CHOSEN)
    nia_page.get_by_role("button", name="Sign in", exact=True).click()
    expect(nia_page).to_have_url(f"{site}/app/")
    expect(nia_page.get_by_role("heading", name="Inbox")).to_be_visible()
    nia_page.goto(link)  # once only
    expect(nia_page.get_by_role("heading", name="This link no longer works")).to_be_visible()
    nia_page.close()

    page.reload()
    expect(row.get_by_text("Active")).to_be_visible()
    row.get_by_role("button", name="Disable").click()
    expect(row.get_by_text("Disabled")).to_be_visible()
    assert not User.objects.get(email="new@northwind.example").is_active
    shot(page, "15-admin-senders")

    page.get_by_role("link", name="Policy").click()
    check(page, "admin policy", problems)
    page.get_by_label("1 Day").uncheck()
    page.get_by_label("Default expiry").select_option(label="7 Days")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("The organisation's settings are saved.")).to_be_visible()
    page.get_by_role("link", name="Compose").click()
    expire = page.locator("#id_expire_days")
    expect(expire.locator("option")).to_have_text(["Never", "7 Days", "30 Days"])
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Recipients").click()
    check(page, "admin recipients", problems)

    # The other organisation's admin sees only their own people.
    hal_page = bob_context.new_page()
    sign_in_sender(hal_page, site, hal)
    hal_page.goto(f"{site}/app/admin/")
    expect(hal_page.get_by_text("hal@harbour.example", exact=True)).to_be_visible()
    expect(hal_page.get_by_text("northwind.example")).to_have_count(0)
    nia = User.objects.get(email="new@northwind.example")
    token = hal_page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    response = hal_page.request.post(f"{site}/app/admin/senders/{nia.pk}/active",
                                     form={"active": "1", "csrfmiddlewaretoken": token})
    assert response.status == 404  # a valid request of Hal's, about someone not his
    response = hal_page.request.post(f"{site}/app/admin/senders/{nia.pk}/reset",
                                     form={"csrfmiddlewaretoken": token})
    assert response.status == 404
    assert not User.objects.get(pk=nia.pk).is_active
    assert problems == {}, problems


def test_admin_imports_senders_from_a_csv_file(site, page, org, smtp, deliver, tmp_path):
    ada = personas.ada(org)
    problems: dict[str, list[str]] = {}
    listing = tmp_path / "senders.csv"
    listing.write_text("email,name,admin\nnia@northwind.example,Nia Okoro,no\nomar@northwind.example,Omar Haddad,yes\n"
                       "ada@northwind.example,Ada Again,\n", encoding="utf-8")
    sign_in_sender(page, site, ada)
    page.goto(f"{site}/app/admin/")
    page.get_by_role("link", name="Import many from a CSV file").click()
    check(page, "admin import", problems)
    page.get_by_label("CSV file").set_input_files(listing)
    page.get_by_role("button", name="Check the list").click()
    expect(page.get_by_text("2 senders will be invited; 1 line cannot be used")).to_be_visible()
    expect(page.locator("tr[data-line='4']")).to_contain_text("already has a sender account")
    check(page, "admin import preview", problems)
    shot(page, "26-admin-import-preview")
    page.get_by_role("button", name="Invite 2 senders").click()
    expect(page.get_by_text("2 invitations on the way")).to_be_visible()
    expect(page.locator("tr[data-sender='omar@northwind.example']")).to_contain_text("Invited")
    deliver()
    assert smtp.wait_for("omar@northwind.example", INVITED)
    assert User.objects.get(email="omar@northwind.example").is_org_admin
    assert problems == {}, problems


def test_admin_exports_a_conversation_after_confirming_its_them(site, page, org, alice, smtp, deliver):
    ada = personas.ada(org)
    alice_browser = signed_in_as(Client(), alice)
    fid = upload(alice_browser, b"%PDF-1.7 the signed agreement", "agreement.pdf").json()["uid"]
    assert send(alice_browser, to=BOB, subject="Signed agreement", attachment=[fid]).status_code == 302
    problems: dict[str, list[str]] = {}
    sign_in_sender(page, site, ada)
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Messages").click()
    check(page, "admin messages with export", problems)
    shot(page, "admin-messages-export")
    clock.travel(timedelta(minutes=11))  # busy since, but the sign-in is a while ago

    row = page.locator("tr", has=page.get_by_text(alice.email))
    row.get_by_role("button", name="Export").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_label("Your password").fill(PASSWORD)
    with page.expect_download() as info:
        page.get_by_role("button", name="Confirm and continue").click()
    saved = info.value
    assert saved.failure() is None
    assert re.fullmatch(rf"conversation-{org.slug}-[\w-]+-\d{{8}}-\d{{6}}\.zip", saved.suggested_filename)
    with zipfile.ZipFile(Path(saved.path())) as archive:
        [name] = [n for n in archive.namelist() if n.endswith(".eml")]
        mail = email.message_from_bytes(archive.read(name), policy=email.policy.default)
        assert {"audit-events.csv", "manifest.json"} <= set(archive.namelist())
    assert mail["Subject"] == "Signed agreement"
    [part] = mail.iter_attachments()
    assert (part.get_filename(), part.get_payload(decode=True)) == ("agreement.pdf", b"%PDF-1.7 the signed agreement")
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, actor=ada).count() == 1

    # Confirmed a moment ago: the next export downloads at once, from the Messages tab itself.
    page.goto(f"{site}/app/admin/messages")
    with page.expect_download() as info:
        row.get_by_role("button", name="Export").click()
    assert info.value.failure() is None
    assert AuditEvent.objects.filter(action=AuditEvent.Action.EXPORT, actor=ada).count() == 2
    assert problems == {}, problems
