"""The people in Hushpost's tests, and how each of them comes to be.

Northwind Health (``northwind.example``) is the organisation most tests are about:

* **Alice Moreno** (``alice@northwind.example``), a sender, signs in with ``PASSWORD``;
* **Ada Admin** (``ada@northwind.example``), its organisation admin, with ``PASSWORD`` too;
* **Bob** (``bob@client.example``), a recipient: his account comes with the first message
  sent to him; he signs in with the e-mailed temporary password and chooses ``NEW_PASSWORD``.

**Harbour Legal** (``harbour.example``) is the other organisation, and **Hal Admin** its
admin: nothing of Northwind's is his to see or change. **Charlie** (``charlie@ops.example``)
operates the deployment at ``/ops/`` with ``OPS_PASSWORD`` and an authenticator app.

The conftest fixtures (``org``, ``alice``, ``make_org``, ``make_sender``, ``sender_client``,
``world``) are these functions; a test may call them itself too.

``World`` is the larger cast of the access and security tests, built through the portal
itself: see ``build_world``.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from django_tasks_db.models import DBTaskResult

from hushpost.accounts.actions import create_sender
from hushpost.accounts.models import Session, User
from hushpost.messaging.models import Delivery, Message
from hushpost.notifications.models import DevMail, Notification
from hushpost.notifications.relay import relay
from hushpost.orgs.actions import create_organization
from hushpost.orgs.models import Organization
from hushpost.sso.models import SingleSignOn
from hushpost.sso.secrets import seal_client_secret
from tests.helpers import PASSWORD_SUBJECT, run_worker, send, signed_in_as, totp_now
from tests.idp.oidc_provider import CLIENT_ID, CLIENT_SECRET

PASSWORD = "Correct-horse-battery-9"  # every sender's and admin's
NEW_PASSWORD = "Lantern-orchard-velvet-73"  # what a recipient chooses at the first sign-in
OPS_PASSWORD = "Operator-granite-meadow-88"  # the operator's

ALICE = "alice@northwind.example"
BOB = "bob@client.example"
CAROL = "carol@client.example"
CHARLIE = "charlie@ops.example"

_numbers = itertools.count(1)


# --- organisations and their staff ---------------------------------------------------------

def organisation(name: str = "Northwind Health", domain: str | None = None) -> Organization:
    """An organisation owning one mail domain (a fresh one unless given)."""
    return create_organization(name=name, domains=[domain or f"org{next(_numbers)}.example"])


def northwind() -> Organization:
    return organisation("Northwind Health", "northwind.example")


def harbour() -> Organization:
    """The other organisation."""
    return organisation("Harbour Legal", "harbour.example")


def sender(org: Organization, local: str = "alice", name: str = "Alice Moreno", admin: bool = False) -> User:
    """A sender at the organisation's first domain, with ``PASSWORD``."""
    domain = org.domains.first().name
    return create_sender(email=f"{local}@{domain}", name=name, password=PASSWORD, admin=admin)


def ada(org: Organization) -> User:
    """The organisation's admin."""
    return sender(org, "ada", "Ada Admin", admin=True)


def hal(org: Organization) -> User:
    """The other organisation's admin."""
    return sender(org, "hal", "Hal Admin", admin=True)


def oidc_sign_on(org: Organization, issuer: str, **rules) -> SingleSignOn:
    """Northwind's senders signing in through the test OpenID Connect provider at ``issuer``."""
    sso = SingleSignOn(org=org, protocol="oidc", oidc_issuer=issuer, oidc_client_id=CLIENT_ID,
                       oidc_client_secret_sealed=seal_client_secret(org.id, CLIENT_SECRET), **rules)
    sso.save()
    return sso


# --- signing in ---------------------------------------------------------------------------------

def signed_in_sender(user: User, password: str = PASSWORD) -> Client:
    """A sender's browser after the sign-in form (no second factor)."""
    client = Client()
    assert password_step(client, user.email, password).status_code == 302
    return client


def password_step(client: Client, email: str, password: str = PASSWORD):
    """The sender sign-in form's password step."""
    return client.post("/login", {"email": email, "password": password})


def first_login(client: Client, smtp, org: Organization, email: str, new_password: str = NEW_PASSWORD) -> str:
    """The recipient's first sign-in with the e-mailed temporary password; returns that password."""
    mail = smtp.wait_for(email, PASSWORD_SUBJECT)[-1]
    temp = mail.temporary_password()
    r = client.post(f"/r/{org.slug}/login", {"email": email, "password": temp})
    assert r.status_code == 302, r.content[:400]
    r = client.post(f"/r/{org.slug}/password", {"password": new_password, "confirm": new_password})
    assert r.status_code == 302, r.content[:400]
    return temp


def sign_in_again(client: Client, org: Organization, email: str, password: str = NEW_PASSWORD) -> None:
    """After days pass (the test clock), a recipient's session has ended: sign in as they would."""
    r = client.post(f"/r/{org.slug}/login", {"email": email, "password": password})
    assert r.status_code == 302, r.content[:400]


def ops_enrol(client: Client, email: str, password: str = OPS_PASSWORD) -> tuple[str, list[str]]:
    """An operator's first sign-in at /ops/: the password, then setting up the authenticator app."""
    r = client.post("/ops/login/", {"username": email, "password": password})
    assert r.status_code == 302 and r["Location"] == "/ops/login/enrol/", r.content[:400]
    page = client.get("/ops/login/enrol/").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    r = client.post("/ops/login/enrol/", {"code": totp_now(secret)})
    assert r.status_code == 200 and "Keep these recovery codes somewhere safe" in r.content.decode()
    return secret, re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", r.content.decode())


# --- the world of the access and security tests ------------------------------------------------

BOB_B_PASSWORD = "Copper-kettle-meadow-58"

# Distinctive strings: they must show up for the right person and nowhere else.
CONTENT = {
    "m1": ("Alpha biopsy results KX7PLW9ZRT", "<p>Alpha body <b>QZ1-benign-VW7</b></p>"),
    "m2": ("Bravo invoice dispute KX8MQV2HNB", "<p>Bravo body QZ2-settled-HX4</p>"),
    "mB": ("Charlie custody hearing KX9DFG4JSW", "<p>Charlie body QZ3-adjourned-PL2</p>"),
    "mB2": ("Delta tenancy notice KX0RTY6UCE", "<p>Delta body QZ4-evicted-MN8</p>"),
}
REPLY_BODY = "Echo reply QZ5-thanks-RB3"
# Each message carries one file: its bytes are a secret of their own.
FILES = {key: f"File of {key} FZ{n}-attached-{key}".encode() for n, key in enumerate(["m1", "m2", "mB", "mB2", "r1"])}
# What the pages would show: subjects, and a word of each body.
# Long enough never to turn up by chance in a hash, a salt or a token.
SECRETS = ["KX7PLW9ZRT", "KX8MQV2HNB", "KX9DFG4JSW", "KX0RTY6UCE", "QZ1-benign-VW7", "QZ2-settled-HX4",
           "QZ3-adjourned-PL2", "QZ4-evicted-MN8", "QZ5-thanks-RB3", *(f.decode().split()[-1] for f in FILES.values())]


@dataclass
class World:
    """Two organisations and their people, with messages between them.

    * Alice (sender, org A, Access North Clinic) sends m1 to Bob and m2 to Carol; Bob replies (r1).
    * Dave is a second sender of org A: he sees none of it.
    * Charlie (sender, org B, Access South Legal) sends mB to Erin and mB2 to bob@... in
      org B, which makes a *second* Bob account (bobb): one address, two organisations,
      two accounts, two passwords.
    """

    orgs: dict[str, Organization] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    notification: dict[str, int] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    def org_letter_of(self, target: str) -> str:
        return "B" if target.startswith("mB") else "A"

    def slug(self, org_letter: str = "A") -> str:
        return self.orgs[org_letter].slug

    def signed_in(self, persona: str, **client_kwargs) -> Client:
        """That persona's browser, signed in a moment ago; anyone's for ``"anon"``."""
        client = Client(**client_kwargs)
        return client if persona == "anon" else signed_in_as(client, self.users[persona])

    def pending_recipient(self, email: str = "pat@client.example") -> User:
        """Pat: a recipient of Alice's whose account exists but who has not chosen a password yet."""
        assert send(self.signed_in("alice"), to=email, subject="Pending")["Location"]
        return User.objects.get(role=User.Role.RECIPIENT, org=self.orgs["A"], email=email)


def _uid_from(response) -> str:
    assert response.status_code == 302, response.content[:500]
    return re.fullmatch(r"/app/m/([\w-]+)", response["Location"]).group(1)


def _first_login_with(client, smtp, org, email, new_password):
    """Sign in with the temporary password this organisation e-mailed, then choose one."""
    mails = [m for m in smtp.to(email, PASSWORD_SUBJECT) if f"/r/{org.slug}/" in m.link()]
    assert mails, f"no password e-mail from {org.slug} to {email}"
    r = client.post(f"/r/{org.slug}/login", {"email": email, "password": mails[-1].temporary_password()})
    assert r.status_code == 302, r.content[:400]
    r = client.post(f"/r/{org.slug}/password", {"password": new_password, "confirm": new_password})
    assert r.status_code == 302, r.content[:400]


def _upload(client, url: str, data: bytes, name: str) -> str:
    r = client.post(url, data=data, content_type="text/plain", HTTP_X_FILE_NAME=name)
    assert r.status_code == 201, r.content[:400]
    return r.json()["uid"]


def build_world(smtp) -> World:
    """Alice, Bob, Carol, Dave (org A); Charlie, Erin, Bob again (org B), through the real portal:
    HTTP sends, the real worker, a real SMTP sink, first sign-ins with the e-mailed passwords."""
    relay.close()  # an earlier test may have left the worker holding another backend
    smtp.clear()
    w = World()
    w.orgs["A"] = create_organization(name="Access North Clinic", domains=["access-north.example"])
    w.orgs["B"] = create_organization(name="Access South Legal", domains=["access-south.example"])
    for name, email in [("alice", "alice@access-north.example"), ("dave", "dave@access-north.example"),
                        ("charlie", "charlie@access-south.example")]:
        w.users[name] = create_sender(email=email, name=name.title(), password=PASSWORD)
    alice, charlie = Client(), Client()
    for client, name in ((alice, "alice"), (charlie, "charlie")):
        r = client.post("/login", {"email": w.users[name].email, "password": PASSWORD})
        assert r.status_code == 302, r.content[:400]
    for key, client, to in [("m1", alice, BOB), ("m2", alice, CAROL),
                            ("mB", charlie, "erin@patient.example"), ("mB2", charlie, BOB)]:
        subject, body = CONTENT[key]
        w.files[key] = _upload(client, "/app/files", FILES[key], f"{key}.txt")
        w.uids[key] = _uid_from(send(client, to=to, subject=subject, body=body, attachment=[w.files[key]]))
    run_worker()
    people = [("bob", "A", BOB, NEW_PASSWORD), ("carol", "A", CAROL, NEW_PASSWORD),
              ("erin", "B", "erin@patient.example", NEW_PASSWORD), ("bobb", "B", BOB, BOB_B_PASSWORD)]
    clients = {}
    for name, org_letter, email, password in people:
        clients[name] = Client()
        _first_login_with(clients[name], smtp, w.orgs[org_letter], email, password)
        w.users[name] = User.objects.get(role=User.Role.RECIPIENT, org=w.orgs[org_letter], email=email)
        w.passwords[name] = password
    w.files["r1"] = _upload(clients["bob"], f"/r/{w.orgs['A'].slug}/files", FILES["r1"], "r1.txt")
    r = clients["bob"].post(
        f"/r/{w.orgs['A'].slug}/m/{w.uids['m1']}/reply",
        {"body": REPLY_BODY, "body_format": "text", "send_token": secrets.token_urlsafe(24),
         "attachment": [w.files["r1"]]},
    )
    assert r.status_code == 302, r.content[:400]
    w.uids["r1"] = Message.objects.get(author=w.users["bob"], kind=Message.Kind.REPLY).uid
    run_worker()
    for key, uid in w.uids.items():
        kind = Notification.Kind.REPLY if key == "r1" else Notification.Kind.MESSAGE
        w.notification[key] = Notification.objects.get(delivery__message__uid=uid, kind=kind).pk
    assert Notification.objects.exclude(status=Notification.Status.SENT).count() == 0
    relay.close()
    return w


def destroy_world() -> None:
    """Remove everything the world committed, so other modules start empty."""
    Notification.objects.all().delete()
    Delivery.objects.all().delete()
    Message.objects.filter(kind=Message.Kind.REPLY).delete()
    Message.objects.all().delete()
    User.objects.all().delete()
    Organization.objects.all().delete()
    DBTaskResult.objects.all().delete()
    Session.objects.all().delete()
    DevMail.objects.all().delete()
    # The audit trail refuses deletion; the test database is emptied as a whole instead.
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("TRUNCATE audit_auditevent, audit_audithead")
        else:
            cursor.execute("DELETE FROM audit_auditevent")
            cursor.execute("DELETE FROM audit_audithead")


@contextmanager
def committed_world(smtp, unblock: Callable[[], AbstractContextManager]) -> Iterator[World]:
    """The world built and committed (``unblock`` opens the database outside a test), then removed."""
    with unblock(), override_settings(EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend"):
        try:
            built = build_world(smtp)
        except BaseException:
            destroy_world()
            raise
    try:
        yield built
    finally:
        with unblock():
            destroy_world()
