"""docs/operations.md, run: every command in it, on a throwaway copy of a server, in order.

How. One bash shell runs in namespaces of its own (``unshare``, as root): its own process tree
(everything it started dies with it), its own network with only a loopback interface (the
services listen on the guide's ports, 80, 443 and 8000, without meeting the test machine's),
and its own view of the files, where /etc, /opt, /usr, /var and /root are overlays on the real
ones and /run an empty folder: the guide's ``useradd``, ``apt-get``, /etc/hushpost, /opt/hushpost
and cron file change only the copy. What the namespace shares with the machine: PostgreSQL's
Unix socket (its real server), this checkout, and three doors (``tests/doors.py``): PostgreSQL,
pip's proxy to the package index, and the mail relay, which is the suite's SMTP sink.

What is run. Each ``sh`` block is sourced whole in the one shell (``set -e``: its first
failing command fails the test, named); each ``$`` line of a ``console`` block is run the same
way and its output compared with the lines under it, ``...`` standing for anything. Step 0's
block runs as written and then the test sets four of its variables: ``DB`` to a name of its
own (the machine's PostgreSQL is shared), ``SOURCE`` to this checkout, ``RELAY`` to the door to
the SMTP sink, and nothing else. The other blocks are checked for what they are: the
Prometheus configuration parses and matches the guide, the nginx snippets pass ``nginx -t``,
the DNS records and the settings are well formed. The test counts the commands it ran against
the commands in the guide, so none can be skipped.

Where it is not the real thing, and says so. There is no systemd inside: ``systemctl`` is
``tests/systemd_stand_in.py``, which verifies the units with ``systemd-analyze verify`` and
starts each unit's ExecStart as its user with its environment file, as systemd would (it does
not restart or sandbox). The guide's self-signed certificate stands in for a real one, and
curl trusts it (root's ``.curlrc`` in the copy); the portal's name resolves to 127.0.0.1 through the
copy's /etc/hosts. This machine's PostgreSQL trusts local connections, so its peer
authentication is not put to the test.

At the end the deployment must work as the guide says: /readyz 200 through nginx, the
invitation e-mail delivered by the worker, a backup taken, restored into a fresh database and
its organisation back, the organisation key rotated and the old version retired, the secret
key rotated, the master key rotated with the portal then running on the new key alone,
/metrics answering the token (and 404 without it) from another address, the nightly backup's
cron line working, ``hushpost check --deploy`` clean, and nothing on the test
machine itself changed. It runs once, in the PostgreSQL run, in about three minutes (half of it
pip installing Hushpost, twice).
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.doors import Outside
from tests.helpers import ROOT

GUIDE = ROOT / "docs" / "operations.md"
RUN = {"sh", "console"}
CHECKED = {"yaml", "nginx", "zone", "env"}
OVERRIDDEN = ("DB", "SOURCE", "RELAY")
STEP_0 = ("HOST", "FROM", "RELAY", "SOURCE", "DB", "ORG_NAME", "ORG_DOMAIN", "ADMIN")
OVERLAID = ("etc", "opt", "usr", "var", "root")
RELAY_PORT, PROXY_PORT = 1025, 3128  # the doors' ports inside
# pip's downloads and built wheels, kept between runs on this machine (outside the overlays).
PIP_CACHE = Path(tempfile.gettempdir()) / "hushpost-operations-doc-pip-cache"
MONITOR = "192.0.2.10"  # another address on the namespace's loopback: "the Prometheus machine"


@dataclass
class Block:
    lang: str
    line: int  # where its text starts in the guide
    text: str


@dataclass
class Command:
    line: int
    text: str
    expected: str | None  # for a console line: the output shown under it


def blocks(text: str | None = None) -> list[Block]:
    text = GUIDE.read_text() if text is None else text
    found = []
    for match in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S):
        found.append(Block(match[1], text.count("\n", 0, match.start()) + 2, match[2]))
    return found


def commands(block: Block) -> list[Command]:
    """An ``sh`` block is one command (sourced whole); a ``console`` block is one per ``$`` line."""
    if block.lang == "sh":
        return [Command(block.line, block.text, None)]
    found: list[Command] = []
    for number, line in enumerate(block.text.splitlines(), block.line):
        if line.startswith("$ "):
            found.append(Command(number, line[2:], ""))
        elif found:
            found[-1].expected += line + "\n"
        else:
            raise AssertionError(f"line {number}: output before any command")
    return found


def matches(expected: str, output: str) -> bool:
    pattern = ".*".join(re.escape(part) for part in expected.strip().split("..."))
    return re.fullmatch(pattern, output.strip(), re.S) is not None


def zone_records(text: str) -> list[tuple[str, str, str]]:
    records = []
    for line in text.splitlines():
        match = re.fullmatch(r'(\S+\.)\s+(\d+)\s+IN\s+(A|AAAA|MX|TXT|CNAME)\s+(.+)', line.strip())
        assert match, f"not a DNS record: {line!r}"
        records.append((match[1], match[3], match[4]))
    return records


def step_0() -> dict[str, str]:
    first = blocks()[0]
    assert first.lang == "sh"
    values = dict(re.findall(r'^(\w+)=(\'[^\']*\'|"[^"]*"|\S+)', first.text, re.M))
    return {k: v.strip("'\"") for k, v in values.items()}


# --- The guide's blocks, each for what it is (both runs) -----------------------------------

def test_every_block_is_one_the_test_runs_or_checks():
    langs = [block.lang for block in blocks()]
    assert set(langs) <= RUN | CHECKED, f"a block the test does not know: {set(langs) - RUN - CHECKED}"
    assert langs.count("sh") + langs.count("console") >= 20
    text = GUIDE.read_text()
    assert text.count("```") == 2 * len(langs), "a code block the parser did not see"


def test_step_0_defines_the_variables_the_rest_uses():
    assert set(step_0()) == set(STEP_0)
    assert set(OVERRIDDEN) <= set(step_0())


def test_the_prometheus_configuration_scrapes_the_portal_with_the_token():
    (config,) = [yaml.safe_load(b.text) for b in blocks() if b.lang == "yaml"]
    (job,) = config["scrape_configs"]
    assert job["scheme"] == "https" and job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer"
    assert job["authorization"]["credentials_file"].startswith("/")
    assert job["static_configs"] == [{"targets": [f"{step_0()['HOST']}:443"]}]


def test_the_mail_records_are_for_the_notification_sender_domain():
    (zone,) = [b.text for b in blocks() if b.lang == "zone"]
    records = zone_records(zone)
    domain = step_0()["FROM"].split("@")[1] + "."
    txt = {name: value.strip('"') for name, kind, value in records if kind == "TXT"}
    assert txt[domain].startswith("v=spf1 ") and txt[domain].endswith(" -all")
    assert txt[f"_dmarc.{domain}"].startswith("v=DMARC1; p=")
    (dkim,) = [name for name in txt if name.endswith(f"._domainkey.{domain}")]
    assert txt[dkim].startswith("v=DKIM1; k=rsa; p=")
    assert (f"{step_0()['HOST']}.", "A") in {(name, kind) for name, kind, _ in records}
    assert "MX" not in {kind for _, kind, _ in records}


def test_the_shared_settings_are_settings_hushpost_has():
    example = (ROOT / "deploy" / "hushpost.env.example").read_text()
    known = set(re.findall(r"^#? ?(HUSHPOST_[A-Z0-9_]+)=", example, re.M))
    for block in (b for b in blocks() if b.lang == "env"):
        for line in block.text.splitlines():
            if line and not line.startswith("#"):
                name = re.fullmatch(r"(HUSHPOST_[A-Z0-9_]+)=\S+", line)
                assert name and name[1] in known, f"line {block.line}: {line}"


def test_the_nginx_snippets_pass_nginx_t(tmp_path):
    if not Path("/usr/sbin/nginx").exists():
        pytest.skip("nginx is not installed (make nginx installs Debian's)")
    for block in (b for b in blocks() if b.lang == "nginx"):
        conf = tmp_path / "nginx.conf"
        conf.write_text(f"error_log {tmp_path}/error.log;\npid {tmp_path}/nginx.pid;\nevents {{}}\n"
                        f"http {{\n{block.text}\n}}\n")
        checked = subprocess.run(["/usr/sbin/nginx", "-t", "-q", "-p", f"{tmp_path}/", "-c", str(conf)],
                                 capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, f"line {block.line}: {checked.stderr}"


def test_a_console_line_is_a_command_and_what_follows_its_output():
    (block,) = blocks("```console\n$ hushpost org list\nnorthwind\t...\n$ true\n```\n")
    first, second = commands(block)
    assert (first.text, first.expected, second.expected) == ("hushpost org list", "northwind\t...\n", "")
    assert matches(first.expected, "northwind\tNorthwind Health\tnorthwind.example\n")
    assert not matches(first.expected, "contoso\tContoso\n")


# --- The whole guide, run -----------------------------------------------------------------

class Shell:
    """bash in its own namespaces; ``run`` sources a file in it and waits for the result."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--net", "--pid", "--fork", "--mount-proc", "--kill-child",
             "--propagation", "private", "bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root",
                 "LANG": "C.UTF-8"})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.count = 0
        self.seconds: dict[str, float] = {}

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line)
        self.lines.put("")

    def run(self, text: str, what: str, timeout: float = 240) -> str:
        self.count += 1
        script, out = self.folder / f"{self.count:03}.sh", self.folder / f"{self.count:03}.out"
        script.write_text(text + "\n")
        self.process.stdin.write(f"source {script} </dev/null >{out} 2>&1\necho __DONE__ {self.count}\n")
        self.process.stdin.flush()
        started = time.monotonic()
        deadline = started + timeout
        seen = []
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{what} did not finish in {timeout} s:\n{text}\n{out.read_text()}") from None
            if line == f"__DONE__ {self.count}\n":
                self.seconds[what] = time.monotonic() - started
                return out.read_text()
            if line == "":
                output = out.read_text() if out.exists() else ""
                raise AssertionError(f"{what} failed:\n{text}\n--- its output ---\n{output}{''.join(seen)}")
            seen.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def prelude(folder: Path, python: str) -> str:
    """The namespace made to look like a fresh server, and the stand-ins the module says."""
    overlays = "\n".join(
        f"mkdir -p {folder}/up/{d} {folder}/work/{d}\n"
        f"mount -t overlay overlay -o lowerdir=/{d},upperdir={folder}/up/{d},workdir={folder}/work/{d} /{d}"
        for d in OVERLAID)
    host = step_0()["HOST"]
    return f"""set -e -o pipefail
trap 'echo "failed ($?): $BASH_COMMAND" >&2' ERR
{overlays}
mkdir -p {folder}/pgsock && mount --bind /run/postgresql {folder}/pgsock
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/postgresql /run/lock && mount --bind {folder}/pgsock /run/postgresql
ip link set lo up
ip addr add {MONITOR}/32 dev lo
echo "127.0.0.1 {host}" >> /etc/hosts
{python} {ROOT}/tests/doors.py 127.0.0.1:{PROXY_PORT}={folder}/proxy.sock \\
    127.0.0.1:{RELAY_PORT}={folder}/relay.sock > {folder}/doors.log 2>&1 &
for i in $(seq 50); do grep -q 'doors open' {folder}/doors.log && break; sleep 0.1; done
export PIP_PROXY=http://127.0.0.1:{PROXY_PORT} PIP_CACHE_DIR={PIP_CACHE}
echo 'cacert = "/etc/ssl/{host}.pem"' > /root/.curlrc
systemctl() {{ {python} {ROOT}/tests/systemd_stand_in.py "$@"; }}
"""


def overrides(database: str) -> str:
    return f"DB={database}\nSOURCE={ROOT}\nRELAY='smtp://127.0.0.1:{RELAY_PORT}?timeout=10'\n"


def psql(sql: str) -> None:
    subprocess.run(["psql", "-h", "/run/postgresql", "-U", "postgres", "-q", "-c", sql],
                   capture_output=True, text=True, timeout=60)


@pytest.fixture
def throwaway_server(tmp_path, smtp):
    if not os.environ.get("HUSHPOST_DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        pytest.skip("the operations guide is run once, in the PostgreSQL run (make test-postgres)")
    if os.geteuid() != 0 or not all(map(shutil.which, ("unshare", "ip", "nginx", "systemd-analyze"))):
        pytest.skip("running the operations guide needs root, unshare, ip, nginx and systemd-analyze "
                    "(a throwaway machine; make nginx deploy-tools)")
    database = f"hushpost_opsdoc_{secrets.token_hex(4)}"
    folder = tmp_path / "server"
    folder.mkdir()
    doors = [Outside(folder / "proxy.sock", None), Outside(folder / "relay.sock", ("127.0.0.1", smtp.port))]
    shell = Shell(folder)
    try:
        shell.run(prelude(folder, sys.executable), "setting up the namespace")
        yield shell, database
    finally:
        shell.close()
        for door in doors:
            door.close()
        slowest = sorted(shell.seconds.items(), key=lambda item: -item[1])[:8]
        print("slowest steps:", ", ".join(f"{what} {seconds:.1f} s" for what, seconds in slowest))
        for name in (database, f"{database}_before_restore"):
            psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(f'DROP ROLE IF EXISTS "{database}"')


def test_the_operations_guide_installs_a_working_portal(throwaway_server, smtp):
    shell, database = throwaway_server
    ran = present = 0
    for number, block in enumerate(b for b in blocks() if b.lang in RUN):
        for command in commands(block):
            present += 1
            output = shell.run(command.text, f"docs/operations.md line {command.line}")
            ran += 1
            if command.expected is not None:
                assert matches(command.expected, output), (
                    f"docs/operations.md line {command.line}: {command.text}\n"
                    f"--- expected ---\n{command.expected}--- got ---\n{output}")
        if number == 0:
            shell.run(overrides(database), "the test's own database, source and relay")
    assert ran == present == sum(len(commands(b)) for b in blocks() if b.lang in RUN)

    env = step_0()
    # The worker delivered the invitation through the relay.
    deadline = time.monotonic() + 30
    while not smtp.to(env["ADMIN"]) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert smtp.to(env["ADMIN"]), "the invitation e-mail never reached the relay"

    def sh(text: str) -> str:
        return shell.run(text, f"the test's check: {text}").strip()

    # Still serving through nginx after everything, with the restored organisation.
    assert '"status": "ready"' in sh("curl -fs --retry 10 --retry-all-errors --retry-delay 1 https://$HOST/readyz")
    assert sh("curl -fsS -o /dev/null -w '%{http_code}' https://$HOST/login") == "200"
    assert sh("hushpost org list").split("\t")[:3] == ["northwind-health", env["ORG_NAME"], env["ORG_DOMAIN"]]
    assert re.fullmatch(r"Version  Created\s+Messages\s+Drafts\s+Spooled\n2 .*", sh("hushpost keys status northwind-health"))
    # The secret key rotated: the old one is the fallback, the services read it.
    assert sh("wc -l < /etc/hushpost/secrets/secret_key_fallbacks").strip() == "1"
    assert "HUSHPOST_SECRET_KEY_FALLBACKS_FILE" in sh(
        "tr '\\0' '\\n' < /proc/$(cat /run/systemd-stand-in/hushpost-web.pid)/environ")
    # The master key rotated and the old one gone: the services run on the new key alone (they
    # would stop at start on a key that opens nothing stored), and nothing is left under another.
    assert "HUSHPOST_MASTER_KEY_PREVIOUS" not in sh(
        "tr '\\0' '\\n' < /proc/$(cat /run/systemd-stand-in/hushpost-web.pid)/environ")
    assert sh("hushpost keys status").splitlines()[1:] == [
        f"{kind:<30}{1:>9}{0:>10}{0:>12}" for kind in ("derivation root", "organisation keys")] + [
        f"{kind:<30}{0:>9}{0:>10}{0:>12}" for kind in ("authenticator secrets", "security phrases",
                                                     "SSO client secrets", "DKIM keys")]
    # /metrics from another machine: the token opens it, nothing else does.
    metrics = f"curl -sS --interface {MONITOR} -o /dev/null -w '%{{http_code}}' https://$HOST/metrics"
    assert sh(metrics) == "404"
    assert sh(f"{metrics} -H 'Authorization: Bearer wrong'") == "404"
    assert sh(f"{metrics} -H \"Authorization: Bearer $(cat /etc/hushpost/secrets/metrics_token)\"") == "200"
    # The nightly backup's command, as cron would run it.
    line = sh("grep -v '^#' /etc/cron.d/hushpost-backup").strip()
    fields = line.split(None, 6)
    assert fields[:6] == ["30", "2", "*", "*", "*", "root"]
    before = sh("ls /var/backups/hushpost | wc -l").strip()
    sh(f"sh -c {shlex.quote(fields[6].replace(chr(92) + '%', '%'))}")
    assert int(sh("ls /var/backups/hushpost | wc -l")) == int(before) + 1
    shell.close()
    # The machine itself is as it was.
    assert subprocess.run(["getent", "passwd", "hushpost"], capture_output=True).returncode == 2
    assert not Path("/etc/hushpost").exists() and not Path("/opt/hushpost").exists()
