"""Steps anyone takes in the tests, whoever they are: sending, uploading, signing in as a
given account, delivering the e-mails owed, running the ``hushpost`` command.

Who the people are, and their passwords, is ``tests/personas.py``.
"""

from __future__ import annotations

import datetime
import re
import secrets
import subprocess
import sys
import threading
from pathlib import Path
from unittest import mock
from urllib.parse import quote, urlsplit

import pyotp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connections
from django.test import Client

from hushpost.accounts.reauth import CONFIRMED
from hushpost.lib import clock
from hushpost.server import background

ROOT = Path(__file__).resolve().parent.parent
PASSWORD_SUBJECT = "Secure Messaging Password Notification"
MESSAGE_SUBJECT = "Secure Messaging Notification"
SESSION_COOKIE = "hushpost_session"
BACKEND = "hushpost.accounts.backends.HushpostBackend"  # what a real sign-in records


def signed_in_as(client, user):
    """``force_login`` as a real sign-in leaves it: the owner has just confirmed it is them."""
    client.force_login(user, backend=BACKEND)
    session = client.session
    session[CONFIRMED] = {"user": user.pk, "at": clock.now().timestamp()}
    session.save()
    return client


def send(client, *, to, subject="Test results", body="<p>Your results are <b>normal</b>.</p>",
         cc="", read_receipt=False, restriction="none", expire_days=0, token=None, **extra):
    """Compose, then "Send securely" in the options dialog."""
    data = {
        "to": to, "cc": cc, "subject": subject, "body": body, "body_format": "html",
        "restriction": restriction, "expire_days": str(expire_days),
        "send_token": token or secrets.token_urlsafe(24), "confirm": "1", **extra,
    }
    if read_receipt:
        data["read_receipt"] = "on"
    return client.post("/app/compose", data)


def upload(client, data: bytes, name: str, url="/app/files", content_type="application/pdf"):
    """One file, posted on its own as the page's script posts it."""
    return client.post(url, data=data, content_type=content_type, HTTP_X_FILE_NAME=quote(name))


def content_of(response) -> bytes:
    return b"".join(response.streaming_content)


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def post_link(client, link, **extra):
    """What the page of an e-mailed link (reset, invitation) does with the fragment: post it, once."""
    path, _, fragment = link.partition("#")
    return client.post(path, {"link": fragment}, **extra)


def open_link(client, link) -> str:
    """Follow the e-mailed link: the token moves into the session; the form's address has none."""
    path = link.partition("#")[0]
    assert client.get(path).status_code == 200  # what a server (or a mail scanner) is ever sent
    r = post_link(client, link)
    assert r.status_code == 302, r.status_code
    assert r["Location"] == path
    return path


def link_in(mail) -> str:
    """An e-mailed link as the page's path and the fragment after '#' that only the browser sees."""
    url = mail.link()
    return path_of(url.split("#", 1)[0]) + "#" + url.split("#", 1)[1]


def run_worker() -> None:
    """Deliver every notification that is due, as `hushpost worker` would.

    It is the real worker loop in batch mode; only its connection recycling
    is switched off, because inside a test's transaction it would close the
    connection the test is using.
    """
    with mock.patch.object(background, "close_old_connections", lambda: None):
        background.BackgroundWorker(interval=0, batch=True, heartbeat=False).run()


def workers_at_once(count: int, rounds: int, job) -> list[str]:
    """``count`` workers (threads, each with its own database connection), starting each round together;
    the names of those whose ``job(name)`` answered yes, once per round."""
    barrier, ran = threading.Barrier(count), []

    def worker(name):
        try:
            for _ in range(rounds):
                barrier.wait()
                if job(name):
                    ran.append(name)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(f"machine-{n}",)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return ran


# --- two-factor sign-in -----------------------------------------------------------------------

def totp_now(secret: str, offset: int = 0) -> str:
    """The authenticator app's code now (``offset`` steps of 30 s away)."""
    totp = pyotp.TOTP(secret)
    return totp.generate_otp(totp.timecode(clock.now()) + offset)


def enrol(client: Client, here: str) -> tuple[str, list[str]]:
    """Turn two-factor sign-in on at the settings page ``here``: the secret and the recovery codes."""
    page = client.get(here).content.decode()
    secret = re.search(r'<code class="secret">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")
    assert "<svg" in page  # the QR code, inline
    r = client.post(here, {"action": "enable", "code": totp_now(secret)})
    assert r.status_code == 200 and "Keep these recovery codes somewhere safe" in r.content.decode()
    codes = re.findall(r"<code>([a-z2-9]{5}-[a-z2-9]{5})</code>", r.content.decode())
    assert len(codes) == 10
    return secret, codes


# --- the command line and TLS -------------------------------------------------------------------

def run_cli(env, *args, stdin=""):
    """``hushpost <args>`` as a process, with ``env`` as its whole environment."""
    return subprocess.run(
        [sys.executable, "-m", "hushpost.cli", *args], env=env, input=stdin, capture_output=True, text=True,
        timeout=120, cwd=ROOT,
    )


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and its key, as PEM files in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "relay.crt", folder / "relay.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file
