"""``hushpost smtpd``: the SMTP server organisations' mail servers relay to.

aiosmtpd speaks SMTP on an asyncio loop in a thread of its own; every step
that touches Django (checking a sender, signing in, storing a message) runs
in a small pool of worker threads, each on its own database connection.  A
connection that failed is closed before the next step (``close_old_connections``)
and a new one opened; one kept open is checked before each step, on its socket
rather than with a round trip (``hushpost.lib.postgres``), so a connection the
database dropped is replaced on the next try.

AUTH is offered only inside TLS (STARTTLS, with ``HUSHPOST_SMTPD_TLS_CERT``
and ``HUSHPOST_SMTPD_TLS_KEY``): a password never crosses the network in the
clear.  Without a certificate, only clients in an organisation's networks can
relay.
"""

from __future__ import annotations

import asyncio
import binascii
import concurrent.futures
import contextlib
import functools
import ipaddress
import logging
import math
import socket
import ssl
import threading
import time
from base64 import b64decode

from aiosmtpd.smtp import MISSING, AuthResult
from django.conf import settings
from django.db import close_old_connections, connections

from hushpost.audit.actions import current_client
from hushpost.gateway import actions, spool
from hushpost.gateway.access import Client, authenticate
from hushpost.gateway.reader import close_readers
from hushpost.gateway.session import ConnectionLimits, LimitedController
from hushpost.lib.env import ConfigError
from hushpost.lib.metrics import count_gateway_reply

log = logging.getLogger("hushpost.gateway")


def _in_worker(func, *args, **kwargs):
    """Django code for one SMTP step, on a database connection known to be usable.

    Audit events recorded meanwhile name the relaying server as the client.
    """
    client = kwargs.get("client")
    token = current_client.set(f"smtp {client.ip}" if client is not None and client.ip else "smtp")
    _drop_broken_connections()
    try:
        return func(*args, **kwargs)
    finally:
        _drop_broken_connections()
        current_client.reset(token)


def _drop_broken_connections() -> None:
    """Close a connection that failed or outlived CONN_MAX_AGE; the next query opens a new one
    (and checks a kept one first)."""
    try:
        close_old_connections()
    except Exception:  # closing a dead connection can fail too; the next step opens a new one
        log.warning("gateway could not close a database connection", exc_info=True)


def _client(session) -> Client:
    return Client.of(session.peer, session.auth_data if session.authenticated else None)


def _authenticate(username: str, password: str, ip: str) -> int | None | Exception:
    try:
        return authenticate(username, password, ip)
    except Exception as exc:
        log.exception("gateway could not check a sign-in")
        return exc


class Handler:
    """aiosmtpd's handler: each hook hands its Django work to the worker threads."""

    def __init__(self, executor: concurrent.futures.Executor):
        self.executor = executor

    async def _call(self, func, *args, **kwargs):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(_in_worker, func, *args, **kwargs))

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply, sender = await self._call(actions.check_envelope_sender, address, _client(session))
        count_gateway_reply("mail", reply.accepted)
        if reply.accepted:
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            # DATA uses the account found here, unless the transaction is slow: a sender
            # disabled meanwhile is refused then.
            envelope.hushpost_sender = (sender, time.monotonic())
        return str(reply)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if actions.takes_bounces(envelope.mail_from):  # a delivery report: to the bounce address only
            reply = actions.check_bounce_recipient(address, envelope.rcpt_tos)
        else:
            reply = actions.check_recipient(address, envelope.rcpt_tos)
        count_gateway_reply("rcpt", reply.accepted)
        if reply.accepted and address.lower() not in envelope.rcpt_tos:
            envelope.rcpt_tos.append(address.lower())
            envelope.rcpt_options.extend(rcpt_options)
        return str(reply)

    async def handle_DATA(self, server, session, envelope):
        server.stop_the_clock()
        if actions.takes_bounces(envelope.mail_from):
            reply = await self._call(actions.receive_bounce, envelope.original_content,
                                     rcpt_tos=list(envelope.rcpt_tos), client=_client(session))
            count_gateway_reply("data", reply.accepted)
            return str(reply)
        sender, found_at = getattr(envelope, "hushpost_sender", (None, -math.inf))
        receive = spool.accept if spool.takes(envelope.original_content) else actions.receive_mail
        reply = await self._call(
            receive, envelope.original_content,
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), client=_client(session),
            sender=sender, sender_found_at=found_at,
        )
        count_gateway_reply("data", reply.accepted)
        return str(reply)

    # SMTP AUTH.  aiosmtpd's own PLAIN and LOGIN call a synchronous
    # authenticator on the event loop; these replace them so the password
    # check (Argon2, on purpose slow) runs in a worker thread instead.
    async def auth_PLAIN(self, server, args):
        blob = await self._auth_value(server, args, "")
        if blob is MISSING:
            return AuthResult(success=False, handled=True)
        parts = blob.split(b"\x00")
        if len(parts) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._sign_in(server, parts[1], parts[2])

    async def auth_LOGIN(self, server, args):
        login = await self._auth_value(server, args, server.AuthLoginUsernameChallenge)
        if login is MISSING:
            return AuthResult(success=False, handled=True)
        password = await server.challenge_auth(server.AuthLoginPasswordChallenge)
        if password is MISSING:
            return AuthResult(success=False, handled=True)
        return await self._sign_in(server, login, password)

    async def _auth_value(self, server, args, challenge):
        if len(args) == 1:
            return await server.challenge_auth(challenge)  # answers 501 itself on nonsense
        try:
            return b64decode(args[1].encode(), validate=True)
        except binascii.Error:
            await server.push("501 5.5.2 Can't decode base64")
            return MISSING

    async def _sign_in(self, server, login: bytes, password: bytes) -> AuthResult:
        try:
            username, secret = login.decode(), password.decode()
        except UnicodeDecodeError:
            return AuthResult(success=False, handled=False)
        peer = server.session.peer
        ip = peer[0] if isinstance(peer, tuple) and peer else "unknown"
        org_id = await self._call(_authenticate, username, secret, ip)
        if isinstance(org_id, Exception):
            return AuthResult(success=False, handled=False, message="454 4.7.0 Temporary authentication failure")
        if org_id is None:
            log.info("gateway sign-in refused reply=535")
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=org_id)


class Gateway:
    """The SMTP server and its worker threads; ``start`` returns once it listens."""

    def __init__(self, host: str, port: int, *, tls_context: ssl.SSLContext | None = None,
                 require_tls: bool = True, max_bytes: int = 150 * 1024 * 1024, threads: int = 8,
                 hostname: str | None = None, max_connections: int = 200, max_per_client: int = 20,
                 idle_timeout: float = 300, data_timeout: float = 600,
                 sockets: list[socket.socket] | None = None, limits: ConnectionLimits | None = None):
        """``sockets``: listening sockets to serve instead of binding ``host:port`` (shared by
        the processes of ``hushpost smtpd --processes N``), and ``limits``: their connection
        limits, counted across those processes."""
        # aiosmtpd logs addresses at INFO and every line of content at DEBUG.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self.threads = max(1, threads)
        self.executor = concurrent.futures.ThreadPoolExecutor(self.threads, thread_name_prefix="hushpost-smtpd")
        self.tls = tls_context is not None
        self.require_tls = self.tls and require_tls
        self.max_bytes = max_bytes
        self.limits = limits or ConnectionLimits(max_connections, max_per_client)
        self.controller = LimitedController(
            Handler(self.executor), limits=self.limits, data_timeout=data_timeout, sockets=sockets,
            timeout=idle_timeout,
            hostname=host, port=port, server_hostname=hostname or None, ident="Hushpost",
            data_size_limit=max_bytes, tls_context=tls_context, require_starttls=self.require_tls,
            auth_require_tls=True,
        )

    @property
    def port(self) -> int:
        return self.controller.port

    @property
    def address(self) -> str:
        host = self.controller.hostname
        return f"[{host}]:{self.controller.port}" if ":" in host else f"{host}:{self.controller.port}"

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
        self._close_connections()
        self.executor.shutdown(wait=True)
        close_readers()

    def _close_connections(self) -> None:
        # Each worker thread holds its own database connection: close them
        # from inside, one job per thread (the barrier keeps each on its own).
        barrier = threading.Barrier(self.threads)

        def close() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=5)
            connections.close_all()

        concurrent.futures.wait([self.executor.submit(close) for _ in range(self.threads)])


def parse_bind(value: str) -> tuple[str, int]:
    value = value.strip()
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"cannot listen on {value!r}: write it as 127.0.0.1:2525, "
                                 "0.0.0.0:2525 or [::]:2525")
    return host, int(port)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from None
    return context


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def build(bind: str | None = None, *, sockets: list[socket.socket] | None = None,
          limits: ConnectionLimits | None = None) -> Gateway:
    """The gateway ``hushpost smtpd`` runs, from the HUSHPOST_SMTPD_* settings (``sockets`` and
    ``limits``: one of several processes, see :class:`Gateway`)."""
    host, port = parse_bind(bind or settings.SMTPD_BIND)
    cert, key = settings.SMTPD_TLS_CERT, settings.SMTPD_TLS_KEY
    if bool(cert) != bool(key):
        raise ConfigError("set both HUSHPOST_SMTPD_TLS_CERT and HUSHPOST_SMTPD_TLS_KEY, or neither")
    context = tls_context(cert, key) if cert else None
    if settings.PRODUCTION and context is None and not _is_loopback(host) and not settings.SMTPD_ALLOW_PLAINTEXT:
        raise ConfigError(
            f"the gateway would take messages in plain text on {host}: set HUSHPOST_SMTPD_TLS_CERT and "
            "HUSHPOST_SMTPD_TLS_KEY, or, on a private network, HUSHPOST_SMTPD_ALLOW_PLAINTEXT=true"
        )
    return Gateway(host, port, tls_context=context, require_tls=settings.SMTPD_REQUIRE_TLS,
                   max_bytes=settings.SMTPD_MAX_BYTES, threads=settings.SMTPD_THREADS,
                   hostname=settings.SMTPD_HOSTNAME, max_connections=settings.SMTPD_MAX_CONNECTIONS,
                   max_per_client=settings.SMTPD_MAX_PER_CLIENT, idle_timeout=settings.SMTPD_IDLE_TIMEOUT,
                   data_timeout=settings.SMTPD_DATA_TIMEOUT, sockets=sockets, limits=limits)


def listen(bind: str | None = None) -> list[socket.socket]:
    """Listening sockets for ``bind`` (every address it names, as asyncio binds them), to be
    shared by the gateway's processes."""
    host, port = parse_bind(bind or settings.SMTPD_BIND)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(100)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets
