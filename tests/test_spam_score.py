"""No e-mail Hushpost sends looks like spam: SpamAssassin, run on each kind of e-mail as the SMTP
server on loopback received it, scores it at most 0.

Every kind registered in ``hushpost/notifications/kinds.py`` is produced the way a person causes
it (``tests/mail_kinds.py``); a kind with no way to produce it fails here. SpamAssassin runs with
``-L`` (no network: the score is the message's own, the same on every machine) and ``-t``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from io import StringIO

import pytest
from django.core.management import call_command

from tests.mail_kinds import Scene, every_kind

SPAMASSASSIN = "/usr/bin/spamassassin"


@pytest.fixture
def scene(org, alice, sender_client, smtp, settings):
    if not os.environ.get("HUSHPOST_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("the spam scores are measured once, in the PostgreSQL run (make test-postgres)")
    assert shutil.which(SPAMASSASSIN), "SpamAssassin is not installed (make spamassassin installs Debian's)"
    # As a deployment set up by docs/email.md sends: from the organisation's domain, signed.
    settings.DEFAULT_FROM_EMAIL = "no-reply@hushpost.example"
    org.notify_from_email = "notices@northwind.example"
    org.save(update_fields=["notify_from_email"])
    for domain in ("northwind.example", "hushpost.example"):
        call_command("dkim", "keygen", "--domain", domain, stdout=StringIO())
    return Scene(org, alice.email, sender_client, smtp)


def score(raw: bytes) -> tuple[float, str]:
    """SpamAssassin's score for the e-mail, and its report of the rules that fired."""
    result = subprocess.run([SPAMASSASSIN, "-L", "-t"], input=raw, capture_output=True, timeout=120, check=False)
    out = result.stdout.decode(errors="replace")
    status = re.search(r"^X-Spam-Status: \w+, score=(-?[\d.]+)", out, re.M)
    assert status, f"no X-Spam-Status in SpamAssassin's output: {result.stderr.decode(errors='replace')[-2000:]}"
    report = out[out.find("Content analysis details"):] if "Content analysis details" in out else out
    return float(status.group(1)), report


def test_no_kind_of_email_scores_as_spam(scene):
    emails, missing = every_kind(scene)
    assert missing == [], f"no way to produce {missing} in tests/mail_kinds.py"
    scores = {kind: score(mail.raw) for kind, mail in emails.items()}
    print("SpamAssassin scores:", ", ".join(f"{kind} {points}" for kind, (points, _) in scores.items()))
    failing = {kind: report for kind, (points, report) in scores.items() if points > 0}
    for kind, report in failing.items():
        print(f"--- {kind}: {scores[kind][0]}\n{report}")
    assert not failing, {kind: points for kind, (points, _) in scores.items()}
