"""One SMTP connection to the gateway: how many may be open, and for how long.

aiosmtpd's own session, with Hushpost's limits on top: at most so many
connections in all and per client address (an IPv6 client by its /64, as the
sign-in throttle counts it), the ones beyond answered ``421`` and closed before
the greeting, so idle connections cannot use up the gateway's file descriptors;
an idle session is closed after ``idle_timeout`` seconds without a command, and
the message itself (DATA) must arrive within ``data_timeout`` seconds.  Both
close with a ``421`` so the relay knows to try again.  While the gateway stores
a message the clock stops: that time is the gateway's, not the client's.

aiosmtpd keeps one idle timer per session, reset on each command; the DATA
deadline reuses it (its ``_reset_timeout``, ``_timeout_cb`` and
``_timeout_handle``, stable throughout aiosmtpd 1.4).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import multiprocessing
import os
import socket
from collections import Counter

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, syntax
from django.conf import settings

from hushpost.lib.client import normalise_ip

log = logging.getLogger("hushpost.gateway")


class ConnectionLimits:
    """Open connections, in all and per client; used on the SMTP event loop's thread only."""

    def __init__(self, total: int, per_client: int):
        self.total, self.per_client = max(1, total), max(1, per_client)
        self.open: Counter[str] = Counter()

    def admit(self, client: str) -> str | None:
        """None, counting the connection in; or the 421 line that refuses it."""
        if sum(self.open.values()) >= self.total:
            return "421 4.3.2 Hushpost is at its limit of connections; please try again later"
        if self.open[client] >= self.per_client:
            return f"421 4.7.0 too many connections from {client} (at most {self.per_client}); please try again later"
        self.open[client] += 1
        return None

    def release(self, client: str) -> None:
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


class SharedLimits(ConnectionLimits):
    """The same limits, counted across the processes of ``hushpost smtpd --processes N``.

    The counts live in shared memory made before the processes are forked.  Each
    process writes only a row of its own (the clients it holds, each in a slot found
    by a hash of its address among a few neighbouring ones, else anywhere in the row,
    and how many connections each has) and reads the others' rows, so no process
    waits for another, and one that dies or hangs holds no lock; the first process
    clears a dead one's row (``forget``).  The hash is keyed with a secret made at
    start, so nobody can pick addresses that crowd out another client's slots; a row
    has a slot for every connection the gateway admits.  Two processes admitting the
    same client at the very same moment may each let one more in.
    """

    WINDOW = 16

    def __init__(self, total: int, per_client: int, processes: int):
        super().__init__(total, per_client)
        self.processes = max(1, processes)
        self.SLOTS = max(1024, total)
        self.secret = os.urandom(16)  # made before the processes are forked: the same in all
        self.keys = multiprocessing.RawArray("q", self.processes * self.SLOTS)  # a client's hash
        self.counts = multiprocessing.RawArray("i", self.processes * self.SLOTS)
        self.totals = multiprocessing.RawArray("i", self.processes)
        self.row = 0  # this process's row, set once forked (``for_process``)
        self.slots: dict[str, int] = {}  # this process's clients: their slots in its row

    def for_process(self, row: int) -> SharedLimits:
        self.row, self.slots, self.open = row, {}, Counter()
        return self

    def forget(self, row: int) -> None:
        """The process of ``row`` is gone, and its connections with it."""
        base = row * self.SLOTS
        self.counts[base:base + self.SLOTS] = [0] * self.SLOTS
        self.totals[row] = 0

    def _window(self, row: int, key: int) -> list[int]:
        return [row * self.SLOTS + (key + n) % self.SLOTS for n in range(self.WINDOW)]

    def _find(self, row: int, key: int) -> int | None:
        """The client's slot in ``row``: near its hash, else anywhere in the row; None if it has none."""
        found = next((i for i in self._window(row, key) if self.keys[i] == key), None)
        if found is None:
            base = row * self.SLOTS
            keys = self.keys[base:base + self.SLOTS]
            found = base + keys.index(key) if key in keys else None
        return found

    def _free(self, row: int, key: int) -> int | None:
        """A slot of ``row`` holding no connection: near the hash first."""
        found = next((i for i in self._window(row, key) if self.counts[i] == 0), None)
        if found is None:
            base = row * self.SLOTS
            counts = self.counts[base:base + self.SLOTS]
            found = base + counts.index(0) if 0 in counts else None
        return found

    def _held(self, key: int) -> int:
        """The client's connections, in all processes."""
        return sum(self.counts[i] for i in (self._find(row, key) for row in range(self.processes))
                   if i is not None)

    def admit(self, client: str) -> str | None:
        full = "421 4.3.2 Hushpost is at its limit of connections; please try again later"
        if sum(self.totals) >= self.total:
            return full
        digest = hashlib.blake2b(client.encode(), digest_size=8, key=self.secret).digest()
        key = int.from_bytes(digest, "big") >> 1 | 1
        slot = self.slots.get(client)
        if slot is None:  # its slot in this process's row, or a free one: nobody else writes there
            slot = self._find(self.row, key)
            if slot is None:
                slot = self._free(self.row, key)
        if slot is None:
            return full
        if self._held(key) >= self.per_client:
            return f"421 4.7.0 too many connections from {client} (at most {self.per_client}); please try again later"
        self.keys[slot] = key
        self.counts[slot] += 1
        self.totals[self.row] += 1
        self.slots[client] = slot
        self.open[client] += 1
        return None

    def release(self, client: str) -> None:
        self.counts[self.slots[client]] -= 1
        self.totals[self.row] -= 1
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client], self.slots[client]


class Session(SMTP):
    def __init__(self, handler, *, limits: ConnectionLimits, data_timeout: float, **kwargs):
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.data_timeout = data_timeout
        self.client: str | None = None  # set once the connection is counted in
        self.released = False
        self.in_data = False

    def connection_made(self, transport) -> None:
        if self.client is None:  # not the second call that STARTTLS makes
            peer = transport.get_extra_info("peername")
            client = normalise_ip(peer[0] if isinstance(peer, tuple | list) and peer else "")
            refusal = self.limits.admit(client)
            if refusal is not None:
                log.info("gateway refused a connection client=%s reply=421", client)
                transport.write(refusal.encode() + b"\r\n")
                transport.close()
                return
            self.client = client
        super().connection_made(transport)

    def connection_lost(self, error) -> None:
        if self.client is None:  # refused: aiosmtpd never saw it
            return
        if not self.released:
            self.released = True
            self.limits.release(self.client)
        super().connection_lost(error)

    @syntax("DATA")  # as aiosmtpd's own, so HELP still lists it
    async def smtp_DATA(self, arg: str) -> None:
        self.in_data = True
        self._reset_timeout(self.data_timeout)
        limit = self.data_size_limit
        if self.envelope is not None and self.envelope.mail_from in ("", "<>"):
            # A delivery report, which any host may send: read no more of it than a report needs,
            # so a stranger cannot make the gateway hold a staff-sized message in memory.
            self.data_size_limit = min(limit or settings.BOUNCE_MAX_BYTES, settings.BOUNCE_MAX_BYTES)
        try:
            await super().smtp_DATA(arg)
        finally:
            self.data_size_limit = limit
            self.in_data = False
            if self.transport is not None:
                self._reset_timeout()  # idle again, waiting for the next command

    def stop_the_clock(self) -> None:
        """The message has arrived; storing it is the gateway's time, not the client's."""
        self._timeout_handle.cancel()

    def _timeout_cb(self) -> None:
        if self.transport is not None:
            why = (f"the message did not arrive within {self.data_timeout:.0f} s" if self.in_data
                   else f"no command for {self._timeout_duration:.0f} s")
            self.transport.write(f"421 4.4.2 {why}; closing the connection\r\n".encode())
        super()._timeout_cb()


class LimitedController(Controller):
    """aiosmtpd's controller, making :class:`Session` s (its documented ``factory`` hook).

    With ``sockets``, it serves those listening sockets (shared by the processes
    of ``hushpost smtpd --processes N``) instead of binding its own.
    """

    def __init__(self, handler, *, limits: ConnectionLimits, data_timeout: float,
                 sockets: list[socket.socket] | None = None, **kwargs):
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.data_timeout = data_timeout
        self.sockets = sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]

    def factory(self):
        return Session(self.handler, limits=self.limits, data_timeout=self.data_timeout, **self.SMTP_kwargs)

    def _create_server(self):
        if not self.sockets:
            return super()._create_server()
        return self._serve_sockets()

    async def _serve_sockets(self) -> Servers:
        return Servers([await self.loop.create_server(self._factory_invoker, sock=sock, ssl=self.ssl_context)
                        for sock in self.sockets])

    def _trigger_server(self):
        if not self.sockets:
            return super()._trigger_server()
        # A test connection could reach another process on the same sockets: make one
        # session without a connection instead, which is all the test is for.
        self.loop.call_soon_threadsafe(self._factory_invoker)
        return None


class Servers:
    """The asyncio servers of several listening sockets, closed together."""

    def __init__(self, servers: list[asyncio.AbstractServer]):
        self.servers = servers

    def close(self) -> None:
        for server in self.servers:
            server.close()

    async def wait_closed(self) -> None:
        for server in self.servers:
            await server.wait_closed()
