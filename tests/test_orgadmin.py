"""Organisation admins manage their own senders, recipients and policy, and nobody else's."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.test import Client

from hushpost.accounts.actions import set_active
from hushpost.accounts.models import User
from hushpost.lib.refusals import Refused
from hushpost.messaging.models import Message
from hushpost.notifications.models import Notification
from tests import personas
from tests.helpers import PASSWORD_SUBJECT, send
from tests.personas import NEW_PASSWORD, PASSWORD, first_login


def signed_in(user) -> Client:
    c = Client()
    assert c.post("/login", {"email": user.email, "password": PASSWORD}).status_code == 302
    return c


@pytest.fixture
def admin(org, make_sender):
    return personas.ada(org)


@pytest.fixture
def other_org(make_org, make_sender):
    org = personas.harbour()
    personas.hal(org)
    return org


def test_disabling_a_sender_ends_their_open_session_at_its_next_request(admin, make_sender, org, client_factory):
    new = make_sender(org, "new", "New Person")
    c = signed_in(admin)
    newcomer = client_factory()
    assert newcomer.post("/login", {"email": new.email, "password": PASSWORD}).status_code == 302
    assert newcomer.get("/app/").status_code == 200
    assert c.post(f"/app/admin/senders/{new.pk}/active", {"active": "0"}).status_code == 302
    r = newcomer.get("/app/")
    assert r.status_code == 302 and r["Location"].startswith("/login")  # signed out at once
    r = send(newcomer, to="bob@client.example")
    assert r.status_code == 302 and r["Location"].startswith("/login")
    assert not Message.objects.filter(author=new).exists()
    assert client_factory().post("/login", {"email": new.email, "password": PASSWORD}).status_code == 400
    assert "Disabled" in c.get("/app/admin/").content.decode()
    c.post(f"/app/admin/senders/{new.pk}/active", {"active": "1"})
    assert client_factory().post("/login", {"email": new.email, "password": PASSWORD}).status_code == 302


def test_admin_cannot_add_a_sender_outside_the_organisation(admin, other_org):
    r = signed_in(admin).post("/app/admin/", {"email": "x@harbour.example", "name": "X"})
    assert r.status_code == 400 and "your organisation&#x27;s domains" in r.content.decode()
    assert not User.objects.filter(email="x@harbour.example").exists()


def test_admin_cannot_disable_themselves(admin):
    signed_in(admin).post(f"/app/admin/senders/{admin.pk}/active", {"active": "0"})
    admin.refresh_from_db()
    assert admin.is_active


def test_an_admin_disabled_a_moment_ago_cannot_disable_anyone(admin, make_sender, org):
    # Ada's request was authenticated just before Bea disabled her.
    bea = make_sender(org, "bea", "Bea Admin", admin=True)
    ada_request = signed_in(admin)
    assert signed_in(bea).post(f"/app/admin/senders/{admin.pk}/active", {"active": "0"}).status_code == 302
    stale_ada = User.objects.get(pk=admin.pk)
    stale_ada.is_active = True
    with pytest.raises(Refused, match="Only an active admin"):
        set_active(bea, False, by=stale_ada)
    bea.refresh_from_db()
    assert bea.is_active
    assert ada_request.get("/app/admin/").status_code == 302  # and her session is over


@pytest.mark.django_db(transaction=True)
def test_two_admins_disabling_each_other_at_once_leave_one_active(org, make_sender):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite runs one writer at a time")
    ada = personas.ada(org)
    bea = make_sender(org, "bea", "Bea Admin", admin=True)
    ada_holds_the_lock, ada_may_commit = threading.Event(), threading.Event()
    outcome = {}

    def ada_disables_bea():
        try:
            with transaction.atomic():
                set_active(bea, False, by=ada)
                ada_holds_the_lock.set()
                ada_may_commit.wait(10)
            outcome["ada"] = "done"
        finally:
            connection.close()

    def bea_disables_ada():
        try:
            set_active(ada, False, by=bea)
            outcome["bea"] = "done"
        except Refused:
            outcome["bea"] = "refused"
        finally:
            connection.close()

    first = threading.Thread(target=ada_disables_bea)
    first.start()
    assert ada_holds_the_lock.wait(10)
    second = threading.Thread(target=bea_disables_ada)
    second.start()
    second.join(0.5)
    assert second.is_alive()  # Bea's change waits for Ada's to finish
    ada_may_commit.set()
    first.join(10)
    second.join(10)
    assert outcome == {"ada": "done", "bea": "refused"}
    assert User.objects.filter(org=org, is_org_admin=True, is_active=True).count() == 1


def test_admin_sends_a_sender_a_reset_link_and_never_sets_a_password(admin, alice, sender_client, smtp, deliver):
    c = signed_in(admin)
    page = c.get("/app/admin/").content.decode()
    assert "Send reset link" in page and f"/app/admin/senders/{alice.pk}/password" not in page
    # The old way in, setting her password, is gone.
    assert c.get(f"/app/admin/senders/{alice.pk}/password").status_code == 404
    assert c.post(f"/app/admin/senders/{alice.pk}/password", {"password": "Granite-violin-harbour-61"}).status_code == 404
    r = c.post(f"/app/admin/senders/{alice.pk}/reset", follow=True)
    assert "A password reset link is on its way to alice@northwind.example" in r.content.decode()
    deliver()
    mail = smtp.wait_for(alice.email, "Secure Messaging Password Reset")[-1]
    assert mail.to == alice.email and "#" in mail.link()  # to her alone; the secret in the fragment
    # Nothing changed for her until she uses it: her password and her session still work.
    assert sender_client.get("/app/").status_code == 200
    assert Client().post("/login", {"email": alice.email, "password": PASSWORD}).status_code == 302
    assert not any(m.to == admin.email for m in smtp.messages)
    # Asked again at once: no second e-mail, and the admin is told why.
    r = c.post(f"/app/admin/senders/{alice.pk}/reset", follow=True)
    assert "less than five minutes ago" in r.content.decode()
    deliver()
    assert len(smtp.to(alice.email, "Secure Messaging Password Reset")) == 1


def test_admin_sends_a_recipient_a_new_temporary_password(admin, alice, sender_client, smtp, deliver, org, client_factory):
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    recipient = User.objects.get(email="bob@client.example")
    c = signed_in(admin)
    page = c.get("/app/admin/recipients?q=bob").content.decode()
    assert "bob@client.example" in page and "Active" in page
    assert c.post(f"/app/admin/recipients/{recipient.pk}/reset").status_code == 302
    assert bob.get(f"/r/{org.slug}/").status_code == 302  # the old password's session is over
    deliver()
    temp = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT, count=2)[-1].temporary_password()
    assert Client().post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": NEW_PASSWORD}).status_code == 400
    fresh = Client()
    assert fresh.post(f"/r/{org.slug}/login", {"email": "bob@client.example", "password": temp}).status_code == 302
    assert fresh.get(f"/r/{org.slug}/")["Location"].startswith(f"/r/{org.slug}/password")


def test_policy_shapes_compose_and_notifications(admin, sender_client, smtp, deliver, org, alice, client_factory):
    c = signed_in(admin)
    r = c.post("/app/admin/policy", {
        "sender_name": "Northwind Secure", "notify_from_email": "secure@northwind.example",
        "default_read_receipt": "on", "default_restriction": "no_print", "default_expire_days": "7",
        "allowed_expiry": ["7", "30"], "temp_password_days": "3", "receipt_includes_subject": "on",
    })
    assert r.status_code == 302
    page = sender_client.get("/app/compose").content.decode()
    assert 'id="id_read_receipt" name="read_receipt" checked' in page
    assert 'value="no_print" checked' in page
    assert '<option value="7" selected>7 Days</option>' in page and 'value="1"' not in page.split('id_expire_days')[1][:400]
    r = send(sender_client, to="bob@client.example", expire_days=1)
    assert r.status_code == 400 and "does not allow that expiry" in r.content.decode()
    send(sender_client, to="bob@client.example", subject="Tuesday appointment", expire_days=7, read_receipt=True)
    deliver()
    mail = smtp.wait_for("bob@client.example", PASSWORD_SUBJECT)[0]
    assert "secure@northwind.example" in str(mail.message["From"]) and "Northwind Secure" in str(mail.message["From"])
    assert "for 3 days" in mail.text
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    bob.get(f"/r/{org.slug}/m/{Message.objects.get().uid}")
    deliver()
    [receipt] = smtp.to(alice.email, "Secure Messaging Read Receipt")
    assert "Tuesday appointment" in receipt.text


def test_policy_refuses_a_default_outside_the_allowed_choices(admin):
    r = signed_in(admin).post("/app/admin/policy", {
        "sender_name": "N", "default_restriction": "none", "default_expire_days": "0",
        "allowed_expiry": ["7"], "temp_password_days": "7"})
    assert r.status_code == 400 and "one of the allowed choices" in r.content.decode()


def test_policy_sets_the_attachment_limits(admin, org):
    c = signed_in(admin)
    assert c.post("/app/admin/policy", _policy(max_file_mb="2048", max_message_mb="4096")).status_code == 302
    org.refresh_from_db()
    assert (org.max_file_mb, org.max_message_mb) == (2048, 4096)
    assert c.post("/app/admin/policy", _policy()).status_code == 302  # left empty: unchanged
    org.refresh_from_db()
    assert (org.max_file_mb, org.max_message_mb) == (2048, 4096)
    r = c.post("/app/admin/policy", _policy(max_file_mb="500", max_message_mb="100"))
    assert r.status_code == 400 and "cannot be larger than the total" in r.content.decode()
    r = c.post("/app/admin/policy", _policy(max_file_mb="0"))
    assert r.status_code == 400


def test_policy_refuses_line_breaks_in_the_display_name(admin):
    r = signed_in(admin).post("/app/admin/policy", {
        "sender_name": "N\r\nBcc: x@evil.example", "default_restriction": "none",
        "default_expire_days": "0", "allowed_expiry": ["0"], "temp_password_days": "7"})
    assert r.status_code == 400


@pytest.mark.parametrize("path", [
    "/app/admin/", "/app/admin/recipients", "/app/admin/policy", "/app/admin/messages", "/app/admin/audit",
    "/app/admin/audit?format=csv",
])
def test_senders_who_are_not_admins_get_nothing(sender_client, path):
    assert sender_client.get(path).status_code == 404


def test_an_admin_cannot_reach_another_organisations_people(admin, other_org, make_sender, smtp, deliver):
    theirs = User.objects.get(email="hal@harbour.example")
    outsider_sender = make_sender(other_org, "sue", "Sue")
    c = signed_in(outsider_sender)
    send(c, to="zed@client.example")
    deliver()
    their_recipient = User.objects.get(email="zed@client.example", org=other_org)
    mine = signed_in(admin)
    before = Notification.objects.count()
    assert mine.post(f"/app/admin/senders/{theirs.pk}/active", {"active": "0"}).status_code == 404
    assert mine.post(f"/app/admin/senders/{theirs.pk}/reset").status_code == 404
    assert mine.post(f"/app/admin/recipients/{their_recipient.pk}/reset").status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active and Notification.objects.count() == before
    listing = mine.get("/app/admin/").content.decode() + mine.get("/app/admin/recipients?q=zed").content.decode()
    assert "harbour.example" not in listing and "zed@client.example" not in listing


def _policy(**changes):
    data = {"sender_name": "Northwind", "default_restriction": "none", "default_expire_days": "7",
            "allowed_expiry": ["7", "30"], "temp_password_days": ""}
    data.update(changes)
    return data


def test_a_sender_cannot_skip_a_required_expiry(admin, sender_client):
    assert signed_in(admin).post("/app/admin/policy", _policy()).status_code == 302
    for value in ("", None, "0"):
        extra = {} if value is None else {"expire_days": value}
        r = sender_client.post("/app/compose", {
            "to": "bob@client.example", "subject": "S", "body": "B", "send_token": "x" * 24,
            "confirm": "1", **extra})
        assert r.status_code == 400 and "Your organisation does not allow" in r.content.decode()
        assert "choose 7 or 30 days." in r.content.decode()
    assert Message.objects.count() == 0


def test_notifications_may_only_come_from_the_organisations_domains(admin):
    c = signed_in(admin)
    for address in ("ceo@bank.example", "a@bücher.example"):
        r = c.post("/app/admin/policy", _policy(notify_from_email=address))
        assert r.status_code == 400 and "at your organisation" in r.content.decode()


def test_an_empty_lifetime_uses_the_deployments(admin, sender_client, smtp, deliver, settings):
    settings.TEMP_PASSWORD_DAYS = 2
    assert signed_in(admin).post("/app/admin/policy", _policy()).status_code == 302
    send(sender_client, to="bob@client.example", expire_days=7)
    deliver()
    assert "for 2 days" in smtp.wait_for("bob@client.example", PASSWORD_SUBJECT)[0].text


