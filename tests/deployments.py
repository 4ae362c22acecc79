"""Whole deployments as separate processes (``hushpost serve`` and ``hushpost worker`` on loopback),
each with its own data directory and SQLite database (or PostgreSQL database), for the tests of
regions, of what a server logs and of a master key rotation, and the browser that talks to them."""

from __future__ import annotations

import http.cookiejar
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import ROOT
from tests.personas import PASSWORD
from tests.settings import _free_port

KEY = "QEFuxEXTRb42NsHiYkYI/qDNzBdhYzSglxI3d4bpu63C"  # a fixed random key: the deployments must share it


class Deployment:
    def __init__(self, tmp: Path, region: str, port: int, regions_file: Path | None = None, **env: str):
        self.region, self.port = region, port
        self.url = f"http://127.0.0.1:{port}"
        self.data = tmp / region
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))},
            "HUSHPOST_MODE": "development", "HUSHPOST_DATA_DIR": str(self.data),
            "HUSHPOST_REGION": region, "HUSHPOST_BASE_URL": self.url, "HUSHPOST_BIND": f"127.0.0.1:{port}",
            **({"HUSHPOST_REGIONS_FILE": str(regions_file)} if regions_file else {}), **env,
        }
        self.process = None
        self.worker = None

    def run(self, *args, stdin=""):
        return subprocess.run([sys.executable, "-m", "hushpost.cli", *args], env=self.env, cwd=ROOT,
                              input=stdin, capture_output=True, text=True, timeout=120)

    def start(self, output=subprocess.DEVNULL):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hushpost.cli", "serve", "--workers", "1", "--threads", "4"],
            env=self.env, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.url + "/login", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError(f"{self.region} deployment did not start")

    def start_worker(self):
        self.worker = subprocess.Popen([sys.executable, "-m", "hushpost.cli", "worker"], env=self.env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop(self):
        for process in (self.process, self.worker):
            if process and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)

    def rows(self, sql):
        with sqlite3.connect(self.data / "hushpost.sqlite3") as db:
            return db.execute(sql).fetchall()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A cookie-keeping HTTP client that shows redirects instead of following them."""

    def __init__(self):
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect)

    def get(self, url):
        try:
            with self.opener.open(url, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()

    def post_form(self, url, data):
        status, _, page = self.get(url)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        body = urllib.parse.urlencode({**data, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(url, data=body, headers={"Referer": url, "Origin": _origin(url)})
        try:
            with self.opener.open(request, timeout=10) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()


def _origin(url):
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"




def two_regions(tmp: Path) -> Iterator[tuple[Deployment, Deployment]]:
    """``us`` with Liberty Clinic and its sender Sam, ``eu`` with Europa Legal and its sender Eva
    (both with the personas' ``PASSWORD``), running until the generator is closed."""
    us_port, eu_port = _free_port(), _free_port()
    regions_file = tmp / "regions.toml"
    regions_file.write_text(f"""
[trust]
key = "{KEY}"
[regions.us]
name = "United States"
base_url = "http://127.0.0.1:{us_port}"
[regions.eu]
name = "European Union"
base_url = "http://127.0.0.1:{eu_port}"
""")
    us, eu = Deployment(tmp, "us", us_port, regions_file), Deployment(tmp, "eu", eu_port, regions_file)
    for d in (us, eu):
        assert d.run("migrate", "-v0").returncode == 0
        d.start()
    # Both running: `org add` asks the other region whether it already hosts the domain.
    for d, org_name, domain, email in ((us, "Liberty Clinic", "liberty.example", "sam@liberty.example"),
                                  (eu, "Europa Legal", "europa.example", "eva@europa.example")):
        r = d.run("org", "add", "--name", org_name, "--domain", domain, "--region", d.region)
        assert r.returncode == 0, r.stderr
        r = d.run("user", "add", "--email", email, "--name", email.split("@")[0].title(), stdin=PASSWORD + "\n")
        assert r.returncode == 0, r.stderr
    try:
        yield us, eu
    finally:
        us.stop()
        eu.stop()
