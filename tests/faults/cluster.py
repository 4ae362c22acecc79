"""Hushpost on several machines, played on one: each process with a data directory of its own.

Two ``hushpost serve`` behind nginx (deploy/nginx.example.conf with a second ``server`` line in
its upstream block, see ``tests/proxy.py``), two ``hushpost worker`` and two ``hushpost smtpd``,
sharing only what machines share: the PostgreSQL database, the S3-compatible bucket, the mail
relay and the keys. A "machine" is killed as a crash or a pulled plug would: SIGKILL to every
process it runs, with no chance to tidy up.

The people using it: :class:`Sender`, a sender's browser signing in and sending from Compose
through nginx (following the real forms, CSRF tokens and redirects, and sending again with the
same form when the page says it failed, as a person would); :class:`Relaying`, an
organisation's mail server relaying mail to the gateways and trying again after a temporary
refusal, as mail servers do. Both keep a record of everything they were told.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import smtplib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import requests
from requests.adapters import HTTPAdapter

from tests.faults.deployment import ROOT, Deployment, Worker, hushpost_command
from tests.gateway_mail import mail, submit
from tests.proxy import PROXY_ADDRESS, Nginx, wait_for
from tests.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.settings import _free_port

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SENT = "Your secure message was sent to"
BUCKET = "hushpost-cluster"
# A person waits this long for a page before deciding the portal said nothing at all.
PAGE_TIMEOUT = 90
# How often a person sends the same form again before giving up on it.
ATTEMPTS = 12


def worker_address(n: int) -> str:
    """The From address of worker ``n``'s e-mails, so the relay can tell the workers apart."""
    return f"worker-{n}@hushpost.localhost"


def patient(i: int) -> str:
    return f"patient{i:02d}@mail.example"


class Machine:
    """One process of the deployment (and its children), on a machine of its own: its own data
    directory and log; killed, it is gone with everything it had in hand."""

    def __init__(self, name: str, argv: list[str], env: dict, folder: Path) -> None:
        self.name = name
        self.env = env | {"HUSHPOST_DATA_DIR": str(folder / name)}
        self.log = folder / f"{name}.log"
        with self.log.open("ab") as out:
            # A session of its own, so that killing the machine reaches every process in it.
            self.process = subprocess.Popen(argv, env=self.env, cwd=ROOT, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self.killed = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        self.killed = True
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if not self.alive():
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """The deployment's processes around one database: started, killed and stopped by a test."""

    def __init__(self, deployment: Deployment, folder: Path) -> None:
        self.deployment = deployment
        self.folder = folder
        self.s3 = S3Server()
        self.web_ports = [_free_port(), _free_port()]
        (folder / "nginx").mkdir()
        self.nginx = Nginx(folder / "nginx", upstreams=[f"127.0.0.1:{port}" for port in self.web_ports])
        self.gateway_ports = [_free_port(), _free_port()]
        self.web: list[Machine] = []
        self.workers: list[Worker] = []
        self.gateways: list[Machine] = []
        self.archived: list[str] = []

    def start(self, *, senders: int, archive: bool = False) -> list[str]:
        """Everything running; returns the senders' addresses. ``archive``: the organisation
        also has old messages its retention policy makes due (their uids in ``archived``)."""
        self.s3.start()
        self.s3.client().create_bucket(Bucket=BUCKET)
        self.deployment.env |= {
            "HUSHPOST_BASE_URL": self.nginx.url,
            "HUSHPOST_STORAGE": "s3", "HUSHPOST_S3_BUCKET": BUCKET, "HUSHPOST_S3_ENDPOINT_URL": self.s3.url,
            "HUSHPOST_S3_REGION": REGION, "HUSHPOST_S3_ACCESS_KEY_ID": ACCESS_KEY,
            "HUSHPOST_S3_SECRET_ACCESS_KEY": SECRET_KEY,
        }
        addresses = self.deployment.script("organisation", "--senders", str(senders))["senders"]
        if archive:
            self.archived = self.deployment.script("retention", "archive")["uids"]
        self.deployment.relay.start(delay=0.01)
        env = self.deployment.env
        for n, port in enumerate(self.web_ports, 1):
            web_env = env | {"HUSHPOST_BIND": f"127.0.0.1:{port}", "HUSHPOST_BEHIND_TLS_PROXY": "true",
                             "HUSHPOST_FORWARDED_ALLOW_IPS": PROXY_ADDRESS}
            self.web.append(Machine(f"web-{n}", [hushpost_command(), "serve", "--workers", "1", "--threads", "4"],
                                    web_env, self.folder))
        for n, port in enumerate(self.gateway_ports, 1):
            self.gateways.append(Machine(f"gateway-{n}", [hushpost_command(), "smtpd", "--bind", f"127.0.0.1:{port}"],
                                         env | {"HUSHPOST_SMTPD_THREADS": "2"}, self.folder))
        for n in (1, 2):
            worker_env = env | {"HUSHPOST_DATA_DIR": str(self.folder / f"worker-{n}"),
                                "HUSHPOST_FROM_EMAIL": worker_address(n)}
            self.workers.append(Worker(worker_env, self.folder / f"worker-{n}.log"))
        for machine, port in zip(self.web, self.web_ports, strict=True):
            wait_for(f"http://127.0.0.1:{port}/healthz", None, machine.name, machine.process)
        self.nginx.start()
        for machine, port in zip(self.gateways, self.gateway_ports, strict=True):
            wait_for_port(port, machine)
        return addresses

    def machines(self) -> list:
        return [*self.web, *self.workers, *self.gateways]

    def stop(self) -> None:
        self.nginx.stop()
        for machine in self.machines():
            machine.stop()
        self.s3.stop()

    def logs(self) -> str:
        return "".join(f"\n--- {getattr(m, 'name', 'worker')} {m.process.pid} "
                       f"({'running' if m.alive() else 'killed' if m.killed else 'exited'}) ---\n{m.log_tail()}"
                       for m in self.machines())


def connections_in_hand(port: int) -> int:
    """Connections the server listening on ``port`` has open with clients (nginx opens one per
    request, so: requests it has in hand), from the kernel's table of TCP sockets."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "01" and int(local.split(":")[1], 16) == port:  # 01: ESTABLISHED
            count += 1
    return count


def wait_for_port(port: int, machine: Machine) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and machine.alive():
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=5):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{machine.name} did not start listening:\n{machine.log_tail()}")


# The people using it -----------------------------------------------------------------------

class SlowUpload:
    """A request's body as a phone on a weak signal sends it: a block now and then, with its
    length known from the start (an upload needs Content-Length). So a server has requests
    in hand for a while, and dies with some of them."""

    PAUSE = 0.4

    def __init__(self, data: bytes, block: int = 8192) -> None:
        self.data, self.offset, self.block = data, 0, block

    def __len__(self) -> int:
        return len(self.data)

    def read(self, size: int = -1) -> bytes:
        if self.offset:
            time.sleep(self.PAUSE)
        block = self.data[self.offset:self.offset + min(self.block, size if size > 0 else self.block)]
        self.offset += len(block)
        return block

    def __iter__(self):
        while block := self.read():
            yield block


@dataclass
class Send:
    """One message someone set out to send, and everything they were told about it."""

    token: str
    recipients: list[str]
    files: int = 0
    answers: list[str] = field(default_factory=list)  # one per attempt: "200", "502", "silence: ..."
    uid: str = ""  # the message's page the portal showed once it was sent
    sent: bool = False


def visible_error(response: requests.Response) -> bool:
    """A page that tells the person it went wrong: an error status with something to read."""
    return response.status_code >= 400 and bool(response.text.strip())


class LocalhostCertificate(HTTPAdapter):
    """TLS to nginx at 127.0.0.1, trusting its test certificate, made out to ``localhost``."""

    def __init__(self, nginx: Nginx) -> None:
        self.context = nginx.tls()
        super().__init__()

    def init_poolmanager(self, *args, **options):
        return super().init_poolmanager(*args, ssl_context=self.context, assert_hostname="localhost", **options)


class Sender(threading.Thread):
    """A sender's browser: signs in, then sends message after message until told to stop."""

    def __init__(self, nginx: Nginx, email: str, password: str, number: int, stop: threading.Event) -> None:
        super().__init__(name=f"sender-{number}", daemon=True)
        self.url, self.email, self.password, self.number, self.stopping = nginx.url, email, password, number, stop
        self.browser = requests.Session()
        self.browser.mount("https://", LocalhostCertificate(nginx))
        # What a browser sends with every form it posts; Hushpost's CSRF check reads it over HTTPS.
        self.browser.headers["Origin"] = nginx.url
        self.sends: list[Send] = []
        self.uploads: list[str] = []  # the answer to each file posted: "201", "502", ...
        self.sending = False  # a Compose form on its way, not answered yet
        self.silences: list[str] = []  # requests that got no answer at all
        self.failure = ""

    def page(self, method: str, path: str, **options) -> requests.Response | None:
        """The page the browser ends up on, or None (recorded) if the portal never answered."""
        try:
            return self.browser.request(method, self.url + path, timeout=PAGE_TIMEOUT, **options)
        except requests.RequestException as exc:
            self.silences.append(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None

    def form_token(self, path: str) -> str:
        for _ in range(ATTEMPTS):
            response = self.page("GET", path)
            if response is not None and response.status_code == 200 and (found := CSRF.search(response.text)):
                return found.group(1)
            time.sleep(1)
        raise RuntimeError(f"{self.email}: no form at {path}")

    def sign_in(self) -> None:
        token = self.form_token("/login")
        response = self.page("POST", "/login", data={"email": self.email, "password": self.password,
                                                     "csrfmiddlewaretoken": token})
        if response is None or urlsplit(response.url).path != "/app/":
            raise RuntimeError(f"{self.email} could not sign in: {response and response.status_code}")

    def upload(self, data: bytes, name: str, csrf: str) -> str:
        """A file attached on the Compose page (posted by its script with the page's token); its draft's uid."""
        for _ in range(ATTEMPTS):
            response = self.page("POST", "/app/files", data=SlowUpload(data), headers={
                "X-File-Name": quote(name), "X-CSRFToken": csrf, "Content-Type": "application/pdf"})
            self.uploads.append(str(response.status_code) if response is not None else "silence")
            if response is not None and response.status_code == 201:
                return response.json()["uid"]
            if response is not None and not visible_error(response):
                raise RuntimeError(f"upload answered {response.status_code} without saying why")
            time.sleep(1)  # the page shows the file as refused; the person tries again
        raise RuntimeError(f"{self.email}: the file never went up")

    def send_one(self, n: int) -> None:
        token = self.form_token("/app/compose")
        recipients = [patient((self.number + n) % 6)] + ([patient((self.number + n + 1) % 6)] if n % 2 else [])
        send = Send(token="", recipients=recipients, files=int(n % 3 == 0))
        form = {
            "csrfmiddlewaretoken": token, "to": ", ".join(recipients), "cc": "",
            "subject": f"Results {self.number}-{n}", "body": f"<p>Your results, part {n}.</p>",
            "body_format": "html", "restriction": "none", "expire_days": "0",
            "send_token": secrets.token_urlsafe(24), "confirm": "1",
        }
        send.token = form["send_token"]
        if send.files:
            form["attachment"] = self.upload(os.urandom(30_000), f"Scan {self.number}-{n}.pdf", token)
        self.sends.append(send)
        for _ in range(ATTEMPTS):
            self.sending = True
            response = self.page("POST", "/app/compose", data=SlowUpload(urlencode(form).encode(), block=64),
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
            self.sending = False
            if response is None:
                send.answers.append("silence")
                return
            send.answers.append(str(response.status_code))
            if response.status_code == 200 and SENT in response.text:
                send.uid = urlsplit(response.url).path.rstrip("/").rsplit("/", 1)[-1]
                send.sent = True
                return
            if not visible_error(response):
                return  # neither sent nor told why: counted against the portal
            time.sleep(1)  # read the error page, go back, press Send again: the same form

    def run(self) -> None:
        try:
            self.sign_in()
            n = 0
            while not self.stopping.is_set():
                n += 1
                self.send_one(n)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failure = f"{self.email}: {type(exc).__name__}: {exc}"


@dataclass
class Relayed:
    message_id: str
    recipients: list[str]
    files: int
    replies: list[str] = field(default_factory=list)
    stored: bool = False
    subject: str = ""  # as the message stores it: without the [secure] tag


class Relaying(threading.Thread):
    """An organisation's mail server relaying e-mails to the gateways in turn, each e-mail
    retried (the same bytes, to either gateway) after a temporary refusal or a lost connection;
    until told to stop, or after ``letters`` e-mails."""

    def __init__(self, ports: list[int], sender: str, stop: threading.Event, letters: int | None = None) -> None:
        super().__init__(name="relaying", daemon=True)
        self.ports, self.sender, self.stopping, self.letters = ports, sender, stop, letters
        self.relayed: list[Relayed] = []
        self.failure = ""

    def one(self, n: int) -> None:
        recipients = [patient(n % 6)]
        message: EmailMessage = mail(f"[secure] Letter {n}", f"Dear patient,\n\nLetter {n}.\n",
                                     sender=self.sender, to=recipients)
        files = int(n % 3 == 0)  # to either gateway: the e-mails alternate between them
        if files:
            message.add_attachment(os.urandom(20_000), maintype="application", subtype="pdf",
                                   filename=f"letter-{n}.pdf")
        relayed = Relayed(str(message["Message-ID"]), recipients, files, subject=f"Letter {n}")
        self.relayed.append(relayed)
        for attempt in range(ATTEMPTS):
            port = self.ports[(n + attempt) % len(self.ports)]
            try:
                code, text = submit(port, message)
            except (OSError, smtplib.SMTPException) as exc:
                relayed.replies.append(f"{port}: {type(exc).__name__}")
                time.sleep(1)
                continue
            relayed.replies.append(f"{port}: {code} {text}")
            if code == 250:
                relayed.stored = True
                return
            if code < 400 or code >= 500:
                return  # refused for good: counted against the portal
            time.sleep(1)

    def run(self) -> None:
        try:
            n = 0
            while not self.stopping.is_set() and n != self.letters:
                n += 1
                self.one(n)
                time.sleep(0.3)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.failure = f"relaying: {type(exc).__name__}: {exc}"
