"""What deploy/ ships: systemd units that verify and restart, a settings file that lists every
setting, and a supervisord example that really brings Hushpost back after a crash.

``systemd-analyze verify`` runs offline on a copy of each unit whose ExecStart names
this checkout's own ``hushpost`` (verify refuses a command that does not exist). No
systemd manager runs in this container, so the systemd units' restarts are checked by
what they say; supervisord's are checked by killing the real processes.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
HUSHPOST = Path(sys.executable).with_name("hushpost")
INSTALLED = "/opt/hushpost/.venv/bin/hushpost"
ENV_FILE = "/etc/hushpost/hushpost.env"
DATA_DIR = "/var/lib/hushpost"
UNITS = {"hushpost-web.service": "serve", "hushpost-worker.service": "worker", "hushpost-gateway.service": "smtpd"}


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|min)?", value)
    assert match, value
    return int(match[1]) * {"ms": 0.001, "s": 1, "min": 60, None: 1}[match[2]]


@pytest.mark.parametrize("name", sorted(UNITS))
def test_each_unit_passes_systemd_analyze_verify(name, tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (make test installs it)")
    text = (DEPLOY / "systemd" / name).read_text()
    assert text.count(INSTALLED) == 1
    (tmp_path / name).write_text(text.replace(INSTALLED, str(HUSHPOST)))
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / name)],
                            capture_output=True, text=True, timeout=60)
    # verify exits 0 on a misspelt key or an unparsable value and only says so: both must be silent.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(UNITS))
def test_each_unit_restarts_on_failure_as_its_own_user_and_hardened(name):
    service = unit(name)["Service"]
    assert service["ExecStart"] == f"{INSTALLED} {UNITS[name]}"
    assert service["Restart"] == "always"
    assert 0 < seconds(service["RestartSec"]) <= 5
    assert service["User"] == service["Group"] == "hushpost"
    assert service["EnvironmentFile"] == ENV_FILE
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["ReadWritePaths"] == DATA_DIR == service["WorkingDirectory"]
    assert service["StateDirectory"] == "hushpost"
    assert service["PrivateTmp"] == service["ProtectHome"] == "yes"
    assert service["KillMode"] == "mixed"  # SIGTERM to Hushpost itself, once


def test_the_worker_has_time_to_finish_the_e_mails_it_is_sending(settings):
    # Long enough for the e-mail in hand: a whole lease, three times the longest send.
    assert seconds(unit("hushpost-worker.service")["Service"]["TimeoutStopSec"]) >= settings.NOTIFY_LEASE_SECONDS


def test_the_units_run_commands_hushpost_has():
    from django.core.management import get_commands

    assert set(UNITS.values()) <= set(get_commands())


def _settings_read() -> set[str]:
    """Every HUSHPOST_* name the product reads: through lib/env.py's helpers, or os.environ."""
    names = set()
    for path in (ROOT / "hushpost").rglob("*.py"):
        text = path.read_text()
        names |= {f"HUSHPOST_{n}" for n in re.findall(r'\benv(?:bool|int|secret)?\("([A-Z0-9_]+)"', text)}
        names |= set(re.findall(r'os\.environ\.get\("(HUSHPOST_[A-Z0-9_]+)"', text))
    return names


def test_the_settings_example_lists_every_setting_and_no_secret():
    text = (DEPLOY / "hushpost.env.example").read_text()
    listed = set(re.findall(r"^#? ?(HUSHPOST_[A-Z0-9_]+)=", text, re.M))
    missing = {n for n in _settings_read() if n not in listed and f"{n}_FILE" not in listed}
    assert not missing, f"not in deploy/hushpost.env.example: {sorted(missing)}"
    assert not listed - _settings_read() - {f"{n}_FILE" for n in _settings_read()}, "names Hushpost never reads"
    # The keys come from files, never inline.
    assert not re.search(r"^HUSHPOST_(SECRET_KEY|MASTER_KEY|S3_SECRET_ACCESS_KEY)=", text, re.M)
    assert re.search(rf"^HUSHPOST_DATA_DIR={DATA_DIR}$", text, re.M)


def test_the_settings_example_reads_the_same_in_sh_as_in_systemd(tmp_path):
    # supervisord's programs source it with sh; systemd strips the single quotes the same way.
    out = subprocess.run(["sh", "-c", f"set -a; . {DEPLOY / 'hushpost.env.example'}; env"],
                         capture_output=True, text=True, env={"PATH": os.environ["PATH"]}, check=True).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if line.startswith("HUSHPOST_"))
    assert values["HUSHPOST_EMAIL_URL"] == "smtp://relay.example.org:587?starttls=1&timeout=10"
    assert values["HUSHPOST_MODE"] == "production"


# --- supervisord, for real -----------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Supervisor:
    def __init__(self, folder: Path):
        self.conf = folder / "supervisord.conf"

    def ctl(self, *args: str) -> str:
        return subprocess.run([str(HUSHPOST.with_name("supervisorctl")), "-c", str(self.conf), *args],
                              capture_output=True, text=True, timeout=30).stdout

    def pids(self) -> dict[str, tuple[str, int]]:
        found = {}
        for line in self.ctl("status").splitlines():
            match = re.match(r"(\S+)\s+(\w+)(?:\s+pid (\d+))?", line)
            if match:
                found[match[1]] = (match[2], int(match[3] or 0))
        return found

    def wait_running(self, name: str, not_pid: int = 0, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state, pid = self.pids().get(name, ("", 0))
            if state == "RUNNING" and pid != not_pid:
                return pid
            time.sleep(0.3)
        raise AssertionError(f"{name} is not running again: {self.ctl('status')}\n{self.ctl('tail', name)}")


@pytest.fixture
def supervised(tmp_path):
    if not HUSHPOST.with_name("supervisord").exists():
        pytest.skip("supervisor is not installed (it is in the test extras)")
    data, logs = tmp_path / "var", tmp_path / "log"
    logs.mkdir()
    web_port, smtp_port = _free_port(), _free_port()
    env_file = tmp_path / "hushpost.env"
    env_file.write_text(f"HUSHPOST_MODE=development\nHUSHPOST_DATA_DIR={data}\n"
                        f"HUSHPOST_BIND=127.0.0.1:{web_port}\nHUSHPOST_WORKERS=1\nHUSHPOST_THREADS=2\n"
                        f"HUSHPOST_SMTPD_BIND=127.0.0.1:{smtp_port}\nHUSHPOST_EMAIL_URL='mailbox:'\n")
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("HUSHPOST_", "DJANGO_"))}
    subprocess.run(["sh", "-c", f"set -a; . {env_file}; exec {HUSHPOST} migrate -v0"], env=clean_env,
                   check=True, timeout=120)
    programs = (DEPLOY / "supervisord.example.conf").read_text()
    programs = (programs.replace(INSTALLED, str(HUSHPOST)).replace(ENV_FILE, str(env_file))
                .replace(DATA_DIR, str(data)).replace("/var/log/hushpost/", f"{logs}/"))
    programs = re.sub(r"^user=hushpost\n", "", programs, flags=re.M)  # no such account here
    sock = tmp_path / "supervisor.sock"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        f"[supervisord]\nnodaemon=true\nlogfile={logs}/supervisord.log\npidfile={tmp_path}/supervisord.pid\n"
        f"[unix_http_server]\nfile={sock}\n"
        "[rpcinterface:supervisor]\n"
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n"
        f"[supervisorctl]\nserverurl=unix://{sock}\n\n" + programs)
    daemon = subprocess.Popen([str(HUSHPOST.with_name("supervisord")), "-c", str(conf)], env=clean_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    supervisor = Supervisor(tmp_path)
    supervisor.web_port = web_port
    try:
        yield supervisor
    finally:
        supervisor.ctl("shutdown")
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            daemon.kill()


def _serves(port: int) -> int:
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as r:
                return r.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def test_supervisord_brings_each_program_back_after_it_is_killed(supervised):
    for name in ("hushpost-web", "hushpost-worker", "hushpost-gateway"):
        pid = supervised.wait_running(name)
        os.kill(pid, signal.SIGKILL)  # a crash: no chance to clean up
        supervised.wait_running(name, not_pid=pid)
    assert _serves(supervised.web_port) == 200  # the new gunicorn read the settings file too
