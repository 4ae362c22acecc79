"""The gateway's spool keeps its word: an e-mail answered 250 is stored once, and notified once.

With ``HUSHPOST_SMTPD_SPOOL`` on, ``hushpost smtpd`` answers DATA once the e-mail is sealed and
committed, and ``hushpost worker`` stores it later. So the 250 is a promise the worker keeps,
whatever happens to it and to the database meanwhile. Real processes: one gateway, one worker
(restarted after each kill, as systemd would), the private PostgreSQL server and the mail relay.
An organisation's mail server relays letters (some with a file, some recipients written to
more than once) one after another, and relays again any letter answered 4xx or cut off, as mail
servers do. Meanwhile:

- the worker is killed (SIGKILL) with a backlog it claimed in one batch, after it stored the
  first of it: the rest waits out the lease, and one stored but not yet marked, if any, must
  not be stored again;
- the gateway is killed with a relayed e-mail in hand, and started again;
- PostgreSQL is stopped for a few seconds and started again: the gateway answers 451;
- the worker is killed again while it holds spooled e-mails, and once more while the relay holds
  one of its notifications unanswered.

Then what people would notice: every letter answered 250 is a message, once, with its subject;
each recipient got its Secure Messaging Notification once (and their password once, before it);
no spooled e-mail is left waiting; the gateway said 451 only while the database was away; and
no letter's subject, text or file name is in any process's log.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from tests.faults.cluster import Machine, Relaying, connections_in_hand, wait_for_port
from tests.faults.deployment import LEASE_SECONDS, Deployment, Worker, hushpost_command, wait_for
from tests.faults.expectations import delivery_problems, notification_problems
from tests.settings import _free_port

pytestmark = pytest.mark.faults

LETTERS = 30
# Spooled before the first worker starts: one batch it claims whole, and dies holding.
BACKLOG = 8
OUTAGE_SECONDS = 3
# Any e-mail whose DATA reaches the relay up to this long before it is told to hold is held.
RELAY_DELAY = 0.1
RELAYING_TIMEOUT = 120
# A killed worker's claim lapses with its lease; a worker polls and starts within seconds.
STORED_BOUND = LEASE_SECONDS + 30
DELIVERY_BOUND = LEASE_SECONDS + 30
# A gateway connection opened before the database stopped may answer after it is back.
LATE_451_SECONDS = 2.0
SPOOLING = {
    "HUSHPOST_SMTPD_SPOOL": "true",
    # The spool's lease is four times the reader's CPU budget, at least the notifications' lease:
    # 2 s makes it the fault tests' LEASE_SECONDS, so a dead worker's claim lapses in seconds.
    "HUSHPOST_SMTPD_READ_CPU_SECONDS": "2",
    "HUSHPOST_SMTPD_THREADS": "2",
}
CONTENT = re.compile(r"Letter \d+|Dear patient|letter-\d+\.pdf")
REPLY_451 = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*reply=451", re.M)


class Spool:
    """The spooled e-mails as an operator's psql sees them: one connection, opened again
    after the database went away."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: psycopg.Connection | None = None

    def counts(self) -> Counter:
        """Rows by state, and ``held by PID``: pending ones the lease of that worker holds now."""
        try:
            if self.connection is None or self.connection.closed:
                self.connection = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            rows = self.connection.execute(
                "SELECT state, CASE WHEN state = 'pending' AND lease_until > now() THEN lease_owner END,"
                " count(*) FROM gateway_spooled_mail GROUP BY 1, 2").fetchall()
        except psycopg.Error:
            self.close()
            return Counter()
        counts = Counter()
        for state, owner, count in rows:
            counts[state] += count
            if owner:  # a worker's id: host:pid:random
                counts[f"held by {owner.split(':')[1]}"] += count
        return counts

    def held_by(self, worker: Worker) -> int:
        return self.counts()[f"held by {worker.pid}"]

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Gateway:
    """``hushpost smtpd`` on one port, killed and started again there as a crash and systemd
    would; ``relayer``, the sender whose mail server may relay to it."""

    def __init__(self, deployment: Deployment, folder: Path, relayer: str) -> None:
        self.port = _free_port()
        self.deployment, self.folder, self.relayer = deployment, folder, relayer
        self.machine = self.start()

    def start(self) -> Machine:
        machine = Machine("gateway", [hushpost_command(), "smtpd", "--bind", f"127.0.0.1:{self.port}"],
                          self.deployment.env, self.folder)
        wait_for_port(self.port, machine)
        return machine

    def kill_and_restart(self) -> None:
        self.machine.kill()
        self.machine = self.start()


@pytest.fixture
def gateway(deployment, tmp_path):
    deployment.env |= SPOOLING
    folder = tmp_path / "machines"
    folder.mkdir()
    [relayer] = deployment.script("organisation", "--senders", "1")["senders"]
    deployment.relay.start(delay=RELAY_DELAY)
    gateway = Gateway(deployment, folder, relayer)
    yield gateway
    gateway.machine.stop()


def test_every_spooled_e_mail_is_stored_and_notified_once_through_kills_and_a_database_restart(
        deployment, private_postgres, gateway):
    spool = Spool(deployment.env["HUSHPOST_DATABASE_URL"])
    stop = threading.Event()
    relaying = Relaying([gateway.port], gateway.relayer, stop, letters=LETTERS)
    started = time.time()
    relaying.start()
    kills: list[str] = []

    def answered() -> int:
        return sum(item.stored for item in relaying.relayed)

    # 1. A backlog claimed in one batch; the worker killed once it has stored the first of it.
    assert wait_for(lambda: spool.counts()["pending"] >= BACKLOG, RELAYING_TIMEOUT), _stuck(relaying, gateway)
    worker = deployment.start_worker()
    wait_for(lambda: spool.counts()["stored"] >= 1, 30)
    worker = crash(deployment, worker, spool, kills)

    # 2. The gateway killed with a relayed e-mail in hand.
    assert wait_for(lambda: answered() >= 12, RELAYING_TIMEOUT), _stuck(relaying, gateway)
    in_hand = wait_for(lambda: connections_in_hand(gateway.port) >= 1, 10)
    gateway.kill_and_restart()
    kills.append(f"gateway {'with' if in_hand else 'without'} a relayed e-mail in hand")

    # 3. The database away for a few seconds while letters are relayed.
    assert wait_for(lambda: answered() >= 18, RELAYING_TIMEOUT), _stuck(relaying, gateway)
    spool.close()
    outage_from = time.time()
    private_postgres.stop("fast")
    time.sleep(OUTAGE_SECONDS)
    private_postgres.start()
    outage_to = time.time()

    # 4. The worker killed again while it holds spooled e-mails: the next it claims once the database is back.
    wait_for(lambda: spool.held_by(worker) >= 1, 20)
    worker = crash(deployment, worker, spool, kills)

    # 5. And once more while the relay holds one of its notifications unanswered.
    worker = crash(deployment, worker, spool, kills, mid_send=True)

    relaying.join(timeout=RELAYING_TIMEOUT)
    assert not relaying.is_alive(), _stuck(relaying, gateway)
    relayed_at = time.time()
    settled = wait_for(lambda: spool.counts()["stored"] >= answered() and not spool.counts()["pending"],
                       STORED_BOUND)
    spool.close()
    state = deployment.script("spool")
    stored = [m for m in deployment.script("messages") if m["send_token"].startswith("gw-")]
    expected = sum(len(m["recipients"]) for m in stored) + len({r for m in stored for r in m["recipients"]})
    delivered = deployment.wait_until_delivered(expected, time.time() + DELIVERY_BOUND)
    time.sleep(LEASE_SECONDS + 2)  # an e-mail sent twice would come once a lease on it ran out
    emails = deployment.relay.accepted()

    problems = [relaying.failure] if relaying.failure else []
    problems += [f"{item.subject} was never answered 250: {item.replies}" for item in relaying.relayed
                 if not item.stored]
    if not settled:
        problems.append(f"spooled e-mails still waiting {STORED_BOUND}s after the last was relayed: "
                        f"{state['states']}")
    if set(state["states"]) - {"stored"}:
        problems.append(f"spooled e-mails by state: {state['states']}")
    subjects = Counter(state["subjects"])
    promised = Counter(item.subject for item in relaying.relayed if item.stored)
    problems += [f"{subject!r} answered 250 but stored {subjects[subject]} times" for subject in promised
                 if subjects[subject] != 1]
    problems += [f"{subject!r} stored though never answered 250" for subject in subjects - promised]
    if delivered is None:
        problems.append(f"not every notification was e-mailed within {DELIVERY_BOUND}s of the last store")
    problems += delivery_problems(deployment, emails, expected)
    problems += notification_problems(stored, emails)
    refusals = [moment for moment in gateway_451s(gateway)
                if not outage_from <= moment <= outage_to + LATE_451_SECONDS]
    problems += [f"the gateway answered 451 at {datetime.fromtimestamp(m):%T.%f}, outside the outage "
                 f"({datetime.fromtimestamp(outage_from):%T}-{datetime.fromtimestamp(outage_to):%T})"
                 for m in refusals]
    problems += content_in_logs(deployment, gateway)
    problems += [f"a notification to {e['rcpt'][0]} says what a letter says" for e in emails
                 if CONTENT.search(e["subject"] + e["text"])]
    problems += [f"worker {w.pid} exited on its own" for w in deployment.workers if not w.killed and not w.alive()]
    if not gateway.machine.alive():
        problems.append("the gateway exited on its own")

    replies = Counter(reply.split(" ")[1] for item in relaying.relayed for reply in item.replies)
    summary = (f"{len(relaying.relayed)} letters relayed in {relayed_at - started:.0f}s, replies {dict(replies)} "
               f"({sum(len(item.replies) > 1 for item in relaying.relayed)} relayed more than once, "
               f"{sum('already received' in r for item in relaying.relayed for r in item.replies)} of them "
               f"answered 'already received'), "
               f"{len(gateway_451s(gateway))} reply=451 logged by the gateway; {len(stored)} messages stored, "
               f"{len(emails)} e-mails for {expected} notifications; killed: {'; '.join(kills)}; "
               f"database down {outage_to - outage_from:.1f}s")
    print(f"\n[faults] {summary}")
    assert not problems, summary + "\n  - " + "\n  - ".join(problems) + _logs(deployment, gateway)


def crash(deployment: Deployment, worker: Worker, spool: Spool, kills: list[str], *,
          mid_send: bool = False) -> Worker:
    """The worker killed (SIGKILL) and started again, as systemd would; its replacement.

    The relay holds, unanswered, any notification the worker sends while it is killed, and
    sees the connection gone before it answers: the e-mail is not accepted and must still go,
    once. (Killed in the instant between a relay's 250 and its record of it, any worker would
    send that e-mail again: SMTP cannot tell a sender what it missed, as
    ``test_delivery_faults.py`` says; the relay's delay makes sure that instant is not this one.)
    ``mid_send``: killed only once the relay holds one of its e-mails.
    """
    deployment.relay.hold()
    held_mail = mid_send and wait_for(deployment.relay.holding, 30)
    worker.kill()
    kills.append(f"worker with {spool.held_by(worker)} claimed e-mail(s) in hand"
                 + (" and a notification held by the relay" if held_mail else ""))
    time.sleep(0.3)
    deployment.relay.release()
    return deployment.start_worker()


def gateway_451s(gateway: Gateway) -> list[float]:
    """When the gateway answered 451, as its log says."""
    text = gateway.machine.log.read_text(errors="replace")
    return [datetime.strptime(found, "%Y-%m-%d %H:%M:%S,%f").timestamp() for found in REPLY_451.findall(text)]


def content_in_logs(deployment: Deployment, gateway: Gateway) -> list[str]:
    """A letter's subject, text or file name in any log: what only its recipients may read."""
    logs = [gateway.machine.log, *(worker.log for worker in deployment.workers)]
    problems = []
    for log in dict.fromkeys(logs):
        found = CONTENT.findall(log.read_text(errors="replace"))
        if found:
            problems.append(f"{log.name} has what a letter says: {sorted(set(found))[:5]}")
    return problems


def _logs(deployment: Deployment, gateway: Gateway) -> str:
    tails = [f"\n--- worker {w.pid} ({'killed' if w.killed else 'running' if w.alive() else 'exited'}) ---\n"
             f"{w.log_tail()}" for w in deployment.workers]
    return "".join(tails) + f"\n--- gateway ---\n{gateway.machine.log_tail(30)}"


def _stuck(relaying: Relaying, gateway: Gateway) -> str:
    last = relaying.relayed[-1] if relaying.relayed else None
    return (f"the letters stopped getting through: {relaying.failure} "
            f"{last and (last.subject, last.replies)}\n{gateway.machine.log_tail(30)}")
