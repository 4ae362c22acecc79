"""The gateway's limits: no single message, and no single client, can hold it.

Messages built to be slow to parse are refused (552 at once for oversized
headers; 554 once a message has spent its CPU budget), and the session goes on
to the next message.  Connections beyond the caps get 421; a session that sits
idle, or trickles its message in, is closed.  The caps and timeouts are tested
on a real `hushpost smtpd` process with its own database.
"""

from __future__ import annotations

import contextlib
import copy
import os
import select
import signal
import smtplib
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hushpost.attachments.models import Attachment
from hushpost.gateway.session import SharedLimits
from hushpost.messaging.content import open_content
from hushpost.messaging.models import Message
from tests.gateway_mail import (
    mail,
    semicolons,
    slow_to_parse,
    start_smtpd,
    stop_smtpd,
    submit,
    transaction,
)
from tests.personas import ALICE, BOB, PASSWORD
from tests.settings import _free_port

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).parent.parent
STORED = (250, "2.0.0 stored as a secure message")


def subjects(alice) -> list[str]:
    return [open_content(m).subject for m in Message.objects.filter(author=alice).order_by("id")]


# Messages slow to parse ------------------------------------------------------------------

def test_oversized_headers_are_refused_at_once_and_the_session_goes_on(make_gateway, relaying, alice):
    gateway = make_gateway()
    # Ten files, each with a folded 64 KB Content-Disposition: 153 s of CPU to parse in full.
    ten_parts = slow_to_parse(10, 64 * 1024)
    # One 256 KB header (a To list that is all semicolons): minutes of CPU.
    one_header = (b"From: alice@northwind.example\r\nTo: bob@client.example,\r\n" + semicolons(256 * 1024)
                  + b"Subject: [secure] Huge\r\n\r\nHello.\r\n")
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        started = time.monotonic()
        code, reply = transaction(client, ten_parts, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (552, "5.3.4 the message has a Content-Disposition field of 64 KB; "
                                      "Hushpost reads header fields of at most 32 KB")
        code, reply = transaction(client, one_header, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (552, "5.3.4 the message has a To field of 256 KB; "
                                      "Hushpost reads header fields of at most 32 KB")
        assert time.monotonic() - started < 30  # generous: a bound on the protection, not a speed test
        # The same session goes on, and the gateway answers the next message as usual.
        assert transaction(client, mail("[secure] Right after")) == STORED
    assert subjects(alice) == ["Right after"]
    assert not Attachment.objects.exists()


def test_a_message_that_spends_its_cpu_budget_bounces_and_the_next_one_is_stored(
    make_gateway, relaying, alice, settings,
):
    settings.SMTPD_READ_CPU_SECONDS = 1
    gateway = make_gateway()
    # Every header under the limits, yet about 30 s of CPU to parse in full.
    slow = slow_to_parse(12, 30 * 1024)
    with smtplib.SMTP("127.0.0.1", gateway.port, timeout=60) as client:
        client.ehlo()
        started = time.monotonic()
        code, reply = transaction(client, slow, mail_from=ALICE, rcpts=[BOB])
        assert (code, reply) == (554, "5.6.0 the message is too costly to read: it would take more "
                                      "than 1 s of CPU")  # for good: the relay bounces it, no retries
        assert time.monotonic() - started < 30  # generous: a bound on the protection, not a speed test
        assert transaction(client, mail("[secure] Right after")) == STORED
    # Messages in other sessions meanwhile are unaffected too.
    assert submit(gateway.port, mail("[secure] Another session")) == STORED
    assert subjects(alice) == ["Right after", "Another session"]
    assert not Attachment.objects.exists()


# `hushpost smtpd`: connections and time -------------------------------------------------------

def cli(env: dict, *args: str, stdin: str = "") -> None:
    result = subprocess.run([sys.executable, "-m", "hushpost.cli", *args], env=env, cwd=ROOT, input=stdin,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """A data directory of its own (SQLite) where Northwind's server on 127.0.0.1 relays for Alice."""
    data = tmp_path_factory.mktemp("smtpd")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))}
    env |= {"HUSHPOST_MODE": "development", "HUSHPOST_DATA_DIR": str(data)}
    cli(env, "migrate", "-v0")
    cli(env, "org", "add", "--name", "Northwind Health", "--domain", "northwind.example")
    cli(env, "user", "add", "--email", ALICE, "--name", "Alice Moreno", stdin=PASSWORD + "\n")
    cli(env, "gateway", "set", "northwind-health", "--networks", "127.0.0.1")
    return env, data / "hushpost.sqlite3"


@pytest.fixture
def smtpd(deployment):
    """Start `hushpost smtpd` with the given HUSHPOST_SMTPD_* settings; its port."""
    env, _ = deployment
    started = []

    def start(**smtpd_settings) -> int:
        port = _free_port()
        extra = {f"HUSHPOST_SMTPD_{name}": str(value) for name, value in smtpd_settings.items()}
        started.append(start_smtpd(env | extra, port))
        return port

    yield start
    for process in started:
        stop_smtpd(process)


def stored(deployment) -> int:
    with sqlite3.connect(deployment[1]) as db:
        return db.execute("SELECT count(*) FROM messaging_message").fetchone()[0]


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))


def read_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


def greeted(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = connect(port, source)
    assert sock.recv(4096).startswith(b"220 ")
    return sock


def hold(port: int, count: int) -> list[socket.socket]:
    """``count`` greeted connections, once the connection that found the gateway listening is
    counted out (another process may still be closing it)."""
    deadline = time.monotonic() + 10
    while True:
        socks = [connect(port) for _ in range(count)]
        greetings = [sock.recv(4096) for sock in socks]
        if all(g.startswith(b"220 ") for g in greetings) or time.monotonic() > deadline:
            assert all(g.startswith(b"220 ") for g in greetings), greetings
            return socks
        for sock in socks:
            sock.close()
        time.sleep(0.2)


def relay_or_421(port: int, message) -> tuple[int, str]:
    try:
        return submit(port, message)
    except smtplib.SMTPConnectError as refused:  # a 421 instead of the greeting
        return refused.smtp_code, refused.smtp_error.decode()


@pytest.mark.parametrize("processes", [1, 2])
def test_connections_beyond_the_caps_get_421_and_a_freed_slot_serves_a_relay(smtpd, deployment, processes):
    # With several processes on the port, the caps count the connections of all of them.
    port = smtpd(MAX_PER_CLIENT=3, MAX_CONNECTIONS=4, PROCESSES=processes)
    held = hold(port, 3)
    with connect(port) as extra:
        assert read_until_closed(extra) == (b"421 4.7.0 too many connections from 127.0.0.1 (at most 3); "
                                            b"please try again later\r\n")
    held.append(greeted(port, "127.0.0.2"))  # another client still has room
    with connect(port, "127.0.0.3") as extra:
        assert read_until_closed(extra) == (b"421 4.3.2 Hushpost is at its limit of connections; "
                                            b"please try again later\r\n")
    before = stored(deployment)
    held.pop(0).close()
    deadline = time.monotonic() + 10  # the gateway notices the closed connection within moments
    while (reply := relay_or_421(port, mail("[secure] Once a slot is free")))[0] == 421 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert reply == STORED
    assert stored(deployment) == before + 1
    for sock in held:
        sock.close()


def test_an_idle_session_is_closed_after_the_idle_timeout(smtpd):
    port = smtpd(IDLE_TIMEOUT=2)
    with greeted(port) as idle:
        idle.sendall(b"EHLO relay.northwind.example\r\n")
        started = time.monotonic()
        closing = read_until_closed(idle)
        waited = time.monotonic() - started
    assert closing.endswith(b"421 4.4.2 no command for 2 s; closing the connection\r\n")
    assert 1.5 < waited < 25
    assert submit(port, mail("[secure] Sent at a normal pace")) == STORED


def test_a_message_that_trickles_in_is_cut_off_after_the_data_timeout(smtpd):
    port = smtpd(DATA_TIMEOUT=3, IDLE_TIMEOUT=60)
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.ehlo()
        assert client.mail(ALICE)[0] == 250 and client.rcpt(BOB)[0] == 250
        client.putcmd("data")
        assert client.getreply()[0] == 354
        started, answer = time.monotonic(), b""
        while not answer and time.monotonic() - started < 25:
            client.sock.sendall(b"X-Trickle: one line a second\r\n")
            if select.select([client.sock], [], [], 1)[0]:
                answer = client.sock.recv(4096)
        waited = time.monotonic() - started
    assert answer == b"421 4.4.2 the message did not arrive within 3 s; closing the connection\r\n"
    assert 2 < waited < 25
    assert submit(port, mail("[secure] Sent at a normal pace")) == STORED


# Several processes ------------------------------------------------------------------------

def stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command's name: the state, then the parent."""
    with open(f"/proc/{pid}/stat") as file:
        return file.read().rsplit(")", 1)[1].split()


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if int(stat(int(entry))[1]) == pid:
                    found.append(int(entry))
    return sorted(found)


def pause(pid: int) -> None:
    os.kill(pid, signal.SIGSTOP)
    while stat(pid)[0] != "T":  # stopped once the kernel has stopped it, not when kill returns
        time.sleep(0.01)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the gateway's processes in /proc")
def test_several_gateway_processes_accept_on_one_port(deployment):
    env, _ = deployment
    port = _free_port()
    process = start_smtpd(env | {"HUSHPOST_SMTPD_THREADS": "2"}, port, "--processes", "2")
    before = stored(deployment)
    try:
        deadline = time.monotonic() + 30  # the port is bound before the processes are started
        while len(gateways := children(process.pid)) < 2:
            assert time.monotonic() < deadline, "the gateway processes did not start"
            time.sleep(0.1)
        for paused in gateways:
            # With one process paused, the other takes every connection on the port.
            pause(paused)
            try:
                for n in range(3):
                    assert submit(port, mail(f"[secure] While {paused} rests, {n}")) == STORED
            finally:
                os.kill(paused, signal.SIGCONT)
        os.kill(gateways[0], signal.SIGKILL)  # a process that dies is replaced
        deadline = time.monotonic() + 30
        while len(children(process.pid)) < 2 or gateways[0] in children(process.pid):
            assert time.monotonic() < deadline, "the gateway process was not replaced"
            time.sleep(0.1)
        assert submit(port, mail("[secure] After the replacement")) == STORED
        survivors = children(process.pid)
    finally:
        out, err = stop_smtpd(process)
    assert stored(deployment) == before + 7
    assert "listening on 127.0.0.1" in out and "2 processes" in out and "stopped" in out
    assert "exited with status -9; starting another" in err
    for pid in survivors:  # each stopped on SIGTERM, and was waited for
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_shared_limits_count_the_connections_of_every_process():
    limits = SharedLimits(total=4, per_client=2, processes=2)
    first, second = limits, copy.copy(limits).for_process(1)  # as a forked process holds them
    assert first.admit("192.0.2.1") is None and second.admit("192.0.2.1") is None
    assert "too many connections from 192.0.2.1 (at most 2)" in first.admit("192.0.2.1")
    assert second.admit("192.0.2.2") is None and first.admit("192.0.2.3") is None
    assert "at its limit of connections" in second.admit("192.0.2.4")
    first.release("192.0.2.1")
    assert second.admit("192.0.2.1") is None
    limits.forget(1)  # the second process died, and its three connections with it
    assert first.admit("192.0.2.1") is None and first.admit("192.0.2.4") is None


def test_clients_crowding_one_anothers_slots_never_lock_a_client_out(monkeypatch):
    # However the addresses fall (here every one in the same few slots), a client holding no
    # connection is admitted while the gateway is below its total.
    monkeypatch.setattr(SharedLimits, "WINDOW", 1)
    limits = SharedLimits(total=500, per_client=2, processes=2)
    other = copy.copy(limits).for_process(1)
    crowd = [f"198.51.100.{n}" for n in range(1, 200)]
    for client in crowd:
        assert limits.admit(client) is None and other.admit(client) is None
    assert "too many connections from 198.51.100.7" in limits.admit("198.51.100.7")
    assert limits.admit("192.0.2.10") is None and other.admit("192.0.2.10") is None
    assert "too many connections from 192.0.2.10" in other.admit("192.0.2.10")


def test_the_slots_of_an_address_cannot_be_worked_out_beforehand():
    one, two = SharedLimits(total=10, per_client=2, processes=1), SharedLimits(total=10, per_client=2, processes=1)
    assert one.secret != two.secret  # made at each start: the hash of an address differs between gateways


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="finds the gateway's processes in /proc")
def test_gateway_processes_stop_when_the_first_one_is_killed(deployment):
    # Nothing would restart or stop them, and they would keep the port: they stop by themselves.
    env, _ = deployment
    port = _free_port()
    process = start_smtpd(env | {"HUSHPOST_SMTPD_THREADS": "2"}, port, "--processes", "2")
    try:
        deadline = time.monotonic() + 30
        while len(gateways := children(process.pid)) < 2:
            assert time.monotonic() < deadline, "the gateway processes did not start"
            time.sleep(0.1)
        process.kill()
        process.wait(10)
        deadline = time.monotonic() + 15
        while any(os.path.exists(f"/proc/{pid}") and stat(pid)[0] != "Z" for pid in gateways):
            assert time.monotonic() < deadline, "gateway processes outlived the first one"
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            stop_smtpd(process)
        else:
            process.communicate(timeout=10)
