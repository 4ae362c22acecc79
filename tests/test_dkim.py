"""DKIM: every e-mail Hushpost sends carries a signature that a receiving mail server verifies
against the DNS record ``hushpost dkim keygen`` told the IT team to publish.

The e-mails are the ones the SMTP server on loopback received; the public key comes only from the
command's printed record, as a receiver would get it from DNS.
"""

from __future__ import annotations

import base64
import logging
import re
from email.utils import parseaddr
from io import StringIO

import dkim
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from hushpost.crypto import dkim as signing
from hushpost.crypto import labels, master
from hushpost.orgs.models import DkimKey
from tests.helpers import run_cli, run_worker, send
from tests.mail_kinds import Scene, every_kind

NORTHWIND = "northwind.example"


def keygen(*args: str) -> str:
    out = StringIO()
    call_command("dkim", "keygen", *args, stdout=out)
    return out.getvalue()


def published(*outputs: str) -> dict[bytes, bytes]:
    """The TXT records the command printed, as DNS would answer them: name -> the strings joined."""
    records = {}
    for output in outputs:
        for name, value in re.findall(r"^\s+Name:\s+(\S+)\n\s+Type:\s+TXT\n\s+Value:\s+(.+)$", output, re.M):
            strings = re.findall(r'"([^"]*)"', value)
            assert all(len(s) <= 255 for s in strings)
            records[name.encode()] = "".join(strings).encode()
    assert records, outputs
    return records


def verifies(raw: bytes, records: dict[bytes, bytes]) -> bool:
    def dns(name, timeout=5):
        name = name if isinstance(name, bytes) else name.encode()
        return records.get(name if name.endswith(b".") else name + b".")

    return dkim.verify(raw, dnsfunc=dns)


def tags(raw: bytes) -> dict[str, str]:
    header = re.search(rb"^DKIM-Signature:(.*?)\r?\n(?![ \t])", raw, re.M | re.S).group(1).decode()
    return {k.strip(): re.sub(r"\s+", "", v) for k, v in
            (part.split("=", 1) for part in header.split(";") if "=" in part)}


@pytest.fixture
def scene(org, alice, sender_client, smtp, settings):
    settings.DEFAULT_FROM_EMAIL = "no-reply@hushpost.example"  # e-mails to an address of no organisation
    org.notify_from_email = f"notices@{NORTHWIND}"
    org.save(update_fields=["notify_from_email"])
    return Scene(org, alice.email, sender_client, smtp)


def test_every_kind_of_email_is_signed_for_its_from_domain_and_verifies(scene):
    records = published(keygen("--domain", NORTHWIND), keygen("--domain", "hushpost.example", "--selector", "s1"))
    emails, missing = every_kind(scene)
    assert missing == [], f"no way to produce {missing} in tests/mail_kinds.py"
    for kind, mail in emails.items():
        domain = parseaddr(str(mail.message["From"]))[1].rpartition("@")[2]
        assert verifies(mail.raw, records), kind
        signature = tags(mail.raw)
        assert signature["d"] == domain and signature["a"] == "rsa-sha256" and signature["c"] == "relaxed/relaxed"
        signed = signature["h"].lower().split(":")
        assert signed.count("from") == 2, kind  # oversigned: no second From can be added
        assert {"to", "subject", "date", "message-id", "mime-version", "content-type",
                "auto-submitted"} <= set(signed)
        # The Message-ID names the sending domain, not this server.
        assert str(mail.message["Message-ID"]).rstrip(">").endswith(f"@{domain}"), kind
    assert tags(emails["message"].raw)["d"] == NORTHWIND
    assert tags(emails["portals"].raw)["d"] == "hushpost.example"  # to a bare address: the deployment's


def test_a_changed_body_or_subject_fails_verification(scene):
    records = published(keygen("--domain", NORTHWIND))
    send(scene.sender_client, to="bob@client.example", subject="Your test results")
    run_worker()
    raw = scene.smtp.to("bob@client.example")[-1].raw
    assert verifies(raw, records)
    tampered = raw.replace(b"http://testserver/", b"http://evil.example/")  # the links, somewhere else
    assert tampered != raw and not verifies(tampered, records)
    assert not verifies(raw.replace(b"Subject: Secure", b"Subject: Urgent", 1), records)
    assert not verifies(b"From: Mallory <m@evil.example>\r\n" + raw, records)  # oversigned From
    # Nor can anyone holding a genuine notification add a field a mail program would show first.
    for added in (b"Subject: Urgent: confirm your password\r\n", b"To: everyone@client.example\r\n",
                  b"Reply-To: helpdesk@evil.example\r\n", b"Cc: someone@client.example\r\n"):
        assert not verifies(added + raw, records), added


def test_a_new_key_signs_from_when_it_is_made_and_the_old_record_still_verifies(scene):
    first = published(keygen("--domain", NORTHWIND, "--selector", "one"))
    send(scene.sender_client, to="bob@client.example", subject="Before")
    run_worker()
    before = scene.smtp.messages[-1].raw
    second = published(keygen("--domain", NORTHWIND, "--selector", "two"))
    send(scene.sender_client, to="bob@client.example", subject="After")
    run_worker()
    after = scene.smtp.messages[-1].raw
    assert tags(before)["s"] == "one" and tags(after)["s"] == "two"
    assert verifies(before, first) and verifies(after, second)
    assert not verifies(after, first)  # signed by the new key, not the old
    shown = StringIO()
    call_command("dkim", "show", stdout=shown)
    assert published(shown.getvalue()) == first | second
    assert re.search(r"northwind\.example\ttwo\t.*\tsigns\n", shown.getvalue())
    assert re.search(r"northwind\.example\tone\t.*\tpublished, no longer signs\n", shown.getvalue())


def test_an_email_from_a_domain_without_a_key_goes_unsigned(scene):
    keygen("--domain", "other.example")
    send(scene.sender_client, to="bob@client.example")
    run_worker()
    raw = scene.smtp.messages[-1].raw
    assert b"DKIM-Signature" not in raw and b"@northwind.example>" in raw


def test_the_private_key_is_never_stored_or_logged_in_the_clear(scene, caplog):
    caplog.set_level(logging.DEBUG)
    out = keygen("--domain", NORTHWIND)
    key = DkimKey.objects.get()
    pem = master.open_sealed(key.sealed_key, labels.dkim_key_aad(key.domain, key.selector))
    secret = pem.split(b"-----")[2].replace(b"\n", b"")  # the key's base64
    der = base64.b64decode(secret)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM orgs_dkimkey")
        row = b"|".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                        for v in cursor.fetchone())
    for stored in (row, out.encode()):
        assert b"PRIVATE KEY" not in stored and secret[:40] not in stored and der[:64] not in stored
    send(scene.sender_client, to="bob@client.example")
    run_worker()
    assert b"DKIM-Signature" in scene.smtp.messages[-1].raw
    shown = StringIO()
    call_command("dkim", "show", stdout=shown)
    logged = caplog.text + shown.getvalue()
    assert "PRIVATE KEY" not in logged and secret[:40].decode() not in logged
    # Opened under any other domain or selector, the sealed key does not open.
    with pytest.raises(master.DecryptionError):
        master.open_sealed(key.sealed_key, labels.dkim_key_aad("evil.example", key.selector))


def test_keygen_refuses_a_bad_domain_or_a_selector_in_use(db):
    keygen("--domain", NORTHWIND, "--selector", "one")
    with pytest.raises(CommandError, match="already has a key with selector 'one'"):
        keygen("--domain", "Northwind.Example.", "--selector", "one")
    with pytest.raises(CommandError, match="is not a domain name"):
        keygen("--domain", "northwind.example\r\nX: y")
    with pytest.raises(CommandError, match="not a usable selector"):
        keygen("--domain", NORTHWIND, "--selector", "a b")
    assert DkimKey.objects.count() == 1


def test_the_hushpost_command_prints_the_record_to_publish(cli_env):
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    r = run_cli(cli_env, "dkim", "keygen", "--domain", "harbour.example", "--selector", "hp1")
    assert r.returncode == 0, r.stderr
    [(name, value)] = published(r.stdout).items()
    assert name == b"hp1._domainkey.harbour.example."
    assert value.startswith(b"v=DKIM1; k=rsa; p=MII") and len(value) > 255  # a 2048-bit key: two strings
    assert '( "v=DKIM1; k=rsa; p=' in r.stdout  # the zone file line
    assert "hp1._domainkey.harbour.example." in run_cli(cli_env, "dkim", "show").stdout
    assert signing.KEY_BITS == 2048

