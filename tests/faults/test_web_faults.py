"""The web server rides out a database restart: nobody who opens a page after it sees an error.

``hushpost serve`` (one process, four threads, as on a small machine) keeps one database
connection per thread for up to ten minutes. A restart of PostgreSQL closes every one of
them; each thread must notice before its next request uses the connection, and open a new
one, without a person restarting anything.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.faults.deployment import ROOT, hushpost_command
from tests.proxy import stop, wait_for
from tests.settings import _free_port

pytestmark = pytest.mark.faults

THREADS = 4


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _statuses(url: str, requests: int) -> list[int]:
    # Several at once, so that every thread of the server answers some (and uses its connection).
    with ThreadPoolExecutor(THREADS * 2) as pool:
        return list(pool.map(_status, [url] * requests))


def test_pages_open_right_after_a_database_restart(deployment, private_postgres, tmp_path):
    deployment.script("organisation", "--senders", "1")
    port = _free_port()
    with (tmp_path / "web.log").open("ab") as log:
        web = subprocess.Popen([hushpost_command(), "serve", "--workers", "1", "--threads", str(THREADS)],
                               env=deployment.env | {"HUSHPOST_BIND": f"127.0.0.1:{port}"}, cwd=ROOT,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz", None, "hushpost serve", web)
        # The portal's sign-in page looks its organisation up: every answer needs the database.
        page = f"http://127.0.0.1:{port}/r/harbour-clinic/login"
        assert _statuses(page, 40) == [200] * 40
        private_postgres.restart("fast")
        time.sleep(1)  # a person opening a page a moment later
        after = _statuses(page, 40)
        log_text = (tmp_path / "web.log").read_text(errors="replace")
        assert after == [200] * 40, f"answers after the restart: {after}\n{log_text[-3000:]}"
    finally:
        stop(web)
