"""One real e-mail of every kind Hushpost sends, produced the way a person causes it and received
by the SMTP server on loopback (``tests/smtp.py``), for the tests that judge e-mails as a receiving
mail server would (DKIM, spam scores).

A kind registered in ``hushpost/notifications/kinds.py`` without a way here fails those tests,
so a new kind of e-mail cannot go unjudged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from io import StringIO

from django.core.management import call_command
from django.test import Client, override_settings

from hushpost.gateway import spool
from hushpost.gateway.access import Client as Relay
from hushpost.lib import clock
from hushpost.messaging.models import Message
from hushpost.notifications import bounces, kinds
from hushpost.orgs.models import Organization
from tests.gateway_mail import as_bytes, delivery_report, headers_of, mail
from tests.helpers import path_of, run_worker, send
from tests.personas import first_login
from tests.smtp import Received, SmtpSink

BOB = "bob@client.example"
CAROL = "carol@client.example"  # never opens her message: reminded
DAVE = "dave@client.example"  # an address that bounces
WRONG = "Wrong-password-123"  # noqa: S105 - a deliberately wrong password


@dataclass
class Scene:
    """Northwind Health, Alice signed in, and the SMTP server that receives what the worker sends."""

    org: Organization
    alice_email: str
    sender_client: Client
    smtp: SmtpSink
    bob: Client | None = None


def _message_and_password(scene: Scene) -> None:
    """Alice writes to Bob, who has no account yet: his temporary password, then the message notice."""
    assert send(scene.sender_client, to=BOB, subject="Your test results", read_receipt=True).status_code == 302
    run_worker()
    scene.bob = Client()
    first_login(scene.bob, scene.smtp, scene.org, BOB)


def _read_receipt(scene: Scene) -> None:
    if scene.bob is None:
        _message_and_password(scene)
    notice = scene.smtp.to(BOB, subject_of("message", scene.org))[-1]
    r = scene.bob.get(path_of(notice.link()))
    scene.bob.get(r["Location"])
    run_worker()


def _reply(scene: Scene) -> None:
    if scene.bob is None:
        _message_and_password(scene)
    message = Message.objects.filter(kind="message", deliveries__recipient__email=BOB).latest("pk")
    r = scene.bob.post(f"/r/{scene.org.slug}/m/{message.uid}/reply",
                       {"body": "Thank you, see you Tuesday.", "send_token": "t" * 24})
    assert r.status_code == 302
    run_worker()


def _lockout(scene: Scene) -> None:
    c = Client()
    for _ in range(6):
        c.post("/login", {"email": scene.alice_email, "password": WRONG}, REMOTE_ADDR="203.0.113.7")
        clock.travel(timedelta(seconds=61))  # past each wait the throttle asks for
    run_worker()


def _reset(scene: Scene) -> None:
    Client().post("/forgot", {"email": scene.alice_email})
    run_worker()


def _portals(scene: Scene) -> None:
    if scene.bob is None:
        _message_and_password(scene)
    Client().post("/find-my-portal", {"email": BOB})
    run_worker()


def _invitation(scene: Scene) -> None:
    call_command("user", "add", "--email", "eve@northwind.example", "--name", "Eve Tan", "--invite",
                 stdout=StringIO())
    run_worker()


def _reminder(scene: Scene) -> None:
    """Carol does not open her message; a day later she is reminded, and Alice told."""
    org = scene.org
    org.remind_after_days, org.remind_times, org.remind_tells_sender = 1, 1, True
    org.save()
    assert send(scene.sender_client, to=CAROL, subject="Your appointment").status_code == 302
    run_worker()
    clock.travel(timedelta(days=1, hours=1))
    with override_settings(REMINDER_INTERVAL=0):  # the job runs at every round; the days decide
        run_worker()
        run_worker()  # the note to the sender, queued once the relay took the reminder


def _bounce(scene: Scene) -> None:
    """Dave's mail server returns his notification: its report, as the gateway hands it on, tells
    Alice by a Delivery Failure."""
    with override_settings(BOUNCE_ADDRESS="bounces@bounce.northwind.example"):
        assert send(scene.sender_client, to=DAVE, subject="Your invoice").status_code == 302
        run_worker()
        notice = scene.smtp.wait_for(DAVE, subject_of("message", scene.org))[-1]
        report = delivery_report(notice.mail_from, DAVE, headers_of(notice.message, notice.mail_from))
        assert bounces.receive(report, [notice.mail_from]) == "bounced"
        run_worker()


def _not_sent(scene: Scene) -> None:
    """Alice's mail server relays to the spool an e-mail whose From is not hers: the worker
    refuses it and tells her."""
    forged = mail("[secure] Your invoice", "Attached.\n", sender="mallory@northwind.example")
    reply = spool.accept(as_bytes(forged), mail_from=scene.alice_email, rcpt_tos=[BOB],
                         client=Relay(ip=None, auth_org_id=scene.org.pk))
    assert reply.code == 250, reply
    run_worker()


# Each kind: who receives it, and what causes it.
WAYS: dict[str, tuple[Callable[[Scene], str], Callable[[Scene], None]]] = {
    "password": (lambda scene: BOB, _message_and_password),
    "message": (lambda scene: BOB, _message_and_password),
    "read_receipt": (lambda scene: scene.alice_email, _read_receipt),
    "reply": (lambda scene: scene.alice_email, _reply),
    "lockout": (lambda scene: scene.alice_email, _lockout),
    "reset": (lambda scene: scene.alice_email, _reset),
    "portals": (lambda scene: BOB, _portals),
    "invitation": (lambda scene: "eve@northwind.example", _invitation),
    "reminder": (lambda scene: CAROL, _reminder),
    "reminder_sent": (lambda scene: scene.alice_email, _reminder),
    "bounce": (lambda scene: scene.alice_email, _bounce),
    "not_sent": (lambda scene: scene.alice_email, _not_sent),
}


def subject_of(kind: str, org: Organization) -> str:
    registered = kinds.registered()[kind]
    return registered.subject.format(org=org.name) if registered.subject_names_org else registered.subject


def every_kind(scene: Scene) -> tuple[dict[str, Received], list[str]]:
    """One received e-mail of each registered kind, and the kinds this module has no way to produce."""
    found: dict[str, Received] = {}
    missing = []
    for kind in kinds.registered():
        if kind not in WAYS:
            missing.append(kind)
            continue
        to, cause = WAYS[kind]
        subject = subject_of(kind, scene.org)
        if not scene.smtp.to(to(scene), subject):
            cause(scene)
        [found[kind], *_] = scene.smtp.wait_for(to(scene), subject)
    return found, missing

