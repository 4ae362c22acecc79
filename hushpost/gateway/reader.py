"""Relayed e-mail is read in a process of its own, under a CPU budget per message.

Python's ``email`` package takes time that grows faster than the length of a
header made of many small tokens (CPython issue 136063): one folded 64 KB
Content-Disposition of semicolons costs half a minute of CPU.  Limits on header
sizes (:mod:`.parse`) refuse the obvious cases at once; this bounds the rest, and
whatever else in a parser written for trusted input turns out to be slow.

Each gateway worker thread hands the raw bytes to a reader: a child process
(``python -m hushpost.gateway.reader``) that parses them under an interval timer
counting its CPU time (``ITIMER_PROF``) and sends back the parsed mail as plain
data.  A message over its budget is refused for good (554, not retried); the
reader lives on for the next one.  Readers are started on first use and kept,
at most one per worker thread.  A reader that does not answer in a generous
wall-clock time is killed and the message answered 451: the machine was too
busy, not the message too costly.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import asdict
from multiprocessing.connection import Connection

from hushpost.gateway.parse import Mail, MailFile, parse_mail
from hushpost.gateway.replies import SmtpRefused

CPU_SECONDS_PER_MB = 0.1  # reading costs about 0.03 s of CPU per MB; three times that and more is spare
MAX_BOUNDARY_LINES = 2000  # about a thousand MIME parts; counted before any parsing


class ReaderFailed(RuntimeError):
    """The reader process died or did not answer; the message was not judged."""


def cpu_budget(raw: bytes, base_seconds: float) -> float:
    return base_seconds + CPU_SECONDS_PER_MB * len(raw) / (1024 * 1024)


def read_mail(raw: bytes, base_seconds: float) -> Mail:
    """``raw`` parsed by a reader process; :class:`SmtpRefused` if it cannot or may not be read."""
    if raw.count(b"\n--") > MAX_BOUNDARY_LINES:
        raise SmtpRefused(554, "5.6.0", "the message has too many MIME parts to be read")
    reader: Reader | None = _pool.take()
    try:
        return reader.read(raw, cpu_budget(raw, base_seconds))
    except ReaderFailed:
        reader.close()
        reader = None
        raise
    finally:
        if reader is not None:  # it answered (a refusal too): it serves the next message
            _pool.give_back(reader)


def close_readers() -> None:
    """End the idle readers (``hushpost smtpd`` stopping); new ones start when needed."""
    _pool.close()


class Reader:
    """One reader process and the socket to it."""

    def __init__(self):
        ours, theirs = socket.socketpair()
        with theirs:
            self.process = subprocess.Popen(  # noqa: S603 - this interpreter, this module
                [sys.executable, "-m", "hushpost.gateway.reader", str(theirs.fileno())],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            )
        self.conn = Connection(ours.detach())

    def read(self, raw: bytes, cpu_seconds: float) -> Mail:
        try:
            self.conn.send_bytes(json.dumps({"cpu_seconds": cpu_seconds}).encode())
            self.conn.send_bytes(raw)
            # Reading costs at most the budget in CPU; wall time more on a busy machine.
            if not self.conn.poll(60 + 4 * cpu_seconds):
                raise ReaderFailed("the reader did not answer in time")
            answer = json.loads(self.conn.recv_bytes())
            if "refused" in answer:
                raise SmtpRefused(*answer["refused"])
            if "error" in answer:
                raise ReaderFailed(f"the reader failed: {answer['error']}")
            files = [MailFile(**f, content=self.conn.recv_bytes()) for f in answer.pop("files")]
        except (OSError, EOFError, ValueError) as exc:  # it died, or said something unreadable
            raise ReaderFailed(f"the reader failed: {type(exc).__name__}") from None
        return Mail(**answer, files=files)

    def close(self) -> None:
        self.conn.close()  # the reader sees the end of its input and exits
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:  # busy with a message: it is of no use now
            self.process.kill()
            self.process.wait()


class _Pool:
    def __init__(self):
        self._lock = threading.Lock()
        self._idle: list[Reader] = []

    def take(self) -> Reader:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        return Reader()

    def give_back(self, reader: Reader) -> None:
        with self._lock:
            self._idle.append(reader)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for reader in idle:
            reader.close()


_pool = _Pool()


# The reader process ------------------------------------------------------------------


class _OverBudget(Exception):
    pass


def _over_budget(signum, frame):
    raise _OverBudget


def _answer(raw: bytes, cpu_seconds: float) -> tuple[dict, list[bytes]]:
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    try:
        try:
            mail = parse_mail(raw)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
    except _OverBudget:
        return {"refused": [554, "5.6.0", f"the message is too costly to read: it would take more than "
                                          f"{cpu_seconds:.0f} s of CPU"]}, []
    except SmtpRefused as refusal:
        reply = refusal.reply
        return {"refused": [reply.code, reply.status, reply.text]}, []
    except RecursionError:
        return {"refused": [554, "5.6.0", "the message's MIME structure is nested too deeply to be read"]}, []
    except Exception as exc:  # reported by type: a bug is the gateway's to fix (451), not the sender's
        return {"error": type(exc).__name__}, []
    answer = asdict(mail)
    blobs = [f.pop("content") for f in answer["files"]]
    return answer, blobs


def serve(fd: int) -> None:
    conn = Connection(fd)
    signal.signal(signal.SIGPROF, _over_budget)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the gateway, which ends its readers
    while True:
        try:
            request = json.loads(conn.recv_bytes())
            raw = conn.recv_bytes()
        except EOFError:  # the gateway closed its end, or is gone
            return
        answer, blobs = _answer(raw, float(request["cpu_seconds"]))
        del raw
        conn.send_bytes(json.dumps(answer).encode())
        for blob in blobs:
            conn.send_bytes(blob)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
