"""Times are shown in the viewer's time zone: the account's, else the browser's, else the organisation's.

E-mails, which no browser reads first, use the account's zone, else the organisation's.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from hushpost.accounts.models import User
from hushpost.lib import clock, zones
from hushpost.messaging.models import Delivery, Message
from tests.helpers import MESSAGE_SUBJECT, path_of, run_cli, send, signed_in_as
from tests.personas import first_login

WINTER = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)  # 13:00 in Berlin (CET), 07:00 in New York (EST)
SUMMER = datetime(2026, 7, 15, 12, 0, tzinfo=UTC)  # 14:00 in Berlin (CEST)


def _sent_at(moment: datetime) -> Message:
    message = Message.objects.get(kind="message")
    Message.objects.filter(pk=message.pk).update(created_at=moment)
    Delivery.objects.filter(message=message).update(created_at=moment)  # an Inbox lists when it arrived
    return message


def _travel_to(moment: datetime) -> None:
    clock.freeze()
    clock.travel(moment - clock.now())


def test_a_sender_in_berlin_sees_sent_times_in_cet_and_cest(sender_client, alice):
    r = sender_client.post("/app/account/time-zone", {"time_zone": "Europe/Berlin"})
    assert r.status_code == 302 and r["Location"] == "/app/account"
    assert "Times are now shown in Europe/Berlin." in sender_client.get("/app/account").content.decode()
    send(sender_client, to="bob@client.example", subject="Scan results")
    message = _sent_at(WINTER)
    assert "15 Jan 2026, 13:00 CET" in sender_client.get("/app/sent").content.decode()
    page = sender_client.get(f"/app/m/{message.uid}").content.decode()
    assert "Thursday 15 January 2026, 13:00 CET" in page
    assert 'datetime="2026-01-15T13:00:00+01:00"' in page
    _sent_at(SUMMER)
    assert "15 Jul 2026, 14:00 CEST" in sender_client.get("/app/sent").content.decode()
    assert "Wednesday 15 July 2026, 14:00 CEST" in sender_client.get(f"/app/m/{message.uid}").content.decode()


def test_automatic_goes_back_to_the_browsers_zone(sender_client, alice):
    sender_client.post("/app/account/time-zone", {"time_zone": "Europe/Berlin"})
    r = sender_client.post("/app/account/time-zone", {"time_zone": ""})
    assert r.status_code == 302
    alice.refresh_from_db()
    assert alice.time_zone == ""
    sender_client.cookies[zones.COOKIE] = "Asia/Tokyo"
    send(sender_client, to="bob@client.example")
    _sent_at(WINTER)
    assert "15 Jan 2026, 21:00 JST" in sender_client.get("/app/sent").content.decode()


def test_the_accounts_zone_beats_the_browsers(sender_client, alice):
    sender_client.post("/app/account/time-zone", {"time_zone": "Europe/Berlin"})
    sender_client.cookies[zones.COOKIE] = "Asia/Tokyo"
    send(sender_client, to="bob@client.example")
    _sent_at(WINTER)
    assert "15 Jan 2026, 13:00 CET" in sender_client.get("/app/sent").content.decode()


def test_a_recipient_with_no_setting_sees_the_organisations_zone(sender_client, client_factory, smtp, deliver, org):
    org.time_zone = "America/New_York"
    org.save()
    send(sender_client, to="bob@client.example", subject="Scan results")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    message = _sent_at(WINTER)
    assert User.objects.get(email="bob@client.example").time_zone == ""
    assert "15 Jan 2026, 07:00 EST" in bob.get(f"/r/{org.slug}/").content.decode()
    page = bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    assert "Thursday 15 January 2026, 07:00 EST" in page


@pytest.mark.parametrize("cookie", ["Mars/Olympus_Mons", "../../../etc/localtime", "localtime", "Europe/Berlin\\x00",
                                    "x" * 300, ""])
def test_a_zone_cookie_that_is_no_zone_is_ignored(sender_client, org, cookie):
    org.time_zone = "America/New_York"
    org.save()
    sender_client.cookies[zones.COOKIE] = cookie
    send(sender_client, to="bob@client.example")
    _sent_at(WINTER)
    r = sender_client.get("/app/sent")
    assert r.status_code == 200 and "15 Jan 2026, 07:00 EST" in r.content.decode()


@pytest.mark.parametrize("value", ["Mars/Olympus_Mons", "localtime", "Factory", "../etc/passwd", "europe/berlin",
                                   "Europe/Berlin " + "x" * 100])
def test_a_zone_that_is_not_on_the_list_is_refused(sender_client, client_factory, smtp, deliver, org, alice, value):
    r = sender_client.post("/app/account/time-zone", {"time_zone": value})
    assert r.status_code == 400
    assert "Choose a time zone from the list." in r.content.decode()
    alice.refresh_from_db()
    assert alice.time_zone == ""


def test_a_recipient_chooses_a_zone_on_the_account_page(sender_client, client_factory, smtp, deliver, org):
    send(sender_client, to="bob@client.example")
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    page = bob.get(f"/r/{org.slug}/password").content.decode()
    assert "Automatic (your browser's zone)" in page and '<option value="Europe/Berlin">Berlin</option>' in page
    r = bob.post(f"/r/{org.slug}/time-zone", {"time_zone": "Europe/Berlin"})
    assert r.status_code == 302 and r["Location"] == f"/r/{org.slug}/password"
    message = _sent_at(WINTER)
    assert "Thursday 15 January 2026, 13:00 CET" in bob.get(f"/r/{org.slug}/m/{message.uid}").content.decode()
    r = bob.post(f"/r/{org.slug}/time-zone", {"time_zone": "Nowhere/Special"})
    assert r.status_code == 400 and "Choose a time zone from the list." in r.content.decode()


def test_the_admin_sets_the_organisations_zone_on_the_policy_page(client, org, make_sender):
    ada = make_sender(org, "ada", "Ada Admin", admin=True)
    signed_in_as(client, ada)
    page = client.get("/app/admin/policy").content.decode()
    assert '<option value="UTC" selected>UTC</option>' in page
    policy = {"sender_name": "Northwind", "default_restriction": "none", "default_expire_days": "7",
              "allowed_expiry": ["7", "30"], "temp_password_days": ""}
    r = client.post("/app/admin/policy", {**policy, "time_zone": "Atlantis/Capital"})
    assert r.status_code == 400 and "Choose a time zone from the list." in r.content.decode()
    assert client.post("/app/admin/policy", {**policy, "time_zone": "Europe/Lisbon"}).status_code == 302
    org.refresh_from_db()
    assert org.time_zone == "Europe/Lisbon"
    assert client.post("/app/admin/policy", policy).status_code == 302  # left out: unchanged
    org.refresh_from_db()
    assert org.time_zone == "Europe/Lisbon"


def test_a_new_organisation_starts_with_the_deployments_default(settings, make_org):
    settings.DEFAULT_TIME_ZONE = "Europe/Oslo"
    assert make_org("Fjord Clinic", "fjord.example").time_zone == "Europe/Oslo"


def test_the_message_notification_gives_the_expiry_in_the_recipients_zone(sender_client, smtp, deliver, org):
    # Bob chose Tokyo; Carol chose nothing and gets the organisation's New York.
    org.time_zone = "America/New_York"
    org.save()
    send(sender_client, to="bob@client.example")
    deliver()
    User.objects.filter(email="bob@client.example").update(time_zone="Asia/Tokyo")
    _travel_to(WINTER)
    send(sender_client, to="bob@client.example, carol@client.example", expire_days=7)
    deliver()
    to_bob = smtp.wait_for("bob@client.example", MESSAGE_SUBJECT, count=2)[-1]
    to_carol = smtp.wait_for("carol@client.example", MESSAGE_SUBJECT)[-1]
    assert "The message expires on 22 January 2026, 21:00 JST." in to_bob.text
    assert "22 January 2026, 21:00 JST" in to_bob.html
    assert "The message expires on 22 January 2026, 07:00 EST." in to_carol.text
    assert "22 January 2026, 07:00 EST" in to_carol.html
    # The Date header stays RFC 5322, as the server writes it.
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{1,2} [A-Z][a-z]{2} \d{4} \d\d:\d\d:\d\d [+-]\d{4}", str(to_bob.message["Date"]))


def test_the_read_receipt_gives_the_opening_time_in_the_senders_zone(sender_client, client_factory, smtp,
                                                                       deliver, org, alice):
    sender_client.post("/app/account/time-zone", {"time_zone": "Europe/Berlin"})
    send(sender_client, to="bob@client.example", read_receipt=True)
    deliver()
    bob = client_factory()
    first_login(bob, smtp, org, "bob@client.example")
    notice = smtp.wait_for("bob@client.example", MESSAGE_SUBJECT)[0]
    _travel_to(SUMMER)
    bob.cookies[zones.COOKIE] = "Asia/Tokyo"  # the reader's browser says nothing about the sender's e-mail
    r = bob.get(path_of(notice.link()))
    assert bob.get(r["Location"]).status_code == 200
    deliver()
    [receipt] = smtp.wait_for(alice.email, "Secure Messaging Read Receipt")
    assert "first opened it on 15 July 2026 at 14:00 CEST." in receipt.text
    assert "15 July 2026 at 14:00 CEST" in receipt.html


def test_a_default_zone_zoneinfo_does_not_know_stops_hushpost_in_one_line(cli_env):
    r = run_cli(cli_env | {"HUSHPOST_DEFAULT_TIME_ZONE": "Mars/Olympus_Mons"}, "check")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "HUSHPOST_DEFAULT_TIME_ZONE must be a time zone such as Europe/Berlin, not 'Mars/Olympus_Mons'" in r.stderr
    assert run_cli(cli_env | {"HUSHPOST_DEFAULT_TIME_ZONE": "Europe/Berlin"}, "check").returncode == 0
