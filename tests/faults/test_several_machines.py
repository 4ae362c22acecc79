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

The organisation's retention policy makes its old messages due (seeded forty days back; what is
sent during the run is not), and both workers ask every second for the purge, due every second:
the first run, purging the old messages, takes longer than that, so the other worker finds the
job due meanwhile and only the lease keeps it off. Each run's first and last log lines, with the
worker's name, are written while it holds the lease, and the machines share one clock: no two
runs' spans may overlap, a run that never finished must be the killed worker's last (with no one
taking over before its lease lapsed), and each old message is purged once, with one audit event.

The worker is killed while the relay holds one of its e-mails unanswered, the moment nobody
can tell whether that e-mail went: it must still go out once. (Killed in the instant between
the relay's "250" and the worker's record of it, any worker would send that e-mail again:
SMTP cannot tell a sender what it missed; ``test_delivery_faults.py`` says the same.)
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import pytest

from hushpost.server.periodic import LEASE
from tests.faults.cluster import Cluster, Relaying, Sender, connections_in_hand, worker_address
from tests.faults.dbscript import PASSWORD
from tests.faults.deployment import LEASE_SECONDS, Deployment, wait_for
from tests.faults.expectations import delivery_problems, notification_problems
from tests.proxy import nginx_installed

pytestmark = pytest.mark.faults

COMPOSING = 4  # senders at Compose, each in a browser of their own; one more relays by SMTP
SENT_BEFORE_THE_CRASH = 8
SENT_AFTER_THE_CRASH = 12
# Generous: two shared cores carry all eleven processes and the people using them.
LOAD_TIMEOUT = 150
DELIVERY_BOUND = LEASE_SECONDS + 90
# Every worker asks every second whether the purge is due, and it is due every second.
PURGING_OFTEN = {"HUSHPOST_RETENTION_INTERVAL": "1", "HUSHPOST_PERIODIC_CHECK_SECONDS": "1"}
# A worker's log line about a retention run: when it was written (to the millisecond), and by whom.
RUN_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO hushpost\.worker "
                      r"periodic job retention (started|finished) by (\S+?)(?:: .*)?$")


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
    deployment.env |= PURGING_OFTEN
    addresses = cluster.start(senders=COMPOSING + 1, archive=True)
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
    archived = set(cluster.archived)  # notified long ago: not part of this run's sending
    stored = [m for m in deployment.script("messages") if m["uid"] not in archived]
    problems += stored_problems(people, relaying, stored)
    problems += file_problems(cluster, stored)
    expected = sum(len(m["recipients"]) for m in stored) + len({r for m in stored for r in m["recipients"]})
    delivered = deployment.wait_until_delivered(expected, stopped + DELIVERY_BOUND)
    time.sleep(LEASE_SECONDS + 2)  # an e-mail sent twice would come once a lease on it ran out
    emails = deployment.relay.accepted()
    if delivered is None:
        problems.append(f"not every notification was e-mailed within {DELIVERY_BOUND}s of the last send")
    runs = purge_runs(cluster)
    problems += periodic_job_problems(deployment, cluster, runs)  # first: `audit verify` below chains what waits
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
               f"worker killed {'while the relay held its e-mail' if mid_send else 'with no e-mail in hand'}; "
               f"retention purge runs {dict(Counter(f'worker-{r.worker}' for r in runs))}, the longest "
               f"{max(((r.end or r.start) - r.start).total_seconds() for r in runs) if runs else 0:.1f}s, "
               f"{len(archived)} old messages due")
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


@dataclass
class Run:
    """One retention run, as its worker's log tells it."""

    worker: int
    owner: str
    start: datetime
    end: datetime | None = None  # never said: the worker died first


def purge_runs(cluster: Cluster) -> list[Run]:
    """Every retention run in the workers' logs, in the order they started."""
    runs = []
    for n, worker in enumerate(cluster.workers, 1):
        current = None
        for line in worker.log.read_text(errors="replace").splitlines():
            if not (found := RUN_LINE.match(line)):
                continue
            moment = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")
            if found[2] == "started":
                current = Run(n, found[3], moment)
                runs.append(current)
            elif current is not None and current.owner == found[3]:
                current.end = moment
    return sorted(runs, key=lambda run: run.start)


def periodic_job_problems(deployment: Deployment, cluster: Cluster, runs: list[Run]) -> list[str]:
    """Periodic work never ran twice at once.

    The audit linker runs on every worker's round, each chain under its head's lock: two
    linkers on one chain at once would give two events one position, or leave a gap, and a
    linker killed mid-round must leave nothing behind that stops the other (``hushpost audit
    verify``, run by :func:`delivery_problems`, checks the hashes).

    The retention purge takes a lease on the database's clock: no run starts before the one
    before it ended (a run's lines are written while it holds the lease; one cut short by the
    kill counts as running until its lease could have lapsed, ``LEASE`` after it started at the
    earliest), and every old message is purged once, with one audit event.
    """
    state = deployment.script("chains")
    problems = [f"{state['unchained']} audit event(s) never chained"] if state["unchained"] else []
    for chain, positions in state["positions"].items():
        if positions != list(range(1, len(positions) + 1)):
            problems.append(f"audit chain {chain}: positions not 1..{len(positions)} once each")

    if not runs:
        problems.append("the retention purge never ran")
    killed = {n for n, worker in enumerate(cluster.workers, 1) if worker.killed}
    last = {run.worker: run for run in runs}
    busy: Run | None = None
    for run in runs:
        if run.end is None and not (run.worker in killed and last[run.worker] is run):
            problems.append(f"worker-{run.worker}'s retention run started at {run.start:%T.%f} never ended")
        if busy is not None and run.start < _until(busy):
            problems.append(f"worker-{run.worker} started the retention purge at {run.start:%T.%f}, while "
                            f"worker-{busy.worker}'s run from {busy.start:%T.%f} held it until {_until(busy):%T.%f}")
        if busy is None or _until(run) > _until(busy):
            busy = run

    purged = deployment.script("retention", "state")["purge_events"]
    archived = set(cluster.archived)
    if set(purged) != archived:
        problems.append(f"{len(set(purged) & archived)} of {len(archived)} old messages purged, and "
                        f"{len(set(purged) - archived)} messages that were not due")
    twice = {uid: n for uid, n in purged.items() if n != 1}
    if twice:
        problems.append(f"{len(twice)} message(s) with more than one purge event: {twice}")
    return problems


def _until(run: Run) -> datetime:
    """When the job was free again after ``run``: its end, or for a run killed before it
    ended, its lease's lapse (renewed meanwhile, it lapsed later still)."""
    return run.end if run.end is not None else run.start + LEASE


def _stuck(people: list[Sender], relaying: Relaying, cluster: Cluster) -> str:
    failures = [p.failure for p in [*people, relaying] if p.failure]
    silences = [s for p in people for s in p.silences]
    return f"the senders stopped getting through: {failures} {silences[:5]}" + cluster.logs()
