"""The mail relay the fault tests deliver to: a real SMTP server in a process of its own.

``python -m tests.faults.relay --port P --log FILE`` accepts every message and
appends one JSON line per accepted e-mail to FILE (flushed at once, so a test
reads what the relay had accepted the moment it looks). ``--delay`` slows each
message down, as a distant relay is. ``--hang`` is a relay that accepts TCP
connections and never says a word. With ``--control DIR``, a file ``hold`` in
DIR makes the relay keep the next message waiting for its reply until ``hold``
is removed (a file ``holding`` says one is waiting): a test can stop a worker
while it waits for the relay's answer, the moment no one can tell whether an
e-mail went. A ``hold`` file that names an envelope sender holds only that
sender's e-mails: one worker is caught so, while the others go on. A message whose sender is gone by the time it would be answered is
not accepted.

:class:`Relay` starts, stops and reads it from a test.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
LINK = re.compile(r"https?://\S+")


class Recorder:
    def __init__(self, log: Path, delay: float, control: Path | None) -> None:
        self.out = log.open("a", encoding="utf-8")
        self.delay, self.control = delay, control

    def held(self, mail_from: str) -> bool:
        try:
            only = (self.control / "hold").read_text().strip()
        except FileNotFoundError:
            return False
        return not only or only == mail_from

    async def handle_DATA(self, server, session, envelope):
        from tests.smtp import Received

        if self.delay:
            await asyncio.sleep(self.delay)
        if self.control is not None and self.held(envelope.mail_from):
            (self.control / "holding").touch()
            try:
                while (self.control / "hold").exists():
                    await asyncio.sleep(0.02)
            finally:  # also when the sender vanishes meanwhile, which cancels this
                (self.control / "holding").unlink(missing_ok=True)
        if server.transport is None or server.transport.is_closing():
            return "451 Sender went away"
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        received = Received(envelope.mail_from, list(envelope.rcpt_tos), message)
        try:
            password = received.temporary_password()
        except AttributeError:  # no temporary password in this e-mail
            password = None
        entry = {
            "t": time.time(), "mail_from": envelope.mail_from, "rcpt": list(envelope.rcpt_tos),
            "subject": received.subject, "message_id": str(message["Message-ID"]),
            "password": password, "links": LINK.findall(received.text), "text": received.text,
        }
        self.out.write(json.dumps(entry) + "\n")
        self.out.flush()
        return "250 Message accepted for delivery"


class Silent(asyncio.Protocol):
    """A connection the hung relay accepts, reads and never answers."""


async def serve(args) -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    if args.hang:
        server = await loop.create_server(Silent, "127.0.0.1", args.port)
    else:
        control = Path(args.control) if args.control else None
        handler = Recorder(Path(args.log), args.delay, control)
        server = await loop.create_server(lambda: SMTP(handler, hostname="relay.test"), "127.0.0.1", args.port)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default="")
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--control", default="")
    parser.add_argument("--hang", action="store_true")
    asyncio.run(serve(parser.parse_args()))


class Relay:
    """The relay on one port, started, stopped and restarted by a test."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.port = port
        self.log = workdir / "relay.jsonl"
        self.control = workdir / "relay-control"
        self.control.mkdir(exist_ok=True)
        self.process: subprocess.Popen | None = None

    def start(self, *, delay: float = 0.0, hang: bool = False) -> None:
        assert self.process is None, "the relay is already running"
        argv = [sys.executable, "-m", "tests.faults.relay", "--port", str(self.port)]
        argv += ["--hang"] if hang else ["--log", str(self.log), "--delay", str(delay), "--control", str(self.control)]
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.process.stdout.readline()
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the relay did not start on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process.stdout.close()
            self.process = None

    def accepted(self) -> list[dict]:
        """Every e-mail accepted so far, in the order the relay accepted them."""
        if not self.log.exists():
            return []
        lines = self.log.read_text(encoding="utf-8").splitlines()
        # The last line may be half written as we read it.
        return [json.loads(line) for line in lines if line.endswith("}")]

    def hold(self, mail_from: str = "") -> None:
        """Hold the next e-mail, or the next one from ``mail_from`` only."""
        (self.control / "holding").unlink(missing_ok=True)
        written = self.control / "hold.new"
        written.write_text(mail_from)
        written.replace(self.control / "hold")  # whole, as the relay reads it

    def holding(self) -> bool:
        return (self.control / "holding").exists()

    def release(self) -> None:
        (self.control / "hold").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
