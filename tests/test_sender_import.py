"""An admin invites many senders from a CSV file: every line checked first, nothing made until confirmed."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.notifications.models import Notification
from tests import personas
from tests.personas import signed_in_sender

INVITED = "You're invited to Northwind Health's secure messaging portal"
IMPORT = "/app/admin/senders/import"
CSV = """E-mail address,Name,Admin
nia@northwind.example,Nia Okoro,no
Omar@Northwind.example,Omar Haddad,yes
not-an-address,Someone,
alice@northwind.example,Alice Again,
x@harbour.example,Outsider,
nia@northwind.example,Nia Twice,
pat@northwind.example,,
quinn@northwind.example,Quinn,maybe
ro\x00b@northwind.example,Rob,
"""


@pytest.fixture
def admin(org):
    return personas.ada(org)



def upload(c: Client, data: bytes, name: str = "senders.csv"):
    return c.post(IMPORT, {"senders_csv": SimpleUploadedFile(name, data, "text/csv")})


def line(page: str, n: int) -> str:
    return re.search(rf'<tr data-line="{n}">.*?</tr>', page, re.S).group(0)


def test_an_admin_checks_a_list_then_invites_the_senders_on_it(admin, alice, smtp, deliver):
    personas.harbour()
    c = signed_in_sender(admin)
    assert "Import many from a CSV file" in c.get("/app/admin/").content.decode()
    r = upload(c, CSV.encode())
    page = r.content.decode()
    assert r.status_code == 200
    assert "2 senders will be invited; 7 lines cannot be used" in page
    assert "Will be invited" in line(page, 2) and "Sender" in line(page, 2)
    assert "Will be invited" in line(page, 3) and "Admin" in line(page, 3) and "omar@northwind.example" in line(page, 3)
    assert "is not an e-mail address" in line(page, 4)
    assert "already has a sender account" in line(page, 5)
    assert "your organisation&#x27;s domains" in line(page, 6)
    assert "already on an earlier line" in line(page, 7)
    assert "The name is missing" in line(page, 8)
    assert "Admin should be yes or no" in line(page, 9)
    assert "control character" in line(page, 10)
    assert not User.objects.filter(email__in=["nia@northwind.example", "omar@northwind.example"]).exists()
    assert not Notification.objects.filter(kind="invitation").exists()  # nothing until confirmed

    r = c.post(IMPORT, {"action": "confirm"}, follow=True)
    assert "2 invitations on the way" in r.content.decode()
    nia, omar = User.objects.get(email="nia@northwind.example"), User.objects.get(email="omar@northwind.example")
    assert not nia.is_org_admin and omar.is_org_admin and omar.org_id == admin.org_id
    assert not nia.has_usable_password() and not omar.has_usable_password()
    assert "Invited" in r.content.decode()
    deliver()
    assert smtp.wait_for("nia@northwind.example", INVITED) and smtp.wait_for("omar@northwind.example", INVITED)
    assert AuditEvent.objects.filter(action=AuditEvent.Action.INVITATION_SENT, actor=admin).count() == 2
    # The list is used once: confirming again adds nobody.
    r = c.post(IMPORT, {"action": "confirm"}, follow=True)
    assert "That list is gone" in r.content.decode()
    assert Notification.objects.filter(kind="invitation").count() == 2


def test_a_sender_added_between_check_and_confirm_is_reported_not_added_twice(admin, make_sender, org, smtp, deliver):
    c = signed_in_sender(admin)
    upload(c, b"nia@northwind.example,Nia Okoro\nomar@northwind.example,Omar Haddad\n")
    make_sender(org, "omar", "Omar Haddad")  # someone else added him meanwhile
    r = c.post(IMPORT, {"action": "confirm"}, follow=True)
    page = r.content.decode()
    assert "1 invitation on the way" in page and "Line 2, omar@northwind.example: " in page
    deliver()
    assert not smtp.to("omar@northwind.example", INVITED)


@pytest.mark.parametrize(("data", "says"), [
    ("Nia;Okoro é".encode("latin-1"), "is not UTF-8 text"),
    (b"email,name\n\n", "has no senders in it"),
    (b"a@northwind.example,A\n" * 501, "at most 500 at a time"),
    (b"x" * (300 * 1024), "larger than 256 KB"),
])
def test_a_file_that_cannot_be_read_is_explained(admin, data, says):
    r = upload(signed_in_sender(admin), data)
    assert r.status_code == 400 and says in r.content.decode()
    assert User.objects.count() == 1


def test_no_file_is_explained_and_a_sender_who_is_not_an_admin_cannot_import(admin, alice):
    r = signed_in_sender(admin).post(IMPORT, {})
    assert r.status_code == 400 and "Choose a CSV file" in r.content.decode()
    mallory = signed_in_sender(alice)
    assert mallory.get(IMPORT).status_code == 404
    assert upload(mallory, b"eve@northwind.example,Eve\n").status_code == 404
    assert mallory.post(IMPORT, {"action": "confirm"}).status_code == 404
    assert not User.objects.filter(email="eve@northwind.example").exists()


def test_an_address_too_long_to_store_is_a_line_problem_not_a_failure(admin, smtp, deliver):
    """Longer than the 254 characters an account's address holds (yet well-formed: 64 + 1 + 189)."""
    long_address = "l" * 64 + "@" + "a" * 60 + "." + "b" * 60 + "." + "c" * 55 + ".northwind.example"
    c = signed_in_sender(admin)
    page = upload(c, f"E-mail address,Name,Admin\n{long_address},Lena Long,no\nnia@northwind.example,Nia,no\n"
                  .encode()).content.decode()
    assert "longer than an address can be" in line(page, 2)
    assert "Will be invited" in line(page, 3)
    assert "2 invitations" not in c.post(IMPORT, {"action": "confirm"}, follow=True).content.decode()
    assert list(User.objects.filter(email__endswith="northwind.example", name__in=["Lena Long", "Nia"])
                .values_list("email", flat=True)) == ["nia@northwind.example"]
