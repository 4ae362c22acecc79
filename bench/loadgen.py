"""HTTP load for ``make bench``: stdlib only, loopback only.

A :class:`Browser` is one keep-alive connection plus a cookie jar, like one
person's browser tab.  :func:`client` is one load-generating process: it signs
in (untimed), waits at a barrier with the others, then repeats its request for
the warm-up plus the measured window and reports how many completed inside
the window.
"""

from __future__ import annotations

import http.client
import re
import secrets
import time
from urllib.parse import urlencode

HOST = "127.0.0.1"
CSRF = re.compile(rb'name="csrfmiddlewaretoken" value="([^"]+)"')
# Flash messages ("Your secure message was sent...") are consumed by the page
# a browser is redirected to; the load does not follow redirects, so it drops
# that cookie rather than send back an ever-growing one.
IGNORED_COOKIES = {"messages"}

BODY_HTML = (
    "<p>Dear patient,</p>"
    "<p>Your <b>test results</b> from the appointment on 3 March are now available. "
    "All values are within the normal range; there is nothing you need to do.</p>"
    "<ul><li>Full blood count: normal</li><li>Thyroid function: normal</li>"
    "<li>Vitamin D: slightly low, see the leaflet</li></ul>"
    "<p>If you have any questions, reply to this message or call the practice "
    "on weekdays between 8am and 6pm.</p><p>Kind regards,<br>Northwind Health</p>"
)


class Browser:
    def __init__(self, port: int, timeout: float = 30):
        self.port = port
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        # A browser that follows the redirect after a send keeps the flash cookie (empty set).
        self.ignored_cookies = IGNORED_COOKIES
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            self.conn = http.client.HTTPConnection(HOST, self.port, timeout=self.timeout)
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method: str, path: str, data: dict | None = None, *,
                body: bytes | None = None, extra: dict | None = None):
        """``data`` is sent form-encoded; ``body`` as it is, with ``extra`` headers."""
        headers = {"Host": f"{HOST}:{self.port}", **(extra or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if data is not None:
            body = urlencode(data).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            conn = self._connect()
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                content = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # The server closed an idle keep-alive connection: reconnect once.
                self.close()
                if attempt == 2:
                    raise
        for header in resp.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if name in self.ignored_cookies:
                continue
            if value in ("", '""') or "max-age=0" in header.lower():
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        if resp.will_close:
            self.close()
        return resp.status, resp.headers, content

    def csrf(self, path: str) -> str:
        status, _, body = self.request("GET", path)
        match = CSRF.search(body)
        if status != 200 or not match:
            raise RuntimeError(f"GET {path}: {status}, no CSRF token")
        return match.group(1).decode()

    def sign_in(self, login_path: str, email: str, password: str, expect_prefix: str) -> None:
        token = self.csrf(login_path)
        status, headers, body = self.request(
            "POST", login_path,
            {"email": email, "password": password, "csrfmiddlewaretoken": token},
        )
        location = headers.get("Location", "")
        if status != 302 or not location.startswith(expect_prefix):
            raise RuntimeError(f"sign-in as {email} failed: {status} {body[:300]!r}")


def compose_form(csrf: str, to: str, n: int) -> dict:
    """What the Compose page posts for Send (confirm=1), as tests/helpers.send does."""
    return {
        "csrfmiddlewaretoken": csrf,
        "to": to,
        "cc": "",
        "subject": f"Your test results ({n})",
        "body": BODY_HTML,
        "body_format": "html",
        "restriction": "none",
        "expire_days": "0",
        "send_token": secrets.token_urlsafe(24),
        "confirm": "1",
    }


def client(mode: str, port: int, account: dict, barrier, warmup: float, duration: float,
           results) -> None:
    """One load process. ``mode`` is ``trivial`` (GET /) or ``send`` (POST /app/compose)."""
    browser = Browser(port)
    recipients = account.get("recipients") or []

    def setup():
        csrf = ""
        if mode == "send":
            browser.sign_in("/login", account["email"], account["password"], "/app/")
            csrf = browser.csrf("/app/compose")

        def step(n: int) -> tuple[bool, int, bytes]:
            if mode == "trivial":
                status, headers, body = browser.request("GET", "/")
                return status == 200 and body == b"ok", status, body
            to = recipients[(n + account["index"]) % len(recipients)]
            status, headers, body = browser.request(
                "POST", "/app/compose", compose_form(csrf, to, n)
            )
            return (status == 302 and headers.get("Location", "").startswith("/app/m/"),
                    status, body)

        return step

    run_load(setup, barrier, warmup, duration, results, [browser])


def run_load(setup, barrier, warmup: float, duration: float, results,
             browsers: list[Browser]) -> None:
    """The loop of one load process: ``setup()`` (untimed: sign-ins) returns ``step(n)``,
    one operation returning whether it succeeded and the status and body it ended with;
    after the barrier ``step`` repeats for the warm-up plus the measured window, and the
    operations that ended inside the window are counted and timed into ``results``."""
    try:
        step = setup()
        barrier.wait(120)
        start = time.monotonic()
        window_start, window_end = start + warmup, start + warmup + duration
        done = errors = n = 0
        latencies: list[float] = []
        error_sample = ""
        while True:
            t0 = time.monotonic()
            if t0 >= window_end:
                break
            n += 1
            ok, status, body = step(n)
            t1 = time.monotonic()
            if window_start <= t1 <= window_end:
                if ok:
                    done += 1
                    latencies.append(t1 - t0)
                else:
                    errors += 1
                    error_sample = error_sample or f"{status} {body[:200]!r}"
        results.put({"done": done, "errors": errors, "latencies": latencies,
                     "error_sample": error_sample})
    except Exception as exc:  # reported to the parent, which fails the run
        results.put({"done": 0, "errors": 1, "latencies": [], "error_sample": repr(exc),
                     "fatal": True})
        try:
            barrier.abort()
        except Exception:  # noqa: S110 - the parent sees the fatal result
            pass
    finally:
        for browser in browsers:
            browser.close()
