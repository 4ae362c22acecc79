"""Baseline for notification delivery: plain smtplib, no Django, no database.

Builds the same kind of e-mail the worker sends (text + HTML alternative, the
same subject, sender, headers and body sizes, taken from a real notification
rendered by Hushpost) and sends ``--count`` of them over one SMTP connection,
as the worker does with its per-process connection.  Given several samples
(``--sample`` repeated) it sends them in turn: a new recipient's Password
Notification, then the Secure Messaging Notification it unlocks, and so on.

    python -m bench.smtp_baseline --port 2525 --count 500 --sample sample.json
"""

from __future__ import annotations

import argparse
import json
import smtplib
import time
from email.message import EmailMessage
from email.utils import make_msgid


def build(sample: dict, to: str) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = sample["subject"]
    msg["From"] = sample["from"]
    msg["To"] = to
    msg["Message-ID"] = make_msgid(domain="127.0.0.1")
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    msg.set_content(sample["text"])
    msg.add_alternative(sample["html"], subtype="html")
    return msg


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--sample", required=True, action="append")
    args = parser.parse_args()
    samples = []
    for path in args.sample:
        with open(path) as f:
            samples.append(json.load(f))
    recipients = samples[0]["recipients"]
    started = time.monotonic()
    with smtplib.SMTP("127.0.0.1", args.port, timeout=10) as smtp:
        for i in range(args.count):
            sample = samples[i % len(samples)]
            to = recipients[(i // len(samples)) % len(recipients)]
            smtp.send_message(build(sample, to))
    print(json.dumps({"seconds": time.monotonic() - started}))


if __name__ == "__main__":
    main()
