"""Browser tests: a real Chromium (Debian's) drives the live Django server.

Each test runs against pytest-django's ``live_server`` with the real SMTP sink on
loopback (the ``smtp`` fixture), so the links in the e-mails are opened in the
browser exactly as a recipient would open them.
"""

from __future__ import annotations

import threading

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer
from django.db import connection
from django.test.testcases import LiveServerThread
from playwright.sync_api import expect

from tests.browser.steps import VIEWPORT

# Assertions wait as long as actions do: a shared, busy machine is slow at times.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": "/usr/bin/chromium",
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": VIEWPORT, "locale": "en-GB", "timezone_id": "UTC"}


class _OneRequestAtATime(ThreadedWSGIServer):
    """The live server answering one request at a time (each on its own thread, as before).

    On SQLite, Django shares the test database's single in-memory connection between the
    live server's threads; two requests at once (two files uploaded together) can then
    collide on it ("cannot open savepoint - SQL statements in progress"), which no
    deployment sees: there each thread has its own connection, as on PostgreSQL here.
    """

    def set_app(self, application):
        lock = threading.Lock()

        def one_at_a_time(environ, start_response):
            with lock:
                response = application(environ, start_response)
                try:
                    yield from response  # a streamed body reads the database too
                finally:
                    if hasattr(response, "close"):
                        response.close()

        super().set_app(one_at_a_time)


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time_on_sqlite():
    if connection.vendor != "sqlite":
        yield
        return
    original, LiveServerThread.server_class = LiveServerThread.server_class, _OneRequestAtATime
    yield
    LiveServerThread.server_class = original


@pytest.fixture
def site(live_server, settings, transactional_db):
    """The live server's URL; e-mailed links point at it."""
    settings.BASE_URL = live_server.url
    return live_server.url


@pytest.fixture
def bob_context(new_context):
    """A second, separate browser (its own cookies) for the recipient."""
    context = new_context()
    context.set_default_timeout(10_000)
    return context


@pytest.fixture(autouse=True)
def _short_timeouts(context):
    # A hung page should fail in seconds, not after Playwright's default 30 s.
    context.set_default_timeout(10_000)
