"""The retention purge runs on one machine at a time, whatever the machines' clocks say.

A real `hushpost worker` whose wall clock is ten minutes ahead meets a purge another machine
has been running for two minutes, longer than the interval (its lease has minutes left by the
database's clock, long gone by the worker's own): it must leave it alone, and take the job
only once the other machine lets go. It then purges what is due by the database's clock, not
by its own: a message due in five minutes stays.
"""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.faults


def wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


def test_a_worker_whose_clock_is_ahead_never_takes_a_purge_another_machine_runs(deployment):
    deployment.seed(recipients=1, messages=3)
    deployment.script("retention", "policy")
    assert deployment.script("retention", "hold-lease")["held"]
    later = deployment.script("retention", "due-later")["uid"]
    deployment.env["HUSHPOST_RETENTION_INTERVAL"] = "60"
    deployment.relay.start()
    worker = deployment.start_worker(clock_ahead_minutes=10)

    assert deployment.wait_for_emails(4, timeout=60), worker.log_tail()  # it runs: its e-mails went out
    time.sleep(3)
    assert deployment.script("retention", "state")["purged"] == 0, worker.log_tail()

    deployment.script("retention", "release-lease")
    # Its next look (every 30 s): the interval passed long ago, and now the lease is free too.
    assert wait_for(lambda: deployment.script("retention", "state")["purged"] >= 2, timeout=150), worker.log_tail()
    state = deployment.script("retention", "state")
    assert state["purged"] == 2 and later not in state["purge_events"], worker.log_tail()
    assert sorted(state["purge_events"].values()) == [1, 1]
    assert "retention: harbour-clinic: 2 purged" in worker.log.read_text()
