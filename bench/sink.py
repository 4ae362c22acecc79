"""A counting SMTP sink on loopback (aiosmtpd), run in its own process.

It accepts every message and only counts it, recording when the first and
the last one arrived (``time.monotonic``, which is one clock for all processes
on Linux), in shared memory the benchmark reads and resets.  While
``recording`` is on it also appends each message's arrival (wall clock, the
clock the database's timestamps are written by) and Message-ID to a file, so
that each e-mail can be matched with the notification that sent it.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from pathlib import Path

COUNT, FIRST, LAST, BYTES, RECORDING = range(5)
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self, stats, arrivals: Path | None = None):
        self.stats = stats
        self.arrivals = arrivals
        self._log = None

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        with self.stats.get_lock():
            if self.stats[COUNT] == 0:
                self.stats[FIRST] = now
            self.stats[COUNT] += 1
            self.stats[LAST] = now
            self.stats[BYTES] += len(envelope.original_content or b"")
            recording = bool(self.stats[RECORDING])
        if recording and self.arrivals is not None:
            self._record(envelope.original_content or b"")
        return "250 Message accepted for delivery"

    def _record(self, content: bytes) -> None:
        match = MESSAGE_ID.search(content, 0, 8192)  # the header comes first
        if self._log is None:
            self._log = open(self.arrivals, "a", buffering=1)  # noqa: SIM115 - the sink's lifetime
        self._log.write(f"{time.time():.6f} {match.group(1).decode() if match else '-'}\n")


def _serve(port: int, stats, ready, stop, arrivals: Path | None) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(
        CountingHandler(stats, arrivals), hostname="127.0.0.1", port=port,
        server_hostname="sink.localhost",
    )
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


class Sink:
    """Start/stop the sink process and read its counters."""

    def __init__(self, port: int, arrivals: Path | None = None):
        ctx = mp.get_context("spawn")
        self.port = port
        self.arrivals = arrivals
        self.stats = ctx.Array("d", 5)
        self._ready = ctx.Event()
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_serve, args=(port, self.stats, self._ready, self._stop, arrivals),
            daemon=True,
        )

    def start(self) -> None:
        self._proc.start()
        if not self._ready.wait(30):
            raise RuntimeError("the SMTP sink did not start")

    def stop(self) -> None:
        self._stop.set()
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.terminate()

    def reset(self) -> None:
        with self.stats.get_lock():
            for i in range(4):
                self.stats[i] = 0

    def record(self, on: bool) -> None:
        """Log each arrival to ``arrivals`` (from now on, or no longer)."""
        if self.arrivals is None:
            raise RuntimeError("this sink keeps no arrival log")
        with self.stats.get_lock():
            self.stats[RECORDING] = 1.0 if on else 0.0

    def arrivals_by_id(self) -> dict[str, float]:
        """Message-ID -> wall-clock arrival time, of every e-mail recorded so far."""
        out: dict[str, float] = {}
        if self.arrivals is None or not self.arrivals.exists():
            return out
        for line in self.arrivals.read_text().splitlines():
            at, _, message_id = line.partition(" ")
            out.setdefault(message_id, float(at))
        return out

    def snapshot(self) -> tuple[int, float, float, int]:
        with self.stats.get_lock():
            return (int(self.stats[COUNT]), self.stats[FIRST], self.stats[LAST],
                    int(self.stats[BYTES]))

    def received(self) -> dict:
        """How many e-mails arrived, how fast between the first and the last, and their size."""
        n, first, last, nbytes = self.snapshot()
        return {"rate": (n - 1) / (last - first), "count": n, "bytes_per_msg": nbytes / n}

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()[0]
            if got >= count:
                return got
            time.sleep(0.02)
        return self.snapshot()[0]

