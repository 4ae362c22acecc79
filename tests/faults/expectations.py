"""What every fault scenario must end with, as a recipient and an auditor would see it.

Every notification sent, and accepted by the relay exactly once; each
recipient's Password Notification before any of their Secure Messaging
Notifications; every e-mailed temporary password one that works; one audit
event per accepted e-mail, and the audit trail intact; all of it within a
stated time.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter, defaultdict

from tests.faults.deployment import LEASE_SECONDS, Deployment, identity

PASSWORD_SUBJECT = "Secure Messaging Password Notification"
MESSAGE_SUBJECT = "Secure Messaging Notification"
# Which message a Secure Messaging Notification is about: the reference code every such e-mail shows.
REFERENCE = re.compile(r"^Reference: ([0-9A-Z]{4}-[0-9A-Z]{4})\s*$", re.M)
# How long to go on watching once everything has arrived, for an e-mail sent twice.
SETTLE_AFTER_LEASES = 2


def assert_delivered_exactly_once(deployment: Deployment, *, expected: int, since: float, bound: float,
                                  label: str) -> float:
    """Wait up to ``bound`` seconds after ``since`` (a time.time()) for ``expected``
    notifications, then check everything a scenario must end with. Returns the
    seconds full delivery took."""
    done = deployment.wait_until_delivered(expected, since + bound)
    # A notification held by a worker that lost track of it goes again, if at
    # all, once the lease on it runs out: watch that long before counting.
    time.sleep(LEASE_SECONDS + SETTLE_AFTER_LEASES)
    emails = deployment.relay.accepted()
    problems = []
    if done is None:
        in_time = len({identity(e) for e in emails if e["t"] <= since + bound})
        elapsed = time.time() - since
        problems.append(f"only {in_time} of {expected} notifications were e-mailed within {bound:.0f}s "
                        f"({len({identity(e) for e in emails})} after {elapsed:.0f}s)")
    else:
        elapsed = done - since
        if elapsed > bound:
            problems.append(f"full delivery took {elapsed:.1f}s, more than {bound:.0f}s")
    problems += delivery_problems(deployment, emails, expected)
    dead = [w.pid for w in deployment.workers if not w.killed and not w.alive()]
    took = f"full delivery in {elapsed:.1f}s" if done is not None else "not all delivered in time"
    summary = f"{label}: {len(emails)} e-mails accepted for {expected} notifications; {took} (bound {bound:.0f}s)"
    print(f"\n[faults] {summary}")
    for pid in dead:
        problems.append(f"worker {pid} exited on its own")
    assert not problems, summary + "\n  - " + "\n  - ".join(problems) + _logs(deployment)
    return elapsed


def delivery_problems(deployment: Deployment, emails: list[dict], expected: int) -> list[str]:
    problems = []
    passwords = [[e["rcpt"][0], e["password"] or ""] for e in emails if e["subject"] == PASSWORD_SUBJECT]
    state = deployment.script("inspect", stdin=json.dumps(passwords))
    notifications = state["notifications"]

    if len(notifications) != expected:
        problems.append(f"{len(notifications)} notifications in the database, {expected} expected")
    statuses = Counter(n["status"] for n in notifications)
    if set(statuses) != {"sent"}:
        problems.append(f"notification states: {dict(statuses)}")

    copies = Counter(identity(e) for e in emails)
    twice = {key: n for key, n in copies.items() if n > 1}
    if twice:
        sample = "; ".join(f"{n}x {subject} to {rcpt[0]}" for (rcpt, subject, _), n in list(twice.items())[:5])
        problems.append(f"{sum(twice.values()) - len(twice)} duplicate e-mail(s) for {len(twice)} "
                        f"notification(s): {sample}")
    message_ids = Counter(e["message_id"] for e in emails)
    reused = [m for m, n in message_ids.items() if n > 1]
    if reused:
        problems.append(f"{len(reused)} Message-ID(s) accepted more than once, e.g. {reused[0]}")

    problems += order_problems(emails)

    if passwords and not all(p for _, p in passwords):
        problems.append("a Password Notification without a temporary password in it")
    failing = [address for (address, _), works in zip(passwords, state["passwords_work"], strict=True)
               if not works]
    if failing:
        problems.append(f"{len(failing)} e-mailed temporary password(s) do not work, e.g. for {failing[0]}")

    events = state["audit"]
    sent_keys = [n["key"] for n in notifications if n["status"] == "sent"]
    wrong = {key: events.get(key, 0) for key in sent_keys if events.get(key, 0) != 1}
    if wrong:
        counts = Counter(wrong.values())
        problems.append("audit events per sent notification: "
                        + ", ".join(f"{n} notification(s) with {k}" for k, n in sorted(counts.items())))
    if sum(events.values()) != len(emails):
        problems.append(f"{sum(events.values())} notification audit events for {len(emails)} accepted e-mails")
    verify = deployment.hushpost("audit", "verify")
    if verify.returncode != 0:
        problems.append(f"hushpost audit verify: {(verify.stderr or verify.stdout).strip()[-500:]}")
    return problems


def notification_problems(stored: list[dict], emails: list[dict]) -> list[str]:
    """Each recipient of each message got its Secure Messaging Notification once."""
    copies = Counter()
    for email in emails:
        if email["subject"] == MESSAGE_SUBJECT:
            # Which message: its reference code, which every e-mail about a message shows.
            found = REFERENCE.search(email["text"])
            copies[(email["rcpt"][0], found.group(1) if found else "")] += 1
    problems = []
    for message in stored:
        for recipient in message["recipients"]:
            count = copies[(recipient, message["reference"])]
            if count != 1:
                problems.append(f"{recipient} got {count} notifications of message {message['uid']}")
    return problems


def order_problems(emails: list[dict]) -> list[str]:
    """Each recipient's Password Notification first: it is what lets them open the others."""
    arrivals: dict[str, list[str]] = defaultdict(list)
    for email in emails:
        arrivals[email["rcpt"][0]].append(email["subject"])
    late = []
    for address, subjects in arrivals.items():
        if MESSAGE_SUBJECT not in subjects:
            continue
        passwords_at = [i for i, subject in enumerate(subjects) if subject == PASSWORD_SUBJECT]
        if not passwords_at or max(passwords_at) > subjects.index(MESSAGE_SUBJECT):
            late.append(address)
    if late:
        return [f"{len(late)} recipient(s) got a Secure Messaging Notification before their "
                f"Password Notification, e.g. {late[0]}"]
    return []


def _logs(deployment: Deployment) -> str:
    tails = [f"\n--- worker {w.pid} ({'running' if w.alive() else 'exited'}) ---\n{w.log_tail()}"
             for w in deployment.workers]
    return "".join(tails)
