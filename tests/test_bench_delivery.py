"""`make bench` times each e-mail from its send to its arrival and names what the workers wait
for: the sink must log arrivals by Message-ID (and only while asked), each notification must be
matched with its own e-mail, and a worker blocked on a row lock must be reported with the
statement it waits in and what the session holding the lock is doing."""

from __future__ import annotations

import smtplib
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from types import SimpleNamespace

from bench.common import free_port
from bench.latency import delays
from bench.password_mail import quiet_text
from bench.sink import Sink
from bench.workers import WORKER_APP, LockWaits, statement_label

HEAD_LOCK = ('SELECT "id", "last_hash", "events" FROM "audit_audithead" WHERE "chain" = 1 '
             "FOR UPDATE SKIP LOCKED")
MARK_SENT = ('UPDATE "notifications_notification" SET "status" = \'sent\' '
             'WHERE "notifications_notification"."id" = 7')
LEASE = ('UPDATE "notifications_notification" SET "lease_until" = now() '
         'WHERE "notifications_notification"."id" = 7')


def _send(port: int, message_id: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "a@example.com", "b@example.com", "Hello"
    msg["Message-ID"] = message_id
    msg.set_content("Hello")
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.send_message(msg)


def test_the_sink_logs_arrivals_by_message_id_only_while_recording(tmp_path):
    sink = Sink(free_port(), tmp_path / "arrivals.log")
    sink.start()
    try:
        _send(sink.port, "<before@bench.example>")
        sink.record(True)
        _send(sink.port, "<during@bench.example>")
        sink.record(False)
        _send(sink.port, "<after@bench.example>")
        assert sink.wait_for(3, 10) == 3
        arrivals = sink.arrivals_by_id()
    finally:
        sink.stop()
    assert list(arrivals) == ["<during@bench.example>"]
    assert abs(arrivals["<during@bench.example>"] - time.time()) < 30


def test_each_notification_is_timed_to_the_arrival_of_its_own_email():
    sent = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    rows = [(sent, sent + timedelta(seconds=1), "<a@x>"),
            (sent, sent + timedelta(seconds=3), "<b@x>"),
            (sent, None, "<lost@x>")]
    arrivals = {"<a@x>": sent.timestamp() + 1.5, "<b@x>": sent.timestamp() + 4.0,
                "<other@x>": sent.timestamp() + 99}
    found = delays(rows, arrivals)
    assert (found["matched"], found["unmatched"]) == (2, 1)
    assert found["arrival"]["max"] == 4.0
    assert found["arrival"]["p50"] == 2.75
    assert found["sent_at"]["max"] == 3.0


def test_a_worker_blocked_on_a_row_lock_is_reported_with_what_holds_it():
    waits = LockWaits("unused")
    waits.add([
        (101, WORKER_APP, "active", "Lock", "transactionid", MARK_SENT, [102]),
        (102, WORKER_APP, "idle in transaction", "Client", "ClientRead", LEASE, None),
        # Queued behind the worker that waits for the row: it waits for the row's holder too.
        (103, "", "active", "Lock", "tuple", MARK_SENT, [101]),
        (104, WORKER_APP, "idle", "Client", "ClientRead", "COMMIT", None),
    ])
    waits.add([
        (101, WORKER_APP, "active", "IO", "WALSync", "COMMIT", None),
        (102, WORKER_APP, "idle", "Client", "ClientRead", "COMMIT", None),
    ])
    summary = waits.summary()
    holder = ("idle in transaction (its process runs Python between statements, or waits for a "
              "CPU); last ran `UPDATE notifications_notification`")
    assert summary["lock_waiting"] == 0.5  # the web server's session is not a worker's
    assert summary["waits"] == [
        ("worker", "UPDATE notifications_notification", "worker", holder, 0.5),
        ("web server", "UPDATE notifications_notification", "worker", holder, 0.5),
    ]
    assert summary["doing"]["running a statement, waiting on IO:WALSync"] == 0.5
    assert summary["others_doing"] == {"waiting for a lock (tuple)": 0.5}
    assert "'sent'" in summary["statements"]["UPDATE notifications_notification"]


def test_statements_are_named_by_verb_table_and_lock():
    assert statement_label(HEAD_LOCK) == "SELECT audit_audithead FOR UPDATE SKIP LOCKED"
    assert statement_label('SELECT "n"."id" FROM "notifications_notification" WHERE x '
                           "LIMIT 50 FOR UPDATE SKIP LOCKED") == (
        "SELECT notifications_notification FOR UPDATE SKIP LOCKED")
    assert statement_label('UPDATE "accounts_user" SET "password" = %s') == (
        "UPDATE accounts_user")
    assert statement_label("COMMIT") == "COMMIT"


def test_two_workers_are_compared_apart_in_rounds_other_tenants_loaded_the_machine():
    def round_(scale: float, others_one: float, others_two: float) -> dict:
        return {"scale": scale, "one": {"machine": {"other_cores": others_one}},
                "two": {"machine": {"other_cores": others_two}}}

    res = SimpleNamespace(password_rounds=[round_(1.9, 0.1, 0.2), round_(1.1, 0.1, 1.2),
                                           round_(1.8, 0.3, 0.4)])
    assert quiet_text(res) == (
        "  Two workers / one in the 2 round(s) where other tenants used less than 0.5 core "
        "during both worker trials: x1.90, x1.80; in the other 1: x1.10.")
    assert quiet_text(SimpleNamespace(password_rounds=[round_(1.9, 0.1, 0.2)])) == ""
