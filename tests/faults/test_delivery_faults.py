"""Notifications still reach every recipient exactly once when things break.

Each test runs real `hushpost worker` processes against a PostgreSQL server
and a mail relay that it restarts, stops, freezes or kills on purpose, and then
asks what a recipient and an auditor would: did every e-mail arrive once, the
password first, with a password that works, each recorded once in an intact
audit trail, and how soon (the time is printed, and part of any failure).

Bounds: the lease is HUSHPOST_NOTIFY_LEASE_SECONDS=8; an e-mail lost with a
worker may wait out one lease, and a worker polls and starts within seconds,
so full delivery is due within a lease plus 30 s of the last fault (plus the
outage itself for the database), and within 20 s of a relay's return.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.faults.deployment import LEASE_SECONDS, wait_for
from tests.faults.expectations import assert_delivered_exactly_once

pytestmark = pytest.mark.faults

ON_TIME = "worker-on-time@hushpost.localhost"
AHEAD = "worker-ten-minutes-ahead@hushpost.localhost"
ANOTHER = "worker-two@hushpost.localhost"


def test_a_database_restart_and_outage_mid_delivery(deployment, private_postgres):
    expected = deployment.seed(recipients=24, messages=4)
    deployment.relay.start(delay=0.03)
    worker = deployment.start_worker()
    started = time.time()

    # Restarted while e-mails are going out, then down for 5 s a little later.
    deployment.wait_for_emails(15, timeout=60)
    private_postgres.restart("fast")
    restarted_at = len(deployment.relay.accepted())
    deployment.wait_for_emails(50, timeout=20)
    private_postgres.stop("fast")
    stopped_at = len(deployment.relay.accepted())
    time.sleep(5)
    private_postgres.start()

    assert_delivered_exactly_once(
        deployment, expected=expected, since=started, bound=5 + LEASE_SECONDS + 30,
        label=f"database restarted after {restarted_at} e-mails, down 5 s after {stopped_at}")
    assert worker.alive(), f"worker {worker.pid} did not ride out the outages"


def test_a_worker_killed_mid_send_four_times(deployment):
    expected = deployment.seed(recipients=40, messages=4)
    deployment.relay.start(delay=0.02)
    worker = deployment.start_worker()
    mid_send = 0
    for _ in range(4):
        deployment.wait_for_emails(len(deployment.relay.accepted()) + 30, timeout=30)
        # Killed while the relay has an e-mail in hand and has not answered yet, so
        # nobody knows whether it went: it must still go, once. (Killed between
        # the relay's "250" and the worker's record of it, any worker would send
        # that one again: SMTP cannot tell a sender what it missed.)
        deployment.relay.hold()
        mid_send += wait_for(deployment.relay.holding, timeout=15)
        worker.kill()
        time.sleep(0.3)
        deployment.relay.release()
        worker = deployment.start_worker()  # as systemd or a container runtime would
    restarted = time.time()

    assert_delivered_exactly_once(deployment, expected=expected, since=restarted, bound=LEASE_SECONDS + 30,
                                  label=f"worker killed 4 times ({mid_send} while the relay held an e-mail)")


def test_a_relay_that_hangs_longer_than_a_lease(deployment):
    expected = deployment.seed(recipients=12, messages=4)
    deployment.relay.start(hang=True)
    deployment.start_worker(sender=ON_TIME)
    deployment.start_worker(sender=ANOTHER)
    time.sleep(2.5 * LEASE_SECONDS)
    deployment.relay.stop()
    deployment.relay.start(delay=0.02)
    back = time.time()

    assert_delivered_exactly_once(deployment, expected=expected, since=back, bound=LEASE_SECONDS + 20,
                                  label=f"relay silent for {2.5 * LEASE_SECONDS:.0f}s, two workers")


def test_two_workers_whose_clocks_are_ten_minutes_apart(deployment):
    expected = deployment.seed(recipients=40, messages=4)
    deployment.relay.start(delay=0.02)
    started = time.time()
    deployment.start_worker(sender=ON_TIME)
    deployment.start_worker(sender=AHEAD, clock_ahead_minutes=10)

    assert_delivered_exactly_once(deployment, expected=expected, since=started, bound=LEASE_SECONDS + 30,
                                  label="two workers, one clock 10 minutes ahead")
    senders = Counter(email["mail_from"] for email in deployment.relay.accepted())
    print(f"[faults] e-mails sent by the worker on time: {senders[ON_TIME]}, ten minutes ahead: {senders[AHEAD]}")
    assert senders[ON_TIME] and senders[AHEAD], f"both workers should have sent some: {dict(senders)}"


def test_a_relay_down_for_two_minutes(deployment):
    expected = deployment.seed(recipients=12, messages=4)
    deployment.relay.start(delay=0.02)
    deployment.start_worker()
    deployment.wait_for_emails(10, timeout=60)
    deployment.relay.stop()
    stopped_at = len(deployment.relay.accepted())
    time.sleep(120)
    deployment.relay.start(delay=0.02)
    back = time.time()

    assert_delivered_exactly_once(deployment, expected=expected, since=back, bound=20,
                                  label=f"relay down 120 s after {stopped_at} e-mails")
