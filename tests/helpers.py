from __future__ import annotations

import secrets
from urllib.parse import urlsplit

NEW_PASSWORD = "Lantern-orchard-velvet-73"
PASSWORD_SUBJECT = "Secure Messaging Password Notification"
MESSAGE_SUBJECT = "Secure Messaging Notification"


def signed_in_as(client, user):
    """``force_login`` as a real sign-in leaves it: the owner has just confirmed it is them."""
    from hushpost.accounts.reauth import CONFIRMED
    from hushpost.lib import clock

    client.force_login(user, backend="hushpost.accounts.backends.HushpostBackend")
    session = client.session
    session[CONFIRMED] = {"user": user.pk, "at": clock.now().timestamp()}
    session.save()
    return client


def send(client, *, to, subject="Test results", body="<p>Your results are <b>normal</b>.</p>",
         cc="", read_receipt=False, restriction="none", expire_days=0, token=None, **extra):
    data = {
        "to": to, "cc": cc, "subject": subject, "body": body, "body_format": "html",
        "restriction": restriction, "expire_days": str(expire_days),
        "send_token": token or secrets.token_urlsafe(24), "confirm": "1", **extra,
    }
    if read_receipt:
        data["read_receipt"] = "on"
    return client.post("/app/compose", data)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def first_login(client, smtp, org, email, new_password=NEW_PASSWORD):
    """The recipient's first sign-in with the e-mailed temporary password."""
    mail = smtp.wait_for(email, PASSWORD_SUBJECT)[-1]
    temp = mail.temporary_password()
    r = client.post(f"/r/{org.slug}/login", {"email": email, "password": temp})
    assert r.status_code == 302, r.content[:400]
    r = client.post(f"/r/{org.slug}/password", {"password": new_password, "confirm": new_password})
    assert r.status_code == 302, r.content[:400]
    return temp


def sign_in_again(client, org, email, password=NEW_PASSWORD):
    """After days pass (the test clock), a recipient's session has ended: sign in as they would."""
    r = client.post(f"/r/{org.slug}/login", {"email": email, "password": password})
    assert r.status_code == 302, r.content[:400]
