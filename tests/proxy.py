"""Hushpost as the README says to run it in production: ``hushpost serve`` behind nginx, with
nginx configured by deploy/nginx.example.conf itself.

Only what cannot be the same on a test machine changes in the example: the certificate (a
self-signed one for ``localhost``), the ports nginx listens on (on 127.0.0.1) and Hushpost's
address. The rest of its server block is used as shipped. Around it, a main context of the
test's own lets nginx run as the test's user, in the foreground, with its pid file, logs and
temporary folders in the test's directory, and has it reach Hushpost from 127.0.0.3, so the
address Hushpost records for a request tells the browser (127.0.0.1) and nginx apart.
"""

from __future__ import annotations

import base64
import getpass
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.helpers import ROOT, self_signed
from tests.personas import PASSWORD
from tests.settings import _free_port

NGINX = "/usr/sbin/nginx"
EXAMPLE = ROOT / "deploy" / "nginx.example.conf"
ADA = "ada@northwind.example"  # the portal's organisation admin
PROXY_ADDRESS = "127.0.0.3"  # where nginx's connections to Hushpost come from
TEMP_FOLDERS = ("client_body_temp", "proxy_temp", "fastcgi_temp", "uwsgi_temp", "scgi_temp")


def render_example(*, port: int, http_port: int, upstreams: list[str], cert: Path, key: Path) -> str:
    """deploy/nginx.example.conf with the test's certificate, port and upstream servers (the
    example's one ``server`` line, then one more line per further server, as the example says
    to add them): each line replaced must be there exactly once, so a changed example cannot
    slip past unrendered."""
    text = EXAMPLE.read_text()
    servers = "\n".join(f"    server {address};" for address in upstreams)
    for old, new in (
        ("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;"),
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("/etc/ssl/secure.example.org.pem", str(cert)),
        ("/etc/ssl/secure.example.org.key", str(key)),
        ("    server 127.0.0.1:8000;", servers),
    ):
        assert text.count(old) == 1, f"deploy/nginx.example.conf no longer has {old!r}"
        text = text.replace(old, new)
    return text


class Nginx:
    """A real nginx process in ``folder``, serving the rendered example over HTTPS in front of
    the ``hushpost serve`` processes at ``upstreams`` (host:port each)."""

    def __init__(self, folder: Path, upstreams: list[str]) -> None:
        self.folder = folder
        self.port = _free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.http_port = _free_port()  # the example's port 80
        self.cert, key = self_signed(folder)
        site = folder / "hushpost.conf"
        site.write_text(render_example(port=self.port, http_port=self.http_port, upstreams=upstreams,
                                       cert=self.cert, key=key))
        self.error_log = folder / "error.log"
        temp = "\n".join(f"    {name}_path {folder / name};" for name in TEMP_FOLDERS)
        user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""  # workers stay who we are
        self.conf = folder / "nginx.conf"
        self.conf.write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {self.error_log} warn;\n"
            "events { worker_connections 128; }\n"
            "http {\n"
            f"    access_log {folder / 'access.log'};\n{temp}\n"
            f"    proxy_bind {PROXY_ADDRESS};\n"
            f"    include {site};\n"
            "}\n")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        command = [NGINX, "-p", f"{self.folder}/", "-e", str(self.error_log), "-c", str(self.conf)]
        checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_for(f"{self.url}/healthz", self.tls(), "nginx", self.process)

    def tls(self) -> ssl.SSLContext:
        """A client that trusts the test's certificate (made out to ``localhost``, not the address)."""
        context = ssl.create_default_context(cafile=self.cert)
        context.check_hostname = False
        return context

    def files_in(self, name: str) -> list[Path]:
        return [p for p in (self.folder / name).rglob("*") if p.is_file()]

    def stop(self) -> None:
        stop(self.process)


class Portal:
    """``hushpost serve`` in production mode behind the proxy at ``public_url``: Northwind Health
    (``northwind.example``) with Ada, its admin, who signs in with the personas' ``PASSWORD``."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.folder = folder
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))},
            "HUSHPOST_MODE": "production",
            "HUSHPOST_SECRET_KEY": secrets.token_urlsafe(48),
            "HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
            "HUSHPOST_DATA_DIR": str(folder / "data"),
            "HUSHPOST_BIND": self.address,
            "HUSHPOST_BEHIND_TLS_PROXY": "true",
            "HUSHPOST_FORWARDED_ALLOW_IPS": PROXY_ADDRESS,
            # No worker runs: the notifications wait in the outbox.
            "HUSHPOST_EMAIL_URL": f"smtp://127.0.0.1:{_free_port()}?timeout=5",
        }
        self.process: subprocess.Popen | None = None

    def hushpost(self, *args: str, stdin: str = "") -> None:
        done = subprocess.run([sys.executable, "-m", "hushpost.cli", *args], env=self.env, cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    def start(self, public_url: str) -> None:
        self.env["HUSHPOST_BASE_URL"] = public_url
        self.hushpost("migrate", "-v0")
        self.hushpost("org", "add", "--name", "Northwind Health", "--domain", "northwind.example")
        self.hushpost("user", "add", "--email", "ada@northwind.example", "--name", "Ada Admin", "--admin",
                      stdin=PASSWORD + "\n")
        with (self.folder / "serve.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hushpost.cli", "serve", "--workers", "1", "--threads", "4"],
                env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(f"http://{self.address}/healthz", None, "hushpost serve", self.process)

    def stop(self) -> None:
        stop(self.process)


def wait_for(url: str, context: ssl.SSLContext | None, what: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            urllib.request.urlopen(url, timeout=1, context=context).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{what} did not start")


def stop(process: subprocess.Popen | None) -> None:
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def nginx_installed() -> bool:
    return shutil.which(NGINX) is not None
