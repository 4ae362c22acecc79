"""``systemctl`` for docs/operations.md where no systemd runs (the test's namespace has no PID 1
systemd): it does with the installed units what systemd would, and no more.

* ``daemon-reload`` runs ``systemd-analyze verify`` on every Hushpost unit in
  /etc/systemd/system, which must pass silently.
* ``enable`` checks the unit can be enabled (an ``[Install]`` section); ``--now`` also starts it.
* ``start`` runs the unit's ``ExecStart`` as its ``User`` and ``Group``, in its
  ``WorkingDirectory``, with its ``UMask`` and with the variables of its ``EnvironmentFile``
  (read as systemd reads it) and nothing else of root's environment; it fails when the process
  does not survive its first two seconds. Its output goes to /run/systemd-stand-in/UNIT.log.
* ``stop`` is ``KillMode=mixed``: SIGTERM to the main process, SIGKILL to what is left of its
  process group once it exits or ``TimeoutStopSec`` passes.
* ``nginx``: started with Debian's configuration (after ``nginx -t``), or told to reload.

What it does not do is restart a process that dies (``Restart=always``) or apply the units'
sandboxing; tests/test_deploy.py checks those by what the units say.
"""

from __future__ import annotations

import configparser
import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

UNITS = Path("/etc/systemd/system")
STATE = Path("/run/systemd-stand-in")
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def fail(message: str) -> None:
    sys.stderr.write(f"systemctl: {message}\n")
    raise SystemExit(1)


def unit(name: str) -> configparser.SectionProxy:
    path = UNITS / f"{name}.service"
    if not path.exists():
        fail(f"Unit {name}.service not found.")
    parser = configparser.ConfigParser(strict=True, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path)
    if not parser.has_section("Install"):
        fail(f"{name}.service has no [Install] section: it cannot be enabled")
    return parser["Service"]


def environment_file(path: str) -> dict[str, str]:
    """KEY=value lines, comments and blank lines skipped, one level of quotes removed."""
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    return int(match[1]) * (60 if match[2] == "min" else 1)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def main_pid(name: str) -> int:
    try:
        pid = int((STATE / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return 0
    return pid if alive(pid) else 0


def start(name: str) -> None:
    if name == "nginx":
        return nginx("start")
    if main_pid(name):
        return
    service = unit(name)
    user = pwd.getpwnam(service["User"])
    env = {"PATH": PATH, "LANG": "C.UTF-8", "HOME": user.pw_dir, "USER": user.pw_name,
           "LOGNAME": user.pw_name, "SHELL": user.pw_shell, **environment_file(service["EnvironmentFile"])}
    state_dir = Path("/var/lib") / service["StateDirectory"]
    state_dir.mkdir(mode=0o700, exist_ok=True)
    os.chown(state_dir, user.pw_uid, user.pw_gid)
    STATE.mkdir(exist_ok=True)
    log = (STATE / f"{name}.log").open("ab")
    process = subprocess.Popen(  # noqa: S603 - the unit's own command
        shlex.split(service["ExecStart"]), env=env, cwd=service["WorkingDirectory"], user=service["User"],
        group=service["Group"], extra_groups=[], umask=int(service.get("UMask", "0022"), 8),
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    (STATE / f"{name}.pid").write_text(str(process.pid))
    time.sleep(2)
    if process.poll() is not None:
        fail(f"{name}.service exited at once ({process.returncode}):\n{(STATE / f'{name}.log').read_text()[-3000:]}")


def stop(name: str) -> None:
    if name == "nginx":
        return nginx("stop")
    service = unit(name)
    pid = main_pid(name)
    if not pid:
        return
    os.kill(pid, signal.SIGTERM)  # KillMode=mixed: the main process alone gets SIGTERM
    deadline = time.monotonic() + seconds(service.get("TimeoutStopSec", "90"))
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)  # then what is left of it
    except ProcessLookupError:
        pass
    (STATE / f"{name}.pid").unlink()


def nginx(action: str) -> None:
    pid = Path("/run/nginx.pid").read_text().strip() if Path("/run/nginx.pid").exists() else ""
    running = pid.isdigit() and alive(int(pid))  # `nginx -t` leaves the file, empty
    if action == "stop":
        if running:
            subprocess.run(["nginx", "-s", "quit"], check=True)  # noqa: S607
        return
    subprocess.run(["nginx", "-t", "-q"], check=True)  # noqa: S607 - as nginx.service's ExecStartPre
    if running:
        subprocess.run(["nginx", "-s", "reload"], check=True)  # noqa: S607
        time.sleep(1)  # the new workers take over
    else:
        STATE.mkdir(exist_ok=True)
        with (STATE / "nginx.log").open("ab") as log:
            subprocess.run(["nginx"], check=True, stdin=subprocess.DEVNULL, stdout=log, stderr=log)  # noqa: S607


def daemon_reload() -> None:
    units = sorted(UNITS.glob("hushpost-*.service"))
    if not units:
        fail("no Hushpost unit in /etc/systemd/system")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],  # noqa: S603,S607
                            capture_output=True, text=True)
    if result.returncode or result.stdout + result.stderr:
        fail(f"systemd-analyze verify:\n{result.stdout}{result.stderr}")


def main(argv: list[str]) -> None:
    command, *rest = argv
    names = [a.removesuffix(".service") for a in rest if not a.startswith("-")]
    if command == "daemon-reload":
        daemon_reload()
    elif command == "enable":
        for name in names:
            unit(name)
        if "--now" in rest:
            for name in names:
                start(name)
    elif command == "start":
        for name in names:
            start(name)
    elif command == "stop":
        for name in names:
            stop(name)
    elif command in ("restart", "reload"):
        for name in names:
            if name == "nginx":
                nginx(command)
            else:
                stop(name)
                start(name)
    else:
        fail(f"the stand-in does not know '{command}'")


if __name__ == "__main__":
    main(sys.argv[1:])
