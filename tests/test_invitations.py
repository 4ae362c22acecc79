"""A new sender chooses their own first password: the admin invites, nobody else ever sets it."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.notifications.models import Notification
from tests import personas
from tests.helpers import link_in, open_link, post_link
from tests.personas import signed_in_sender

INVITED = "You're invited to Northwind Health's secure messaging portal"
NEW = "nia@northwind.example"
CHOSEN = "Meadow-lantern-orbit-47"
GIVEN = "Granite-violin-harbour-61"


@pytest.fixture
def admin(org):
    return personas.ada(org)



def invite(c: Client, email: str = NEW, **extra):
    return c.post("/app/admin/", {"email": email, "name": "Nia Okoro", **extra})


def row(page: str, email: str) -> str:
    return re.search(rf'<tr data-sender="{re.escape(email)}">.*?</tr>', page, re.S).group(0)


def test_an_admin_invites_a_sender_who_chooses_their_own_password(admin, smtp, deliver):
    c = signed_in_sender(admin)
    page = c.get("/app/admin/").content.decode()
    assert 'name="password"' not in page and "First password" not in page  # nothing to type for them
    # A password slipped into the form is ignored: the account has none until its owner chooses one.
    r = invite(c, password=GIVEN)
    assert r.status_code == 302
    flashed = c.get("/app/admin/").content.decode()
    assert f"An invitation is on its way to {NEW}" in flashed
    nia = User.objects.get(email=NEW, role="sender")
    assert not nia.has_usable_password() and not nia.is_org_admin
    assert Client().post("/login", {"email": NEW, "password": GIVEN}).status_code == 400
    listed = row(flashed, NEW)
    assert "Invited" in listed and "Resend invitation" in listed and "Send reset link" not in listed

    deliver()
    mail = smtp.wait_for(NEW, INVITED)[-1]
    assert "Northwind Health" in mail.message["From"] and "Set up your account" in mail.html
    assert GIVEN not in mail.text and not any(m.to == admin.email for m in smtp.messages)
    link = link_in(mail)
    assert re.fullmatch(r"/welcome#[\w-]+/[\w-]+", link)  # the secret only after '#'
    nia_browser = Client()
    form = open_link(nia_browser, link)
    page = nia_browser.get(form).content.decode()
    assert "<title>Set up your account" in page and NEW in page
    r = nia_browser.post(form, {"password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 302 and r["Location"] == "/login?email=nia%40northwind.example"
    assert nia_browser.post("/login", {"email": NEW, "password": CHOSEN}).status_code == 302
    assert nia_browser.get("/app/").status_code == 200  # in the portal

    # Once only.
    again = Client()
    r = post_link(again, link)
    assert r.status_code == 404 and "This link no longer works" in r.content.decode()
    listed = row(c.get("/app/admin/").content.decode(), NEW)
    assert "Active" in listed and "Send reset link" in listed and "Invited" not in listed
    events = {(e.action, e.actor_email) for e in AuditEvent.objects.filter(object_id=str(nia.pk))}
    assert (AuditEvent.Action.INVITATION_SENT, admin.email) in events
    assert (AuditEvent.Action.INVITATION_ACCEPTED, NEW) in events


def test_an_invitation_expires_and_the_admin_sends_a_new_one(admin, smtp, deliver):
    invite(signed_in_sender(admin))
    deliver()
    first = link_in(smtp.wait_for(NEW, INVITED)[-1])
    clock.travel(timedelta(days=6, hours=23))
    assert post_link(Client(), first).status_code == 302  # still works on the seventh day
    clock.travel(timedelta(hours=2))
    r = post_link(Client(), first)
    assert r.status_code == 404 and "This invitation has expired" in r.content.decode()

    c = signed_in_sender(admin)  # the admin's session of a week ago is long over
    nia = User.objects.get(email=NEW)
    r = c.post(f"/app/admin/senders/{nia.pk}/invite", follow=True)
    assert f"A new invitation is on its way to {NEW}" in r.content.decode()
    r = c.post(f"/app/admin/senders/{nia.pk}/invite", follow=True)  # a second click
    assert "less than five minutes ago" in r.content.decode()
    deliver()
    mails = smtp.wait_for(NEW, INVITED, count=2)
    assert len(mails) == 2
    second = link_in(mails[-1])
    assert post_link(Client(), first).status_code == 404
    clock.travel(timedelta(minutes=1))  # failed links slow the client down a little (reset.py)
    b = Client()
    form = open_link(b, second)
    assert b.post(form, {"password": CHOSEN, "confirm": CHOSEN}).status_code == 302
    assert Client().post("/login", {"email": NEW, "password": CHOSEN}).status_code == 302
    # Set up now: no more invitations, a reset link is the way for a lost password.
    r = c.post(f"/app/admin/senders/{nia.pk}/invite", follow=True)
    assert "has already chosen a password" in r.content.decode()


def test_an_invitation_opens_only_its_own_page_and_only_while_the_account_is_enabled(admin, smtp, deliver):
    c = signed_in_sender(admin)
    invite(c)
    deliver()
    link = link_in(smtp.wait_for(NEW, INVITED)[-1])
    fragment = link.partition("#")[2]
    assert post_link(Client(), "/reset#" + fragment).status_code == 404  # not a reset link
    nia = User.objects.get(email=NEW)
    assert c.post(f"/app/admin/senders/{nia.pk}/active", {"active": "0"}).status_code == 302
    assert post_link(Client(), link).status_code == 404
    r = c.post(f"/app/admin/senders/{nia.pk}/invite", follow=True)
    assert "is disabled" in r.content.decode()
    # Enabled again (the invitation had gone to the wrong mailbox): the old link stays dead.
    assert c.post(f"/app/admin/senders/{nia.pk}/active", {"active": "1"}).status_code == 302
    clock.travel(timedelta(seconds=61))  # past the slow-down the two misses above began
    assert post_link(Client(), link).status_code == 404


def test_an_invitation_is_not_sent_once_the_sender_has_a_password(admin, smtp, deliver):
    """Accepted, or disabled, before the worker's turn: the e-mail is no longer wanted."""
    invite(signed_in_sender(admin))
    User.objects.filter(email=NEW).update(is_active=False)
    deliver()
    assert not smtp.to(NEW, INVITED)
    assert Notification.objects.get(kind="invitation").status == Notification.Status.CANCELLED


# --- hushpost user add -------------------------------------------------------------------------

def user_add(monkeypatch, *args, stdin: str = "") -> str:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    call_command("user", "add", *args, stdout=out)
    return out.getvalue()


def test_a_password_given_on_the_command_line_is_replaced_at_first_sign_in(org, monkeypatch):
    out = user_add(monkeypatch, "--email", NEW, "--name", "Nia Okoro", stdin=GIVEN + "\n")
    assert "must choose their own password when they first sign in" in out
    c = Client()
    assert c.post("/login", {"email": NEW, "password": GIVEN}).status_code == 302
    r = c.get("/app/compose")
    assert r.status_code == 302 and r["Location"] == "/app/account?next=%2Fapp%2Fcompose"
    page = c.get(r["Location"]).content.decode()
    assert "Choose your own password" in page and 'name="current"' not in page
    assert c.post("/app/compose", {"to": "bob@client.example"}).status_code == 302  # nothing else works
    r = c.post("/app/account?next=/app/compose", {"password": GIVEN, "confirm": GIVEN})
    assert r.status_code == 400 and "not the one you were given" in r.content.decode()
    r = c.post("/app/account?next=/app/compose", {"password": CHOSEN, "confirm": CHOSEN})
    assert r.status_code == 302 and r["Location"] == "/app/compose"
    assert c.get("/app/compose").status_code == 200
    assert Client().post("/login", {"email": NEW, "password": GIVEN}).status_code == 400
    assert Client().post("/login", {"email": NEW, "password": CHOSEN}).status_code == 302
    assert not User.objects.get(email=NEW).must_change_password


def test_user_add_invite_sends_the_invitation_instead_of_asking_for_a_password(org, monkeypatch, smtp, deliver):
    out = user_add(monkeypatch, "--email", NEW, "--name", "Nia Okoro", "--invite")
    assert "invitation to choose their password is queued" in out
    nia = User.objects.get(email=NEW)
    assert not nia.has_usable_password()
    event = AuditEvent.objects.get(action=AuditEvent.Action.INVITATION_SENT)
    assert event.actor_email == "hushpost user add (server shell)" and event.org_id == org.pk
    deliver()
    b = Client()
    form = open_link(b, link_in(smtp.wait_for(NEW, INVITED)[-1]))
    assert b.post(form, {"password": CHOSEN, "confirm": CHOSEN}).status_code == 302
    assert b.post("/login", {"email": NEW, "password": CHOSEN}).status_code == 302
    assert b.get("/app/").status_code == 200  # their own choice: no further step
