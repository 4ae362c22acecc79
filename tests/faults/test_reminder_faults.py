"""Reminders go when the database's clock says, once, whichever worker and whatever its clock.

A real `hushpost worker` whose wall clock is two days ahead looks for reminders every second: by
its own clock every message is long due one, by the database's none is, and none goes. With a
second worker looking as often, once the messages were sent two days ago by the database's
clock, each recipient gets one reminder and its sender one note.
"""

from __future__ import annotations

import time

import pytest

from tests.faults.deployment import wait_for

pytestmark = pytest.mark.faults

REMINDER = "Reminder: Secure Messaging Notification"
TOLD = "Secure Messaging Reminder Sent"


def _subjects(deployment) -> list[str]:
    return [email["subject"] for email in deployment.relay.accepted()]


def test_two_workers_one_clock_days_ahead_send_each_reminder_once_when_the_database_says(deployment):
    deployment.seed(recipients=2, messages=1)
    deployment.script("reminders", "policy")
    deployment.env["HUSHPOST_REMINDER_INTERVAL"] = "1"
    deployment.env["HUSHPOST_PERIODIC_CHECK_SECONDS"] = "1"
    deployment.relay.start()
    ahead = deployment.start_worker(clock_ahead_minutes=2 * 24 * 60)

    assert deployment.wait_for_emails(4, timeout=60), ahead.log_tail()  # passwords and notifications
    time.sleep(5)  # several looks: nothing is due by the database's clock
    assert REMINDER not in _subjects(deployment), ahead.log_tail()
    assert deployment.script("reminders", "state")["reminders_sent"] == [0, 0]
    assert ": harbour-clinic: 0 reminded" in ahead.log.read_text(), ahead.log_tail()  # it did look
    workers = [ahead, deployment.start_worker()]

    deployment.script("reminders", "sent-days-ago")
    assert wait_for(lambda: _subjects(deployment).count(REMINDER) >= 2, timeout=60), workers[0].log_tail()
    time.sleep(5)  # more looks by both: nothing more
    subjects = _subjects(deployment)
    assert subjects.count(REMINDER) == 2 and subjects.count(TOLD) == 2
    assert deployment.script("reminders", "state") == {"reminders_sent": [1, 1], "reminder_emails": 2}
