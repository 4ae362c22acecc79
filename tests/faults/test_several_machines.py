"""Hushpost on several machines: one web server and one worker die mid-traffic, nothing is lost.

Two ``hushpost serve`` behind nginx, two workers and two SMTP gateways, each with a data
directory of its own, share a PostgreSQL database, an S3-compatible bucket and a mail relay
(``tests/faults/cluster.py``). Four senders send from Compose through nginx, some with a file,
and a mail server relays letters, some with a file, to the two gateways in turn. Meanwhile one
web server and one worker are killed (SIGKILL to every process of the "machine").

Then what people would notice: every send either showed its sent page or an error page (a
502 from nginx for a request the dead server had in hand), and sending the same form again
after an error stored the message once; every stored message is there once, its files in the
bucket; every recipient got each Secure Messaging Notification exactly once, and their password
once, before it; the audit trail is intact and periodic work never overlapped.

The worker is killed while the relay holds one of its e-mails unanswered, the moment nobody
can tell whether that e-mail went: it must still go out once. (Killed in the instant between
the relay's "250" and the worker's record of it, any worker would send that e-mail again:
SMTP cannot tell a sender what it missed; ``test_delivery_faults.py`` says the same.)
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from tests.faults.cluster import Cluster, Relaying, Sender, connections_in_hand, worker_address
from tests.faults.dbscript import PASSWORD
from tests.faults.deployment import LEASE_SECONDS, Deployment, wait_for
from tests.faults.expectations import MESSAGE_SUBJECT, delivery_problems
from tests.proxy import nginx_installed

pytestmark = pytest.mark.faults

COMPOSING = 4  # senders at Compose, each in a browser of their own; one more relays by SMTP
SENT_BEFORE_THE_CRASH = 8
SENT_AFTER_THE_CRASH = 12
# Generous: two shared cores carry all eleven processes and the people using them.
LOAD_TIMEOUT = 150
DELIVERY_BOUND = LEASE_SECONDS + 90


@pytest.fixture
def cluster(deployment, tmp_path):
    if not nginx_installed():
        pytest.skip("nginx is not installed (make nginx installs Debian's)")
    folder = tmp_path / "machines"
    folder.mkdir()
    cluster = Cluster(deployment, folder)
    yield cluster
    cluster.stop()


def test_a_web_server_and_a_worker_killed_under_continuous_sending(cluster, deployment):
    addresses = cluster.start(senders=COMPOSING + 1)
    stop = threading.Event()
    people = [Sender(cluster.nginx, address, PASSWORD, n, stop)
              for n, address in enumerate(addresses[:COMPOSING])]
    relaying = Relaying(cluster.gateway_ports, addresses[COMPOSING], stop)
    for person in [*people, relaying]:
        person.start()

    def sent() -> int:
        return sum(send.sent for person in people for send in person.sends)

    def sent_at_least(count: int) -> bool:
        return wait_for(lambda: sent() >= count or any(p.failure for p in [*people, relaying]), LOAD_TIMEOUT)

    assert sent_at_least(SENT_BEFORE_THE_CRASH), _stuck(people, relaying, cluster)
    # Killed with requests in hand, while most senders' forms are on their way (they go up
    # slowly, as from a phone): likely one of those, sent again after the error page.
    wait_for(lambda: sum(p.sending for p in people) >= COMPOSING - 1
             and connections_in_hand(cluster.web_ports[0]) >= 2, timeout=30)
    in_hand = connections_in_hand(cluster.web_ports[0])
    cluster.web[0].kill()
    deployment.relay.hold(worker_address(1))
    mid_send = wait_for(deployment.relay.holding, timeout=30)
    cluster.workers[0].kill()
    deployment.relay.release()
    crashed = sent()
    assert sent_at_least(crashed + SENT_AFTER_THE_CRASH), _stuck(people, relaying, cluster)
    stop.set()
    for person in [*people, relaying]:
        person.join(timeout=LOAD_TIMEOUT)
    stopped = time.time()

    problems = answer_problems(people, relaying)
    stored = deployment.script("messages")
    problems += stored_problems(people, relaying, stored)
    problems += file_problems(cluster, stored)
    expected = sum(len(m["recipients"]) for m in stored) + len({r for m in stored for r in m["recipients"]})
    delivered = deployment.wait_until_delivered(expected, stopped + DELIVERY_BOUND)
    time.sleep(LEASE_SECONDS + 2)  # an e-mail sent twice would come once a lease on it ran out
    emails = deployment.relay.accepted()
    if delivered is None:
        problems.append(f"not every notification was e-mailed within {DELIVERY_BOUND}s of the last send")
    problems += periodic_job_problems(deployment)  # first: `audit verify` below chains what waits
    problems += delivery_problems(deployment, emails, expected)
    problems += notification_problems(stored, emails)
    problems += [f"{m.name if hasattr(m, 'name') else 'worker'} {m.process.pid} exited on its own"
                 for m in cluster.machines() if not m.killed and not m.alive()]

    answers = Counter(a for person in people for send in person.sends for a in send.answers)
    uploads = Counter(a for person in people for a in person.uploads)
    replies = Counter(r.split(" ")[1] for r in (x for item in relaying.relayed for x in item.replies))
    summary = (f"{len(stored)} messages stored ({sent()} from Compose, "
               f"{sum(r.stored for r in relaying.relayed)} through the gateways), {len(emails)} e-mails for "
               f"{expected} notifications; web server killed with {in_hand} request(s) in hand; Compose answers "
               f"{dict(answers)}, file uploads {dict(uploads)}, gateway replies {dict(replies)}; "
               f"worker killed {'while the relay held its e-mail' if mid_send else 'with no e-mail in hand'}")
    print(f"\n[faults] {summary}")
    assert not problems, summary + "\n  - " + "\n  - ".join(problems) + cluster.logs()


def answer_problems(people: list[Sender], relaying: Relaying) -> list[str]:
    """Every send ended on its sent page; every attempt before was told it failed."""
    problems = [p.failure for p in [*people, relaying] if p.failure]
    for person in people:
        problems += [f"{person.email}: no answer to {silence}" for silence in person.silences]
        for send in person.sends:
            if not send.sent:
                problems.append(f"{person.email}: a message neither sent nor refused with a page: {send.answers}")
    for item in relaying.relayed:
        if not item.stored:
            problems.append(f"the gateways never took {item.message_id}: {item.replies}")
    return problems


def stored_problems(people: list[Sender], relaying: Relaying, stored: list[dict]) -> list[str]:
    """Each message sent is stored once, to its recipients, with its files; nothing else is."""
    problems = []
    by_token = Counter(m["send_token"] for m in stored)
    problems += [f"{n} messages for one send token" for n in by_token.values() if n > 1]
    messages = {m["send_token"]: m for m in stored}
    composed = {send.token: send for person in people for send in person.sends if send.sent}
    for token, send in composed.items():
        message = messages.get(token)
        if message is None:
            problems.append(f"the message shown as sent ({send.uid}) is not stored")
        elif (message["uid"], message["recipients"], len(message["files"])) != (send.uid, sorted(send.recipients),
                                                                                send.files):
            problems.append(f"message {message['uid']} is not the one sent: {message} for {send}")
    strangers = [m for m in stored if not m["send_token"].startswith("gw-") and m["send_token"] not in composed]
    problems += [f"message {m['uid']} stored though its sender never saw it sent" for m in strangers]
    gateway = [m for m in stored if m["send_token"].startswith("gw-")]
    relayed = [r for r in relaying.relayed if r.stored]
    if sorted((m["recipients"], len(m["files"])) for m in gateway) != sorted(
            (r.recipients, r.files) for r in relayed):
        problems.append(f"{len(gateway)} messages stored from {len(relayed)} e-mails the gateways took")
    return problems


def file_problems(cluster: Cluster, stored: list[dict]) -> list[str]:
    keys = {m["files"][0] for m in stored if m["files"]}
    listing = cluster.s3.client().list_objects_v2(Bucket="hushpost-cluster").get("Contents", [])
    missing = keys - {o["Key"] for o in listing}
    return [f"{len(missing)} of {len(keys)} sent files are not in the bucket"] if missing else []


def notification_problems(stored: list[dict], emails: list[dict]) -> list[str]:
    """Each recipient of each message got its Secure Messaging Notification once."""
    copies = Counter()
    for email in emails:
        if email["subject"] == MESSAGE_SUBJECT:
            copies[(email["rcpt"][0], email["links"][0] if email["links"] else "")] += 1
    problems = []
    for message in stored:
        for recipient in message["recipients"]:
            count = sum(n for (rcpt, link), n in copies.items() if rcpt == recipient and message["uid"] in link)
            if count != 1:
                problems.append(f"{recipient} got {count} notifications of message {message['uid']}")
    return problems


def periodic_job_problems(deployment: Deployment) -> list[str]:
    """Periodic work never ran twice at once.

    The audit linker runs on every worker's round, each chain under its head's lock: two
    linkers on one chain at once would give two events one position, or leave a gap, and a
    linker killed mid-round must leave nothing behind that stops the other (``hushpost audit
    verify``, run by :func:`delivery_problems`, checks the hashes). A periodic job that takes a
    lease on the database's clock adds its check here: no two runs of it overlapping.
    """
    state = deployment.script("chains")
    problems = [f"{state['unchained']} audit event(s) never chained"] if state["unchained"] else []
    for chain, positions in state["positions"].items():
        if positions != list(range(1, len(positions) + 1)):
            problems.append(f"audit chain {chain}: positions not 1..{len(positions)} once each")
    return problems


def _stuck(people: list[Sender], relaying: Relaying, cluster: Cluster) -> str:
    failures = [p.failure for p in [*people, relaying] if p.failure]
    silences = [s for p in people for s in p.silences]
    return f"the senders stopped getting through: {failures} {silences[:5]}" + cluster.logs()
