"""A counting SMTP sink on loopback (aiosmtpd), run in its own process.

It accepts every message and only counts it, recording when the first and
the last one arrived (``time.monotonic``, which is one clock for all processes
on Linux), in shared memory the benchmark reads and resets.
"""

from __future__ import annotations

import multiprocessing as mp
import time

COUNT, FIRST, LAST, BYTES = range(4)


class CountingHandler:
    def __init__(self, stats):
        self.stats = stats

    async def handle_DATA(self, server, session, envelope):
        now = time.monotonic()
        with self.stats.get_lock():
            if self.stats[COUNT] == 0:
                self.stats[FIRST] = now
            self.stats[COUNT] += 1
            self.stats[LAST] = now
            self.stats[BYTES] += len(envelope.original_content or b"")
        return "250 Message accepted for delivery"


def _serve(port: int, stats, ready, stop) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(
        CountingHandler(stats), hostname="127.0.0.1", port=port, server_hostname="sink.localhost"
    )
    controller.start()
    ready.set()
    try:
        stop.wait()
    finally:
        controller.stop()


class Sink:
    """Start/stop the sink process and read its counters."""

    def __init__(self, port: int):
        ctx = mp.get_context("spawn")
        self.port = port
        self.stats = ctx.Array("d", 4)
        self._ready = ctx.Event()
        self._stop = ctx.Event()
        self._proc = ctx.Process(
            target=_serve, args=(port, self.stats, self._ready, self._stop), daemon=True
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

    def snapshot(self) -> tuple[int, float, float, int]:
        with self.stats.get_lock():
            return (int(self.stats[COUNT]), self.stats[FIRST], self.stats[LAST],
                    int(self.stats[BYTES]))

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.snapshot()[0]
            if got >= count:
                return got
            time.sleep(0.02)
        return self.snapshot()[0]

