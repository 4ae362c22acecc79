"""deploy/nginx.example.conf in front of a real ``hushpost serve``, as an operator would run it.

Chromium talks HTTPS to nginx only: Ada signs in, sends a message with a 50 MB file and gets
the file back byte for byte, and the audit trail records her browser's address, not nginx's.
nginx must pass the upload on as it arrives (``proxy_request_buffering off``): uploads are
encrypted by Hushpost as they arrive, and a body nginx spooled to disk would lie there in
plaintext. The set-up is in ``tests/proxy.py``; it runs once, in the PostgreSQL run.
"""

from __future__ import annotations

import http.client
import os
import socket
import sqlite3
import ssl
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.browser.steps import BOB, choose_options, write_message
from tests.personas import NEW_PASSWORD, PASSWORD
from tests.proxy import ADA, PROXY_ADDRESS, Nginx, Portal, nginx_installed

pytestmark = [pytest.mark.browser, pytest.mark.proxy]

MB = 1024 * 1024
SPOOLED = "buffered to a temporary file"  # nginx's warning when it writes a body to disk


@pytest.fixture(scope="module")
def behind_nginx(tmp_path_factory):
    if not os.environ.get("HUSHPOST_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("nginx in front of Hushpost is tested once, in the PostgreSQL run (make test-postgres)")
    if not nginx_installed():
        pytest.skip("nginx is not installed (make nginx installs Debian's)")
    folder = tmp_path_factory.mktemp("behind-nginx")
    portal = Portal(folder)
    nginx = Nginx(folder, upstreams=[portal.address])
    try:
        portal.start(public_url=nginx.url)
        nginx.start()
        yield nginx, portal
    finally:
        nginx.stop()
        portal.stop()


@pytest.fixture
def browser_at(new_context):
    """A browser that accepts the test's self-signed certificate, as if a CA had signed it."""
    def open_page(**options):
        context = new_context(ignore_https_errors=True, **options)
        context.set_default_timeout(10_000)
        return context, context.new_page()
    return open_page


def sign_in(page, url: str, password: str) -> None:
    page.goto(f"{url}/login")
    page.get_by_label("E-mail address").fill(ADA)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_a_sender_sends_a_50_mb_file_through_nginx_and_gets_it_back_byte_for_byte(
    behind_nginx, browser_at, tmp_path
):
    nginx, _ = behind_nginx
    context, page = browser_at()
    scan = tmp_path / "Scan 50MB.bin"
    scan.write_bytes(os.urandom(50 * MB))

    sign_in(page, nginx.url, PASSWORD)
    # `hushpost user add` chose her first password: she replaces it before anything else.
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_label("Type it again").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("Your password is set. Only you know it.")).to_be_visible()
    # Hushpost saw HTTPS (X-Forwarded-Proto), so its cookies are Secure and still came back.
    cookies = {c["name"]: c for c in context.cookies()}
    assert cookies["hushpost_session"]["httpOnly"]
    assert all(cookie["secure"] for cookie in cookies.values()), cookies

    write_message(page, to=BOB, subject="Your scan", text="The full scan is attached.")
    page.get_by_label("choose files").set_input_files(scan)
    row = page.locator(".attachments li").filter(has_text=scan.name)
    expect(row.locator(".file-size")).to_have_text("50.0 MB", timeout=60_000)
    expect(row.get_by_role("progressbar")).to_have_count(0, timeout=60_000)
    expect(row.get_by_role("alert")).to_have_count(0)
    # nginx passed the body on as it came. A body it spools has its file unlinked at once, so
    # the folder alone proves little: its warning in the error log is what would tell.
    assert SPOOLED not in nginx.error_log.read_text()
    assert nginx.files_in("client_body_temp") == []

    choose_options(page)
    page.get_by_role("button", name="Send securely").click()
    expect(page.get_by_text("Your secure message was sent to 1 recipient.")).to_be_visible()
    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("region", name="1 attachment").get_by_role("link", name=scan.name).click()
    assert info.value.failure() is None
    assert info.value.suggested_filename == scan.name
    with open(info.value.path(), "rb") as saved:
        assert saved.read() == scan.read_bytes()
    assert nginx.files_in("proxy_temp") == []  # the download streamed through as well
    assert SPOOLED not in nginx.error_log.read_text()

    # The audit trail says where Ada was: her browser's address, which nginx passed on.
    page.goto(f"{nginx.url}/app/admin/audit")
    trail = page.get_by_role("table")
    signed_in = trail.get_by_role("row").filter(has=page.get_by_role("rowheader", name="Signed in"))
    expect(signed_in).to_have_count(1)
    expect(signed_in.get_by_role("cell").nth(2)).to_have_text("127.0.0.1")
    expect(trail).not_to_contain_text(PROXY_ADDRESS)


def test_an_address_a_client_claims_in_x_forwarded_for_is_not_recorded_as_its_own(behind_nginx, browser_at):
    nginx, portal = behind_nginx
    _, page = browser_at(extra_http_headers={"X-Forwarded-For": "203.0.113.9"})
    sign_in(page, nginx.url, PASSWORD + "-wrong")
    expect(page.get_by_role("alert")).to_be_visible()

    with sqlite3.connect(portal.folder / "data" / "hushpost.sqlite3") as db:
        clients = db.execute("SELECT client FROM audit_auditevent WHERE action = 'sign_in_failed'").fetchall()
    assert clients == [("127.0.0.1",)]  # nginx's own view of the client, appended last


def test_health_checks_answer_through_nginx(behind_nginx):
    nginx, _ = behind_nginx
    with urllib.request.urlopen(f"{nginx.url}/healthz", context=nginx.tls(), timeout=10) as r:
        assert r.status == 200


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=lambda v: v.name)
def test_nginx_speaks_tls_1_3_and_1_2(behind_nginx, version):
    nginx, _ = behind_nginx
    assert tls_version(nginx, version) == version.name.replace("_", ".")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_1, ssl.TLSVersion.TLSv1], ids=lambda v: v.name)
@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")  # offered on purpose
def test_nginx_refuses_older_tls(behind_nginx, version):
    nginx, _ = behind_nginx
    # nginx's ssl_protocols answers "protocol version"; OpenSSL's own policy alone, "internal error".
    with pytest.raises(ssl.SSLError, match="ALERT_PROTOCOL_VERSION"):
        tls_version(nginx, version)


def tls_version(nginx, version: ssl.TLSVersion) -> str:
    """The protocol nginx agrees to with a client that offers only ``version`` (the client's own
    policy loosened, so it is nginx that answers)."""
    context = nginx.tls()
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    context.minimum_version = context.maximum_version = version
    with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as raw, \
            context.wrap_socket(raw) as tls:
        return tls.version()


def test_hushpost_knows_a_request_through_nginx_came_over_https(behind_nginx):
    nginx, _ = behind_nginx
    with urllib.request.urlopen(f"{nginx.url}/login", context=nginx.tls(), timeout=10) as r:
        assert r.status == 200  # not redirected to HTTPS again
        assert r.headers["Strict-Transport-Security"] == "max-age=31536000"  # sent on HTTPS only
        cookies = r.headers.get_all("Set-Cookie") or []
        assert cookies and all("; Secure" in cookie for cookie in cookies), cookies


def test_a_typed_address_without_https_is_sent_to_https_by_nginx(behind_nginx):
    nginx, _ = behind_nginx
    connection = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=10)
    connection.request("GET", "/login?next=/app/", headers={"Host": "secure.example.org"})
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == "https://secure.example.org/login?next=/app/"
    connection.close()


def test_plain_http_straight_to_hushpost_is_sent_to_https(behind_nginx):
    _, portal = behind_nginx
    connection = http.client.HTTPConnection(portal.address, timeout=10)
    connection.request("GET", "/login")
    response = connection.getresponse()
    assert response.status == 301
    assert response.getheader("Location").startswith("https://")
    connection.close()
