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


OPS_PASSWORD = "Operator-granite-meadow-88"


def totp_now(secret: str, offset: int = 0) -> str:
    import pyotp

    from hushpost.lib import clock

    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(clock.now()) + offset)


def ops_enrol(client, email: str, password: str = OPS_PASSWORD) -> tuple[str, list[str]]:
    """An operator's first sign-in at /ops/: the password, then setting up the authenticator app."""
    import re

    r = client.post("/ops/login/", {"username": email, "password": password})
    assert r.status_code == 302 and r["Location"] == "/ops/login/enrol/", r.content[:400]
    page = client.get("/ops/login/enrol/").content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    r = client.post("/ops/login/enrol/", {"code": totp_now(secret)})
    assert r.status_code == 200 and "Keep these recovery codes somewhere safe" in r.content.decode()
    return secret, re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", r.content.decode())

