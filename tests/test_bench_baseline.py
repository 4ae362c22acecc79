"""`make bench` measures Hushpost against a trivial Django view served by the very gunicorn
command line `hushpost serve` builds: that baseline must keep answering whenever the server's
command line changes (a worker class, an option), or the benchmark cannot run at all."""

from __future__ import annotations

import os

from bench.common import Server, free_port
from bench.environment import serve_argv


def test_the_benchmarks_baseline_view_answers_under_hushpost_serve(tmp_path):
    port = free_port()
    argv = serve_argv(f"127.0.0.1:{port}", workers=1)
    assert "hushpost.wsgi:application" in argv
    argv = ["bench.trivial:application" if a == "hushpost.wsgi:application" else a for a in argv]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    server = Server("trivial", argv, env, port, "/", tmp_path)
    server.start()  # waits for a 200 on /, or fails with the server's log
    try:
        assert server.ready()
    finally:
        assert server.stop() == 0


def test_the_privatebin_like_baseline_stores_serves_and_burns_a_paste(tmp_path):
    from bench.hotpaths import _paste_cycle
    from bench.loadgen import Browser

    port = free_port()
    argv = serve_argv(f"127.0.0.1:{port}", workers=1)
    argv = ["bench.pastebin:application" if a == "hushpost.wsgi:application" else a for a in argv]
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["BENCH_PASTEBIN_DIR"] = str(tmp_path / "pastes")
    server = Server("pastebin", argv, env, port, "/", tmp_path)
    server.start()
    try:
        browser = Browser(port)
        ok, status, body = _paste_cycle(browser)(1)
        assert ok, (status, body)
        assert b'"adata":' in body
        # Burnt after reading: nothing left on the disk, and a second read finds nothing.
        assert not list((tmp_path / "pastes").rglob("*.php"))
        paste_id = body.split(b'"id":"', 1)[1][:16].decode()
        status, _, body = browser.request("GET", f"/?{paste_id}",
                                          extra={"X-Requested-With": "JSONHttpRequest"})
        assert status == 200 and b'"status":1' in body
        browser.close()
    finally:
        assert server.stop() == 0
