"""A password reset or invitation link's secret never reaches a server log, a Referer or the address bar.

The production web server (`hushpost serve`, gunicorn) writes its access log
to a file; the worker (`hushpost worker`) delivers the e-mail to the SMTP sink;
Chromium opens the e-mailed link as the owner would. Everything the browser
sends is recorded, and the log is read at the end.
"""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.deployments import Deployment
from tests.helpers import ROOT
from tests.settings import SMTP_PORT, _free_port

pytestmark = pytest.mark.browser

PASSWORD = "Granite-violin-harbour-61"
CHOSEN = "Copper-kettle-orchard-58"
RESET_SUBJECT = "Secure Messaging Password Reset"


class LoggedDeployment(Deployment):
    """One deployment whose web server keeps its access log, with a worker beside it."""

    def __init__(self, tmp, port):
        super().__init__(tmp, "local", port, regions_file=tmp / "none.toml")
        self.env.pop("HUSHPOST_REGIONS_FILE")  # one deployment, a region of its own
        self.env["HUSHPOST_EMAIL_URL"] = f"smtp://127.0.0.1:{SMTP_PORT}?timeout=5"
        self.log = tmp / "access.log"
        self.worker = None

    def start(self):
        self.worker = subprocess.Popen([sys.executable, "-m", "hushpost.cli", "worker", "--interval", "0.2"],
                                       env=self.env, cwd=ROOT, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        with self.log.open("w") as output:
            super().start(output)

    def stop(self):
        super().stop()
        if self.worker and self.worker.poll() is None:
            self.worker.terminate()
            self.worker.wait(timeout=10)


@pytest.fixture
def deployment(tmp_path):
    d = LoggedDeployment(tmp_path, _free_port())
    assert d.run("migrate", "-v0").returncode == 0
    assert d.run("org", "add", "--name", "Liberty Clinic", "--domain", "liberty.example").returncode == 0
    r = d.run("user", "add", "--email", "sam@liberty.example", "--name", "Sam", stdin=PASSWORD + "\n")
    assert r.returncode == 0, r.stderr
    d.start()
    yield d
    d.stop()


def test_the_reset_secret_stays_out_of_logs_referers_and_the_address_bar(page, deployment, smtp):
    sent = []  # every request the browser makes, with its headers
    page.on("request", lambda request: sent.append((request.url, request.all_headers())))

    page.goto(deployment.url + "/forgot")
    page.get_by_label("E-mail address").fill("sam@liberty.example")
    page.get_by_role("button", name="E-mail me a link").click()
    link = smtp.wait_for("sam@liberty.example", RESET_SUBJECT)[-1].link()
    secret = urlsplit(link).fragment.rsplit("/", 1)[1]
    assert secret and secret not in urlsplit(link).path

    page.goto(link)
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    expect(page.get_by_label("New password")).to_be_visible()
    assert secret not in page.url and "#" not in page.url  # gone from the address bar and history entry
    page.get_by_label("New password").fill(CHOSEN)
    page.get_by_label("Type it again").fill(CHOSEN)
    page.get_by_role("button", name="Save new password").click()
    expect(page.get_by_text("Your password is changed")).to_be_visible()

    page.get_by_label("E-mail address").fill("sam@liberty.example")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password", exact=True).fill(CHOSEN)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()

    assert_kept_secret(secret, sent, deployment, "/reset")


def test_an_invitations_secret_stays_out_of_logs_referers_and_the_address_bar(page, deployment, smtp):
    r = deployment.run("user", "add", "--email", "ivy@liberty.example", "--name", "Ivy", "--invite")
    assert r.returncode == 0, r.stderr
    sent = []
    page.on("request", lambda request: sent.append((request.url, request.all_headers())))
    link = smtp.wait_for("ivy@liberty.example", "You're invited to Liberty Clinic's secure messaging portal")[-1].link()
    secret = urlsplit(link).fragment.rsplit("/", 1)[1]
    page.goto(link)
    expect(page.get_by_role("heading", name="Set up your account")).to_be_visible()
    assert secret not in page.url and "#" not in page.url
    page.get_by_label("Your password").fill(CHOSEN)
    page.get_by_label("Type it again").fill(CHOSEN)
    page.get_by_role("button", name="Set up my account").click()
    expect(page.get_by_text("Your account is ready")).to_be_visible()
    page.get_by_label("Password", exact=True).fill(CHOSEN)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    assert_kept_secret(secret, sent, deployment, "/welcome")


def assert_kept_secret(secret: str, sent: list, deployment, path: str) -> None:
    """What left the browser: the secret only ever in the body of one POST."""
    for url, headers in sent:
        assert secret not in url, url
        assert all(secret not in value for value in headers.values()), url
    deployment.stop()
    log = deployment.log.read_text()
    assert f'"GET {path}"' in log and f'"POST {path}"' in log, log  # the log does record these requests
    assert secret not in log
