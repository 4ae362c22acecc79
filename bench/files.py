"""(d) of ``make bench``: a large attachment up and down through the web app.

Called by ``bench/run.py`` after (c), with the production server (gunicorn) it
started still running:

* a file of random bytes (``os.urandom``, written once into the bench's work
  directory) is uploaded with ``POST /app/files`` by a signed-in sender, streamed
  from disk by a stdlib ``http.client`` client (never held in memory), vs
  ``shutil.copyfile`` of the same file to another file on the same disk + fsync;
* the uploaded file is sent (``POST /app/compose`` with ``attachment=<uid>``) and
  downloaded with ``GET /app/m/<message>/files/<file>``, streamed and discarded
  while its SHA-256 is checked, vs reading the file back from disk (+ SHA-256);
* while each upload and download runs, the resident memory (``VmRSS``) of every
  gunicorn worker is sampled every 50 ms from ``/proc`` (and the kernel's own
  high-water mark, ``VmHWM``, reset before the transfer, read after).

Trials alternate with their baseline; medians are reported.  MB here is MiB
(2^20 bytes).  All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import shutil
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlencode

from bench import loadgen, report
from bench.common import children, log, machine_cpu, proc_cpu
from bench.environment import PASSWORD
from bench.profiling import profiled

MB = 1024 * 1024
CHUNK = MB  # client read/send size
HOST = loadgen.HOST
RSS_INTERVAL = 0.05
WARM_MB = 16
FILE_NAME = "Bench scan (large).bin"
MESSAGE_PATH = re.compile(r"^/app/m/([^/?#]+)$")
THROUGHPUT = report.Target()  # upload and download vs their baselines: reported, no target
MEMORY = report.Target("<", 64, " MB")  # peak RSS growth of the worker serving a transfer


# ------------------------------------------------------------------ /proc


def _status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, ...); {} when gone."""
    out = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if value.endswith(" kB"):
            out[name] = int(value[:-3])
    return out


def gunicorn_workers(master: int) -> list[int]:
    """The worker processes of a gunicorn master: its children."""
    try:
        return sorted(int(p) for p in
                      Path(f"/proc/{master}/task/{master}/children").read_text().split())
    except OSError:
        return sorted(children(master))


def _reset_hwm(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of ``pid`` to its current RSS."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class RssSampler:
    """VmRSS of every gunicorn worker every 50 ms: baseline before, peak during.

    Workers are looked up again every second (one restarted mid-transfer shows
    as a new pid).  The worker that served the transfer is the one whose CPU
    time grew most.  ``VmHWM`` (reset just before, where the kernel allows it)
    gives the exact peak between samples.
    """

    def __init__(self, master: int, interval: float = RSS_INTERVAL):
        self.master, self.interval = master, interval
        self.base: dict[int, int] = {}
        self.peak: dict[int, int] = {}
        self.cpu0: dict[int, float] = {}
        self.hwm_reset: dict[int, bool] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _add(self, pid: int) -> None:
        rss = _status(pid).get("VmRSS")
        if rss is None:
            return
        self.base[pid] = self.peak[pid] = rss
        self.cpu0[pid] = proc_cpu(pid)
        self.hwm_reset[pid] = _reset_hwm(pid)

    def start(self) -> RssSampler:
        for pid in gunicorn_workers(self.master):
            self._add(pid)
        self.machine0 = machine_cpu()
        self._thread.start()
        return self

    def _sample(self) -> None:
        self.samples += 1
        if self.samples % 20 == 0:
            for pid in gunicorn_workers(self.master):
                if pid not in self.base:
                    self._add(pid)
        for pid in list(self.base):
            rss = _status(pid).get("VmRSS")
            if rss is not None and rss > self.peak[pid]:
                self.peak[pid] = rss

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self._sample()
        machine1 = machine_cpu()
        workers = []
        for pid in sorted(self.base):
            status = _status(pid)
            hwm = status.get("VmHWM") if self.hwm_reset[pid] else None
            workers.append({
                "pid": pid,
                "base_mb": self.base[pid] / 1024,
                "peak_mb": self.peak[pid] / 1024,
                "growth_mb": (self.peak[pid] - self.base[pid]) / 1024,
                "hwm_growth_mb": None if hwm is None else (hwm - self.base[pid]) / 1024,
                "end_mb": status.get("VmRSS", 0) / 1024,
                "cpu_s": max(0.0, proc_cpu(pid) - self.cpu0[pid]),
                "alive": bool(status),
            })
        served = max(workers, key=lambda w: w["cpu_s"]) if workers else None
        for w in workers:
            w["served"] = w is served
        return {"workers": workers, "samples": self.samples,
                "machine_busy": report.machine_busy(self.machine0, machine1),
                "max_growth_mb": max((w["growth_mb"] for w in workers), default=0.0),
                "max_hwm_growth_mb": max((w["hwm_growth_mb"] for w in workers
                                          if w["hwm_growth_mb"] is not None), default=None),
                "served": served}


# ----------------------------------------------------------- the test file


def make_file(path: Path, size_mb: int) -> tuple[str, float]:
    """``size_mb`` MB of os.urandom at ``path``, fsynced; returns (SHA-256 hex, seconds)."""
    started = time.monotonic()
    digest = hashlib.sha256()
    with open(path, "wb", buffering=0) as f:
        for _ in range(size_mb):
            block = os.urandom(CHUNK)
            digest.update(block)
            f.write(block)
        os.fsync(f.fileno())
    return digest.hexdigest(), time.monotonic() - started


# ------------------------------------------------------------ the clients


class Session:
    """A signed-in sender: the cookies and CSRF token of a loadgen.Browser, reused on
    fresh connections for the big transfers (streamed here, not by the Browser)."""

    def __init__(self, port: int, email: str, password: str):
        self.port = port
        self.browser = loadgen.Browser(port, timeout=120)
        self.browser.sign_in("/login", email, password, "/app/")
        self.form_token = self.browser.csrf("/app/compose")
        # What a page's script sends in X-CSRFToken: the csrftoken cookie's value.
        self.csrf = self.browser.cookies.get("csrftoken") or self.form_token

    def headers(self) -> dict[str, str]:
        return {"Host": f"{HOST}:{self.port}",
                "Cookie": "; ".join(f"{k}={v}" for k, v in self.browser.cookies.items())}

    def close(self) -> None:
        self.browser.close()


def upload(session: Session, path: Path, name: str = FILE_NAME) -> dict:
    """POST the file at ``path`` as the raw body of /app/files, 1 MB at a time from disk."""
    size = path.stat().st_size
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    conn = http.client.HTTPConnection(HOST, session.port, timeout=600)
    sent, send_error = 0, None
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        conn.putrequest("POST", "/app/files", skip_host=True, skip_accept_encoding=True)
        headers = session.headers() | {
            "Content-Type": "application/octet-stream", "Content-Length": str(size),
            "X-File-Name": quote(name), "X-CSRFToken": session.csrf,
        }
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()
        try:
            with open(path, "rb", buffering=0) as f:
                while n := f.readinto(buf):
                    conn.send(view[:n])
                    sent += n
        except (BrokenPipeError, ConnectionResetError) as exc:
            send_error = exc  # the server answered before the end: read why below
        try:
            resp = conn.getresponse()
            status, body = resp.status, resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise RuntimeError(f"(d) upload: no answer after {sent} of {size} bytes "
                               f"({send_error or exc!r})") from exc
    finally:
        conn.close()
    seconds, client_cpu = time.perf_counter() - t0, time.thread_time() - c0
    if status != 201:
        raise RuntimeError(f"(d) upload: {status} after {sent} of {size} bytes: {body[:300]!r}")
    info = json.loads(body)
    if info.get("size") != size or not info.get("uid"):
        raise RuntimeError(f"(d) upload: the server stored {info!r} for {size} bytes")
    return {"seconds": seconds, "rate": size / MB / seconds, "client_cpu_s": client_cpu,
            "uid": info["uid"], "info": info}


def download(session: Session, path: str, size: int, sha256: str) -> dict:
    """GET ``path``, reading 1 MB at a time and discarding it; the SHA-256 must match."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    digest = hashlib.sha256()
    total = 0
    conn = http.client.HTTPConnection(HOST, session.port, timeout=600)
    t0, c0 = time.perf_counter(), time.thread_time()
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for key, value in session.headers().items():
            conn.putheader(key, value)
        conn.endheaders()
        resp = conn.getresponse()
        if resp.status != 200:
            raise RuntimeError(f"(d) download: {resp.status} {resp.read(300)!r}")
        length = resp.headers.get("Content-Length")
        while n := resp.readinto(buf):
            digest.update(view[:n])
            total += n
    finally:
        conn.close()
    seconds, client_cpu = time.perf_counter() - t0, time.thread_time() - c0
    if total != size or digest.hexdigest() != sha256:
        raise RuntimeError(f"(d) download: {total} of {size} bytes (Content-Length {length}), "
                           f"SHA-256 {'matches' if digest.hexdigest() == sha256 else 'differs'}")
    return {"seconds": seconds, "rate": size / MB / seconds, "client_cpu_s": client_cpu,
            "content_length": length}


def plain_copy(src: Path, dst: Path) -> dict:
    """``shutil.copyfile`` to another file in the same directory, then fsync it."""
    t0, c0 = time.perf_counter(), time.thread_time()
    shutil.copyfile(src, dst)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    size = dst.stat().st_size
    dst.unlink()
    return {"seconds": seconds, "rate": size / MB / seconds, "cpu_s": cpu}


def plain_read(src: Path, sha256: str) -> dict:
    """Read the file back 1 MB at a time, hashing it as the download client does."""
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    digest = hashlib.sha256()
    t0, c0 = time.perf_counter(), time.thread_time()
    with open(src, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            digest.update(view[:n])
    seconds, cpu = time.perf_counter() - t0, time.thread_time() - c0
    if digest.hexdigest() != sha256:
        raise RuntimeError("(d) reading the file back gave another SHA-256")
    return {"seconds": seconds, "rate": src.stat().st_size / MB / seconds, "cpu_s": cpu}


def discard(session: Session, uid: str) -> None:
    status, _, body = session.browser.request(
        "POST", f"/app/files/{uid}/discard", {"csrfmiddlewaretoken": session.form_token})
    if status != 200:
        raise RuntimeError(f"(d) discarding draft {uid}: {status} {body[:200]!r}")


def send_with_file(session: Session, to: str, uid: str) -> tuple[str, float]:
    """Compose and send (confirm=1) a message carrying the draft ``uid``; its uid."""
    data = loadgen.compose_form(session.form_token, to, 0)
    data |= {"subject": "Your scan (attached)", "attachment": uid}
    t0 = time.perf_counter()
    status, headers, body = session.browser.request("POST", "/app/compose", data)
    seconds = time.perf_counter() - t0
    match = MESSAGE_PATH.match(headers.get("Location", "").split("?", 1)[0])
    if status != 302 or not match:
        raise RuntimeError(f"(d) sending the file: {status} {body[:300]!r}")
    return match.group(1), seconds


def blob_size(uid: str) -> int:
    """Bytes on disk of a file's ciphertext in the local store."""
    from django.conf import settings

    from hushpost.attachments.models import Attachment

    key = Attachment.objects.get(uid=uid).store_key
    return (Path(settings.FILE_STORAGE["root"]) / key[:2] / key).stat().st_size


# ------------------------------------------------------------------ (d)


def warm_up(session: Session, master: int, workdir: Path, to: str) -> dict:
    """Small uploads and downloads until every worker has served some (first-use costs).

    Which worker takes a connection is the kernel's choice, so this repeats (up to
    4 rounds per worker) until each worker's CPU time has grown by 20 ms or more.
    """
    small = workdir / "files-small.bin"
    sha, _ = make_file(small, WARM_MB)
    uid = upload(session, small)["uid"]
    message_uid, _ = send_with_file(session, to, uid)
    workers = gunicorn_workers(master)
    cpu0 = {p: proc_cpu(p) for p in workers}
    n = 0
    for n in range(1, 4 * len(workers) + 1):  # noqa: B007 - n is reported
        discard(session, upload(session, small)["uid"])
        download(session, f"/app/m/{message_uid}/files/{uid}", WARM_MB * MB, sha)
        if all(proc_cpu(p) - cpu0[p] >= 0.02 for p in workers):
            break
    small.unlink()
    return {"warmup_requests": n,
            "warmed": sum(proc_cpu(p) - cpu0[p] >= 0.02 for p in workers)}


def _timed(label: str, sampler_master: int, fn: Callable[[], dict]) -> dict:
    sampler = RssSampler(sampler_master).start()
    try:
        out = fn()
    finally:
        rss = sampler.stop()
    out["rss"] = rss
    served = rss["served"] or {}
    out["worker_cpu_s"] = served.get("cpu_s", 0.0)
    hwm = rss["max_hwm_growth_mb"]
    log(f"(d) {label}: {out['rate']:7.1f} MB/s ({out['seconds']:.1f} s; worker {served.get('pid')} "
        f"CPU {out['worker_cpu_s']:.1f} s, client CPU {out['client_cpu_s']:.1f} s, machine busy "
        f"{rss['machine_busy']:.0%}); RSS {served.get('base_mb', 0):.1f} -> "
        f"{served.get('peak_mb', 0):.1f} MB, largest growth of any worker "
        f"{rss['max_growth_mb']:.1f} MB" + ("" if hwm is None else f" (VmHWM {hwm:.1f} MB)"))
    return out


def bench_files(cfg, res, product, seeds: dict, workdir: Path) -> None:
    """Measure (d) into ``res.files_rounds`` and ``res.summary`` (upload, download, files_rss)."""
    from django.db import connections

    from hushpost.orgs.models import Organization

    started = time.monotonic()
    Organization.objects.filter(pk=seeds["org"].pk).update(max_file_mb=2048, max_message_mb=2048)
    connections.close_all()
    size_mb, rounds = cfg.files_mb, cfg.files_rounds
    size = size_mb * MB
    master = product.proc.pid
    src, dst = workdir / "files-plain.bin", workdir / "files-copy.bin"
    info: dict = {"size_mb": size_mb, "workers": len(gunicorn_workers(master)),
                  "hwm": all(_reset_hwm(p) for p in gunicorn_workers(master))}
    failed = True
    session = None
    try:
        sha, info["make_s"] = make_file(src, size_mb)
        log(f"(d) wrote {size_mb} MB of os.urandom in {info['make_s']:.1f} s")
        session = Session(product.port, seeds["senders"][0].email, PASSWORD)
        info |= warm_up(session, master, workdir, seeds["pool"][0].email)
        log(f"(d) warm-up: {info['warmup_requests']} small uploads and downloads; "
            f"{info['warmed']} of {info['workers']} workers served some")

        kept = None
        for r in range(rounds):
            row: dict = {"round": r + 1}
            order = ("copy", "upload") if r % 2 == 0 else ("upload", "copy")
            for which in order:
                if which == "copy":
                    row["copy"] = plain_copy(src, dst)
                    log(f"(d) round {r + 1} file copy: {row['copy']['rate']:7.1f} MB/s "
                        f"({row['copy']['seconds']:.1f} s)")
                else:
                    row["upload"] = _timed(f"round {r + 1} upload", master,
                                           lambda: upload(session, src))
            row["upload_ratio"] = row["upload"]["rate"] / row["copy"]["rate"]
            if kept is not None:
                discard(session, kept)
            kept = row["upload"]["uid"]
            res.files_rounds.append(row)
        info["ciphertext_bytes"] = blob_size(kept)
        info["overhead_pct"] = 100 * (info["ciphertext_bytes"] - size) / size
        to = seeds["pool"][0].email
        message_uid, info["send_s"] = send_with_file(session, to, kept)
        log(f"(d) sent it on a message in {1000 * info['send_s']:.0f} ms; ciphertext "
            f"{info['ciphertext_bytes']:,} bytes for {size:,} (+{info['overhead_pct']:.4f}%)")
        path = f"/app/m/{message_uid}/files/{kept}"
        for r, row in enumerate(res.files_rounds):
            order = ("download", "read") if r % 2 == 0 else ("read", "download")
            for which in order:
                if which == "read":
                    row["read"] = plain_read(src, sha)
                    log(f"(d) round {r + 1} file read: {row['read']['rate']:7.1f} MB/s "
                        f"({row['read']['seconds']:.1f} s)")
                else:
                    row["download"] = _timed(f"round {r + 1} download", master,
                                             lambda: download(session, path, size, sha))
            row["download_ratio"] = row["download"]["rate"] / row["read"]["rate"]
        failed = False
    finally:
        if session is not None:
            session.close()
        for p in (src, dst, workdir / "files-small.bin"):
            p.unlink(missing_ok=True)
        if failed:  # keep the logs, not gigabytes of ciphertext
            from django.conf import settings

            shutil.rmtree(settings.FILE_STORAGE["root"], ignore_errors=True)
        connections.close_all()
    rows = res.files_rounds

    def summary(kind: str, base: str) -> dict:
        def per_gb(seconds: float) -> float:
            return 1024 * seconds / size_mb

        out = {"measured": statistics.median(r[kind]["rate"] for r in rows),
               "baseline": statistics.median(r[base]["rate"] for r in rows),
               "ratio": statistics.median(r[f"{kind}_ratio"] for r in rows),
               "ratios": [r[f"{kind}_ratio"] for r in rows],
               "worker_cpu_s_per_gb": statistics.median(per_gb(r[kind]["worker_cpu_s"])
                                                        for r in rows),
               "client_cpu_s_per_gb": statistics.median(per_gb(r[kind]["client_cpu_s"])
                                                        for r in rows),
               "baseline_cpu_s_per_gb": statistics.median(per_gb(r[base]["cpu_s"]) for r in rows),
               "worker_busy": statistics.median(r[kind]["worker_cpu_s"] / r[kind]["seconds"]
                                                for r in rows),
               "machine_busy": statistics.median(r[kind]["rss"]["machine_busy"] for r in rows)}
        # CPU cost of the baseline / of the transfer (worker + client), per GB: what the
        # throughput ratio tends to when CPU bounds both, less sensitive to other tenants.
        out["cpu_ratio"] = out["baseline_cpu_s_per_gb"] / max(
            out["worker_cpu_s_per_gb"] + out["client_cpu_s_per_gb"], 1e-9)
        return out

    res.summary["upload"] = summary("upload", "copy")
    res.summary["download"] = summary("download", "read")
    transfers = [(kind, r["round"], r[kind]["rss"]) for r in rows for kind in ("upload", "download")]
    growth = {kind: max(rss["max_growth_mb"] for k, _, rss in transfers if k == kind)
              for kind in ("upload", "download")}
    hwms = [rss["max_hwm_growth_mb"] for _, _, rss in transfers
            if rss["max_hwm_growth_mb"] is not None]
    served = [rss["served"] for _, _, rss in transfers if rss["served"]]
    res.summary["files_rss"] = {
        "measured": max(growth.values()), "ratio": max(growth.values()),
        "by_kind": growth, "hwm": max(hwms) if hwms else None,
        "baseline": statistics.median(w["base_mb"] for w in served) if served else 0.0,
        "peak": max((w["peak_mb"] for w in served), default=0.0),
    }
    info["wall_s"] = time.monotonic() - started
    res.summary["files"] = info
    log(f"(d) done in {info['wall_s']:.0f} s")


# ------------------------------------------------------------------ report


def _served(rss: dict) -> dict:
    return rss["served"] or {"pid": "?", "base_mb": 0, "peak_mb": 0, "growth_mb": 0,
                             "cpu_s": 0, "hwm_growth_mb": None, "end_mb": 0}


def results_rows(res) -> list[tuple[str, ...]]:
    """(d)'s rows of the Results table."""
    s = res.summary
    f, up, down, rss = s["files"], s["upload"], s["download"], s["files_rss"]
    size = (f"{f['size_mb'] // 1024} GB ({f['size_mb']:,} MB)" if f["size_mb"] % 1024 == 0
            else f"{f['size_mb']:,} MB")
    out = []
    for x, what, base in (
        (up, f"(d) Upload of a {size} file through `POST /app/files` (raw body, encrypted "
             "as it arrives into the local store), MB/s", "`shutil.copyfile` + fsync"),
        (down, f"(d) Download of that {size} file through `GET /app/m/<m>/files/<f>` "
               "(decrypted as it streams; the client checks its SHA-256), MB/s",
         "reading it back + SHA-256"),
    ):
        out.append((f"{what} vs {base} of the same file on the same disk",
                    f"{x['measured']:.1f} MB/s", f"{x['baseline']:.1f} MB/s", f"{x['ratio']:.3f}",
                    *THROUGHPUT.cells(x["ratio"])))
    hwm = "" if rss["hwm"] is None else f"; kernel peak mark VmHWM: +{rss['hwm']:.1f} MB"
    out.append((f"(d) Peak RSS growth of the gunicorn workers during the uploads and downloads "
                f"(upload +{rss['by_kind']['upload']:.1f} MB, download "
                f"+{rss['by_kind']['download']:.1f} MB{hwm}); baseline = the serving worker's "
                f"RSS before (median)", f"+{rss['measured']:.1f} MB", f"{rss['baseline']:.1f} MB",
                "—", *MEMORY.cells(rss["ratio"])))
    return out


def method_text(res) -> str:
    f, cfg = res.summary["files"], res.config
    return (
        f"* **(d) Files.** The organisation's limits are raised to 2048 MB per file and per "
        f"message (ORM, before the trial).  A {f['size_mb']:,} MB file of `os.urandom` bytes is "
        "written once to the bench's work directory (and fsynced).  One sender signs in through "
        "`/login`.  Warm-up, untimed: a 16 MB file is uploaded and sent, then 16 MB uploads "
        "(discarded) and downloads of it repeat until every gunicorn worker has served some "
        f"({f['warmed']} of {f['workers']} did, in {f['warmup_requests']} pairs).  Then the client "
        "(stdlib `http.client`, a fresh connection per transfer) streams the file from disk in "
        "1 MB pieces as the raw body of `POST /app/files` (`X-File-Name`, `X-CSRFToken` = the "
        "`csrftoken` cookie, `Content-Type: application/octet-stream`, `Content-Length`), "
        "timed from the request line to the `201` JSON answer (so the server's fsync and its "
        "database row are included).  Baseline: `shutil.copyfile` of the same file to another "
        "file in the same directory, then fsync.  The last upload is sent on a message "
        "(`POST /app/compose`, `attachment=<uid>`, `confirm=1`; earlier uploads are discarded) "
        "and downloaded with `GET /app/m/<message>/files/<file>`, read 1 MB at a time, hashed "
        "and discarded; its SHA-256 and length must equal the original's.  Baseline: reading "
        "the file back from disk 1 MB at a time with the same SHA-256.  Both sides read from "
        "the page cache (the file was just written; nothing here can drop caches on a shared "
        f"machine).  {cfg.files_rounds} round(s) of each pair, the order alternating.  During "
        "each upload and download a thread reads `VmRSS` of every gunicorn worker (the "
        "master's children) from `/proc/<pid>/status` every 50 ms: baseline = the value just "
        "before, peak = the largest sample; the kernel's own peak mark `VmHWM` is reset "
        "(`/proc/<pid>/clear_refs`) before and read after, which catches peaks between "
        "samples.  The worker that served a transfer is the one whose CPU time grew.  "
        "On-disk size of the stored ciphertext is compared with the plaintext.  MB = 2^20 "
        "bytes in (d).")


def rounds_text(res) -> str:
    f = res.summary["files"]
    rounds = [(r["round"], f"{r['upload']['rate']:.1f} ({r['upload']['seconds']:.1f})",
               f"{r['copy']['rate']:.1f} ({r['copy']['seconds']:.1f})", f"{r['upload_ratio']:.3f}",
               f"{r['download']['rate']:.1f} ({r['download']['seconds']:.1f})",
               f"{r['read']['rate']:.1f} ({r['read']['seconds']:.1f})",
               f"{r['download_ratio']:.3f}") for r in res.files_rounds]
    memory = []
    for r in res.files_rounds:
        for kind in ("upload", "download"):
            rss = r[kind]["rss"]
            for w in rss["workers"]:
                hwm = "—" if w["hwm_growth_mb"] is None else f"{w['hwm_growth_mb']:+.1f}"
                memory.append((f"{kind} {r['round']} ({rss['samples']} samples)",
                               f"{w['pid']}{' *' if w['served'] else ''}", f"{w['cpu_s']:.1f}",
                               f"{w['base_mb']:.1f}", f"{w['peak_mb']:.1f}",
                               f"{w['growth_mb']:+.1f}", hwm, f"{w['end_mb']:.1f}"))
    return "\n".join([
        "### (d) Files", "",
        report.table(["Round", "Upload MB/s (s)", "File copy MB/s (s)", "Ratio",
                      "Download MB/s (s)", "Read back MB/s (s)", "Ratio"], "rrrrrrr", rounds),
        "", "Memory of the gunicorn workers (MB) during each transfer; * = the worker that "
        "served it:", "",
        report.table(["Transfer", "Worker", "CPU s", "RSS before", "Peak RSS (50 ms samples)",
                      "Growth", "VmHWM growth", "RSS after"], "lrrrrrrr", memory),
        "", f"Stored ciphertext: {f['ciphertext_bytes']:,} bytes for "
        f"{f['size_mb'] * MB:,} bytes of plaintext (+{f['overhead_pct']:.4f}%: Tink's "
        "header and one 16-byte tag per 1 MB segment).  Sending the message with the "
        f"file took {1000 * f['send_s']:.0f} ms (the file's key is re-sealed, the file "
        f"is not re-encrypted).  Writing the test file took {f['make_s']:.1f} s; all of "
        f"(d) took {f['wall_s']:.0f} s.", ""])


def verdicts(res) -> list[str]:
    lines = [f"{key}: {s['measured']:.1f} vs {s['baseline']:.1f} MB/s, ratio {s['ratio']:.3f} "
             f"(report only); rounds {[round(x, 3) for x in s['ratios']]}"
             for key, s in ((k, res.summary[k]) for k in ("upload", "download"))]
    rss = res.summary["files_rss"]
    lines.append(f"files_rss: peak growth {rss['measured']:.1f} MB (target {MEMORY}) "
                 f"{MEMORY.verdict(rss['measured'])}")
    return lines


# ----------------------------------------------------------------- profile


def _self_status() -> dict[str, int]:
    return _status(os.getpid())


class _Wsgi:
    """The product's WSGI app called in-process (no gunicorn, no socket) as a sender."""

    def __init__(self, user):
        from django.conf import settings
        from django.core.handlers.wsgi import WSGIHandler
        from django.test import Client
        from django.utils.crypto import get_random_string

        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        self.client = client
        self.csrf = get_random_string(32)
        self.cookie = (f"{settings.SESSION_COOKIE_NAME}="
                       f"{client.cookies[settings.SESSION_COOKIE_NAME].value}; "
                       f"{settings.CSRF_COOKIE_NAME}={self.csrf}")
        self.handler = WSGIHandler()

    def call(self, method: str, path: str, body=None, length: int = 0, headers=None,
             digest=None) -> tuple[str, int, bytes]:
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "SCRIPT_NAME": "", "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1", "HTTP_COOKIE": self.cookie,
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
            "wsgi.input": body or io.BytesIO(b""), "wsgi.errors": sys.stderr,
            "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
            "CONTENT_LENGTH": str(length), **(headers or {}),
        }
        status: list[str] = []

        def start_response(s, h, exc_info=None):
            status.append(s)
            return lambda data: None

        result = self.handler(environ, start_response)
        total, first = 0, b""
        try:
            for chunk in result:
                total += len(chunk)
                first = first or chunk[:300]
                if digest is not None:
                    digest.update(chunk)
        finally:
            if hasattr(result, "close"):
                result.close()
        return status[0], total, first


def profile_files(seeds: dict, workdir: Path, size_mb: int = 256) -> dict:
    """Upload and download in-process: time, CPU, peak memory (RSS and tracemalloc), cProfile."""
    import tracemalloc

    from hushpost.orgs.models import Organization

    Organization.objects.filter(pk=seeds["org"].pk).update(max_file_mb=2048, max_message_mb=2048)
    app = _Wsgi(seeds["senders"][-1])
    src = workdir / "files-profile.bin"
    sha, _ = make_file(src, size_mb)
    size = size_mb * MB
    upload_headers = {"CONTENT_TYPE": "application/octet-stream", "HTTP_X_CSRFTOKEN": app.csrf,
                      "HTTP_X_FILE_NAME": quote("profile.bin")}

    def up() -> str:
        with open(src, "rb") as f:
            status, _, body = app.call("POST", "/app/files", f, size, upload_headers)
        if not status.startswith("201"):
            raise RuntimeError(f"(d) profile upload: {status} {body!r}")
        return json.loads(body)["uid"]

    def down(path: str) -> None:
        digest = hashlib.sha256()
        status, total, _ = app.call("GET", path, digest=digest)
        if not status.startswith("200") or total != size or digest.hexdigest() != sha:
            raise RuntimeError(f"(d) profile download: {status}, {total} bytes")

    def measured(fn) -> dict:
        """Wall, CPU, and this process's RSS growth (VmHWM reset before) of one call."""
        hwm_ok = _reset_hwm(os.getpid())
        before = _self_status().get("VmRSS", 0)
        t0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        peak = _self_status().get("VmHWM", 0) if hwm_ok else None
        return {"out": out, "wall_s": wall, "cpu_s": cpu, "rate": size_mb / wall,
                "rss_before_mb": before / 1024,
                "rss_growth_mb": None if peak is None else (peak - before) / 1024}

    def traced(fn) -> dict:
        tracemalloc.start(25)
        try:
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            out = fn()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return {"out": out, "peak_mb": (peak - base) / MB}

    try:
        up()  # warm-up: the first upload of the process
        uid = up()
        data = loadgen.compose_form("", seeds["pool"][0].email, 0) | {"attachment": uid}
        r = app.client.post("/app/compose", urlencode(data),
                            content_type="application/x-www-form-urlencoded")
        match = MESSAGE_PATH.match(r.get("Location", ""))
        if r.status_code != 302 or not match:
            raise RuntimeError(f"(d) profile send: {r.status_code}")
        path = f"/app/m/{match.group(1)}/files/{uid}"
        down(path)  # warm-up
        result = {"size_mb": size_mb,
                  "upload": measured(up), "download": measured(lambda: down(path))}
        result["upload"]["traced_mb"] = traced(up)["peak_mb"]
        result["download"]["traced_mb"] = traced(lambda: down(path))["peak_mb"]
        for kind, fn in (("upload", up), ("download", lambda: down(path))):
            result[kind]["prof"] = profiled(fn)
    finally:
        src.unlink(missing_ok=True)
    return result


def describe_files(p: dict, res) -> str:
    """The (d) part of 'Profiles: what bounds each number'."""
    s = res.summary
    rss, up, down, f = s["files_rss"], s["upload"], s["download"], s["files"]
    ok = MEMORY.met(rss["measured"])
    head = (f"### (d) Files: memory target {'met' if ok else 'missed'}: peak RSS growth "
            f"+{rss['measured']:.1f} MB vs {MEMORY}"
            + ("" if ok else f" ({rss['measured'] - MEMORY.value:.1f} MB over)"))
    pu, pd = p["upload"], p["download"]

    def grow(x: dict) -> str:
        return "?" if x["rss_growth_mb"] is None else f"+{x['rss_growth_mb']:.1f}"

    rows = [
        ("Served (gunicorn): MB/s, median of the rounds", f"{up['measured']:.1f}",
         f"{down['measured']:.1f}"),
        ("Served: CPU s per GB, the worker that served it", f"{up['worker_cpu_s_per_gb']:.2f}",
         f"{down['worker_cpu_s_per_gb']:.2f}"),
        ("Served: CPU s per GB, the client (sending from disk / receiving + SHA-256)",
         f"{up['client_cpu_s_per_gb']:.2f}", f"{down['client_cpu_s_per_gb']:.2f}"),
        ("Baseline: CPU s per GB (copy + fsync / read + SHA-256)",
         f"{up['baseline_cpu_s_per_gb']:.2f}", f"{down['baseline_cpu_s_per_gb']:.2f}"),
        ("CPU-cost ratio: baseline / (worker + client)", f"{up['cpu_ratio']:.3f}",
         f"{down['cpu_ratio']:.3f}"),
        ("Served: the worker busy (its CPU / wall time)", f"{up['worker_busy']:.0%}",
         f"{down['worker_busy']:.0%}"),
        ("Served: machine busy (both cores, every process)", f"{up['machine_busy']:.0%}",
         f"{down['machine_busy']:.0%}"),
        ("Served: largest RSS growth of a worker (MB)", f"+{rss['by_kind']['upload']:.1f}",
         f"+{rss['by_kind']['download']:.1f}"),
        (f"In-process ({p['size_mb']} MB, the WSGI app called directly, no gunicorn): MB/s",
         f"{pu['rate']:.1f}", f"{pd['rate']:.1f}"),
        ("In-process: CPU s per GB (the download's includes the SHA-256 check)",
         f"{1024 * pu['cpu_s'] / p['size_mb']:.2f}", f"{1024 * pd['cpu_s'] / p['size_mb']:.2f}"),
        ("In-process: RSS growth of the process, from VmHWM (MB)", grow(pu), grow(pd)),
        ("In-process: peak of Python allocations, tracemalloc (MB)", f"{pu['traced_mb']:.1f}",
         f"{pd['traced_mb']:.1f}"),
    ]
    table = report.table(["", "Upload", "Download"], "lrr", rows)
    kept = max((w["end_mb"] - w["base_mb"] for r in res.files_rounds
                for w in (_served(r["upload"]["rss"]), _served(r["download"]["rss"]))),
               default=0.0)
    if ok:
        memory = (f"Memory stays flat: the worker serving a {f['size_mb']:,} MB transfer grew by at "
                  f"most {rss['by_kind']['upload']:.1f} MB (upload) and "
                  f"{rss['by_kind']['download']:.1f} MB (download), and kept at most "
                  f"{kept:+.1f} MB of it once the transfer was over (column 'RSS after' above).  "
                  "That is the data in flight: gunicorn "
                  "receives the body up to 1 MB per `recv()`, Django hands the view 256 KB reads, "
                  "Tink encrypts and decrypts one 1 MB segment at a time, and the C allocator "
                  "keeps freed buffers of that size for reuse.  In-process, without gunicorn, "
                  f"the process grew {grow(pu)} MB (upload) and {grow(pd)} MB (download), and "
                  f"Python's own allocations peaked at {pu['traced_mb']:.1f} and "
                  f"{pd['traced_mb']:.1f} MB, independent of the file's size.")
    else:
        memory = (f"The memory target is missed by {rss['measured'] - MEMORY.value:.1f} MB.  In-process "
                  f"(no gunicorn) the process grew {grow(pu)} MB on upload and {grow(pd)} MB on "
                  f"download, Python's allocations peaking at {pu['traced_mb']:.1f} / "
                  f"{pd['traced_mb']:.1f} MB; the served growth above, against these, says "
                  "whether the product's path or the server's buffering holds the memory.")
    per_gb = 1024 / p["size_mb"]
    # From the profiled runs themselves, so the parts are of the same whole.
    u_cpu, d_cpu = report.own_seconds(pu["prof"]) * per_gb, report.own_seconds(pd["prof"]) * per_gb
    u_write = report.own_seconds(pu["prof"], "'write' of '_io.BufferedWriter'") * per_gb
    u_tink = report.own_seconds(pu["prof"], "tink_bindings.write") * per_gb
    d_tink = report.own_seconds(pd["prof"], "tink_bindings.read") * per_gb
    d_hash = report.own_seconds(pd["prof"], "'update' of '_hashlib.HASH'") * per_gb
    inproc = (f"Profiled in-process (no gunicorn, no socket), an upload cost {u_cpu:.2f} s of CPU "
              "per GB, "
              f"of which {u_write:.2f} s in `BufferedWriter.write`, that is the store's `write()` "
              "system calls putting the ciphertext into the page cache (kernel time, which on "
              "this virtual machine varies a lot with whether the kernel hands out pages it has "
              "just freed or fresh ones; the file copy, all kernel work, cost "
              f"{up['baseline_cpu_s_per_gb']:.2f} s per GB in the measured rounds), and "
              f"{u_tink:.2f} s in Tink's encryption; a download cost "
              f"{d_cpu:.2f} s per GB, of which {d_tink:.2f} s in Tink's decryption and "
              f"{d_hash:.2f} s in the SHA-256 check (cProfile, below).  The rest of the served "
              "worker's CPU is gunicorn's HTTP handling and the socket.")
    busy = min(up["machine_busy"], down["machine_busy"])
    if busy >= 0.9:
        why = (f"**Throughput: bounded by CPU time on a saturated machine.**  During the "
               f"transfers the machine's {res.machine.get('nproc', '?')} cores were "
               f"{up['machine_busy']:.0%} (upload) and {down['machine_busy']:.0%} (download) "
               f"busy, other tenants included, while the serving worker was busy only "
               f"{up['worker_busy']:.0%} and {down['worker_busy']:.0%} of the time: the worker "
               "and the client waited for a core as much as for each other.  The CPU cost per "
               "GB is what the machine's noise does not change.")
    elif min(up["worker_busy"], down["worker_busy"]) >= 0.75:
        why = (f"**Throughput: bounded by the serving worker's CPU.**  The machine was "
               f"{up['machine_busy']:.0%} / {down['machine_busy']:.0%} busy and the worker "
               f"serving the transfer (one thread of one process) {up['worker_busy']:.0%} "
               f"(upload) and {down['worker_busy']:.0%} (download) of the time.")
    else:
        why = (f"**Throughput: not bounded by the machine's CPU alone** (it was "
               f"{up['machine_busy']:.0%} / {down['machine_busy']:.0%} busy): the serving worker "
               f"was busy {up['worker_busy']:.0%} (upload) and {down['worker_busy']:.0%} "
               "(download) of the time, the rest waiting on the socket and the disk (fsync).")
    cost = (f"Per GB the upload cost the serving worker {up['worker_cpu_s_per_gb']:.2f} s of CPU "
            "(gunicorn's socket reads, Django's request stream, Tink's AES-GCM, the writes into "
            f"the store) and the client {up['client_cpu_s_per_gb']:.2f} s, against "
            f"{up['baseline_cpu_s_per_gb']:.2f} s for `copyfile` + fsync, which copies inside "
            "the kernel (`sendfile`) with no user-space copy and no encryption: CPU-cost ratio "
            f"{up['cpu_ratio']:.3f} vs the measured throughput ratio {up['ratio']:.3f}.  The "
            f"download cost the worker {down['worker_cpu_s_per_gb']:.2f} s per GB (reading the "
            "ciphertext, Tink's decryption and authentication, socket writes) and the client "
            f"{down['client_cpu_s_per_gb']:.2f} s (receiving, SHA-256), against "
            f"{down['baseline_cpu_s_per_gb']:.2f} s for one read and the same SHA-256: CPU-cost "
            f"ratio {down['cpu_ratio']:.3f} vs measured {down['ratio']:.3f}.  The ciphertext "
            f"adds {f['overhead_pct']:.4f}% on disk.")
    return f"""{head}

{memory}

{why}  {cost}

{inproc}

{table}

cProfile (CPU time) of one in-process upload of {p['size_mb']} MB, by own time (a C method's own
time includes the system calls it makes, e.g. `BufferedWriter.write` the store's `write()`s):

{report.profile_table(pu['prof'], 12, 'own')}

cProfile (CPU time) of one in-process download of {p['size_mb']} MB, by own time:

{report.profile_table(pd['prof'], 12, 'own')}"""


PART = report.Part("files", results=results_rows, method=method_text, rounds=rounds_text,
                   verdicts=verdicts)
