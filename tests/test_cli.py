"""The `hushpost` command as an operator uses it: a real process, real arguments."""

from __future__ import annotations

import base64
import secrets
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import run_cli

HUSHPOST = [sys.executable, "-m", "hushpost.cli"]


@pytest.fixture
def production_env(cli_env):
    """Production mode with everything production needs; the SMTP server need not answer for these commands."""
    return cli_env | {
        "HUSHPOST_MODE": "production",
        "HUSHPOST_SECRET_KEY": secrets.token_urlsafe(48),
        "HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "HUSHPOST_EMAIL_URL": "smtp://127.0.0.1:9",
        "HUSHPOST_BASE_URL": "http://127.0.0.1:8000",
    }


def test_operator_sets_up_an_organisation_and_a_sender(cli_env, tmp_path):
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    r = run_cli(cli_env, "org", "add", "--name", "Harbour Legal", "--domain", "harbour.example")
    assert r.returncode == 0, r.stderr
    assert "Created organisation Harbour Legal (harbour-legal)" in r.stdout
    r = run_cli(cli_env, "org", "add", "--name", "Copycat", "--domain", "harbour.example")
    assert r.returncode != 0 and "already belongs" in r.stderr
    r = run_cli(cli_env, "user", "add", "--email", "Ann@Harbour.example", "--name", "Ann Lee", "--admin",
            stdin="Solid-granite-meadow-88\n")
    assert r.returncode == 0, r.stderr
    assert "Created organisation admin ann@harbour.example in Harbour Legal" in r.stdout
    assert "They must choose their own password when they first sign in" in r.stdout
    r = run_cli(cli_env, "user", "add", "--email", "eve@harbour.example", "--name", "Eve Tan", "--invite")
    assert r.returncode == 0, r.stderr
    assert "An invitation to choose their password is queued for eve@harbour.example" in r.stdout
    r = run_cli(cli_env, "user", "add", "--email", "bo@elsewhere.example", "--name", "Bo",
            stdin="Solid-granite-meadow-88\n")
    assert r.returncode != 0 and "no organisation owns the domain" in r.stderr
    r = run_cli(cli_env, "user", "add", "--email", "cy@harbour.example", "--name", "Cy", stdin="password\n")
    assert r.returncode != 0 and "at least 12 characters" in r.stderr
    r = run_cli(cli_env, "user", "add", "--email", "dee@harbour.example", "--name", "Dee\r\nBcc: x@y.example",
            stdin="Solid-granite-meadow-88\n")
    assert r.returncode != 0 and "line breaks" in r.stderr
    r = run_cli(cli_env, "org", "list")
    assert "harbour-legal\tHarbour Legal\tharbour.example" in r.stdout
    assert (tmp_path / "hushpost.sqlite3").exists()


def test_identities_change_on_the_server_shell_not_in_ops(cli_env):
    """What /ops/ shows read-only, the server's shell changes, and the audit trail keeps."""
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    assert run_cli(cli_env, "org", "add", "--name", "Harbour Legal", "--domain", "harbour.example").returncode == 0
    r = run_cli(cli_env, "user", "add", "--email", "ann@harbour.example", "--name", "Ann", stdin="Solid-granite-meadow-88\n")
    assert r.returncode == 0, r.stderr
    r = run_cli(cli_env, "user", "set", "--email", "ann@harbour.example", "--admin", "--name", "Ann Lee")
    assert r.returncode == 0 and "changed name, admin of ann@harbour.example" in r.stdout, r.stderr
    r = run_cli(cli_env, "user", "set", "--email", "ann@harbour.example", "--new-email", "ann@elsewhere.example")
    assert r.returncode != 0 and "not at one of Harbour Legal's domains" in r.stderr
    r = run_cli(cli_env, "org", "add-domain", "harbour-legal", "harbour-law.example")
    assert r.returncode == 0 and "now has the domain harbour-law.example" in r.stdout, r.stderr
    assert run_cli(cli_env, "org", "add-domain", "harbour-legal", "harbour-law.example").returncode != 0
    r = run_cli(cli_env, "user", "set", "--email", "ann@harbour.example", "--new-email", "ann@harbour-law.example",
            "--no-admin")
    assert r.returncode == 0 and "(now ann@harbour-law.example)" in r.stdout, r.stderr
    r = run_cli(cli_env, "user", "set", "--email", "nobody@harbour.example", "--admin")
    assert r.returncode != 0 and "no sender has the address" in r.stderr
    r = run_cli(cli_env, "audit", "verify")
    assert r.returncode == 0, r.stdout + r.stderr
    r = run_cli(cli_env, "shell", "-c", "from hushpost.audit.models import AuditEvent as E; "
            "print(*E.objects.filter(action='admin').values_list('actor_email', 'detail'), sep='\\n')")
    assert "('hushpost org add-domain (server shell)', 'added the domain harbour-law.example')" in r.stdout
    assert "changed admin, e-mail of ann@harbour.example (now ann@harbour-law.example)" in r.stdout


def test_demo_setup_creates_the_demo_login(cli_env):
    r = run_cli(cli_env, "demo", "--setup-only")
    assert r.returncode == 0, r.stderr
    r = run_cli(cli_env, "demo", "--setup-only")  # running it again changes nothing
    assert r.returncode == 0, r.stderr
    assert "northwind-health" in run_cli(cli_env, "org", "list").stdout


def test_demo_is_refused_in_production_and_creates_nothing(production_env, tmp_path):
    r = run_cli(production_env, "demo", "--setup-only")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert "refuses" in r.stderr and "HUSHPOST_MODE=development" in r.stderr
    assert not (tmp_path / "hushpost.sqlite3").exists()  # no database, so no demo admin
    assert run_cli(production_env, "migrate", "-v0").returncode == 0
    listed = run_cli(production_env, "org", "list")
    assert listed.returncode == 0 and "northwind" not in listed.stdout


def test_first_migrate_in_production_creates_the_data_directory(production_env, tmp_path):
    data = tmp_path / "new" / "var"
    r = run_cli(production_env | {"HUSHPOST_DATA_DIR": str(data)}, "migrate", "-v0")
    assert r.returncode == 0, r.stderr
    assert (data / "hushpost.sqlite3").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700  # the database holds every account


def test_a_data_directory_that_cannot_be_made_is_explained_in_one_line(production_env, tmp_path):
    (tmp_path / "taken").write_text("a file where a directory should be")
    data = tmp_path / "taken" / "var"
    r = run_cli(production_env | {"HUSHPOST_DATA_DIR": str(data)}, "migrate", "-v0")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert f"cannot create its data directory {data}" in r.stderr and "HUSHPOST_DATA_DIR" in r.stderr


def test_operator_account_reaches_the_admin_but_no_portal(cli_env, tmp_path):
    cli_env = cli_env | {"DJANGO_SUPERUSER_PASSWORD": "Operator-granite-meadow-88"}
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    r = run_cli(cli_env, "createsuperuser", "--noinput", "--username", "Ops@Example.org")
    assert r.returncode == 0, r.stderr


def test_an_operator_who_lost_the_phone_is_reset_on_the_server(cli_env):
    cli_env = cli_env | {"DJANGO_SUPERUSER_PASSWORD": "Operator-granite-meadow-88"}
    assert run_cli(cli_env, "migrate", "-v0").returncode == 0
    assert run_cli(cli_env, "createsuperuser", "--noinput", "--username", "ops@example.org").returncode == 0
    assert "ops@example.org\tactive\ttwo-factor not set up yet" in run_cli(cli_env, "operator", "list").stdout
    r = run_cli(cli_env, "shell", "-c", "from hushpost.accounts.models import User; from hushpost.lib import clock; "
            "User.objects.update(totp_enabled_at=clock.now(), totp_secret_sealed=b'x')")
    assert r.returncode == 0, r.stderr
    assert "two-factor on" in run_cli(cli_env, "operator", "list").stdout
    r = run_cli(cli_env, "operator", "reset-two-factor", "Ops@Example.org")
    assert r.returncode == 0 and "next sign-in at /ops/ sets it up again" in r.stdout
    assert "two-factor not set up yet" in run_cli(cli_env, "operator", "list").stdout
    r = run_cli(cli_env, "operator", "reset-two-factor", "nobody@example.org")
    assert r.returncode != 0 and "no operator" in r.stderr


def test_operator_signs_in_to_the_admin(client, db):
    from hushpost.accounts.models import User
    from tests.personas import ops_enrol

    User.objects.create_superuser("ops@example.org", "Operator-granite-meadow-88")
    ops_enrol(client, "ops@example.org")  # the first sign-in sets up the second factor
    assert client.get("/ops/").status_code == 200
    assert client.get("/ops/notifications/notification/").status_code == 200
    # Operators have no portal: the sender app does not take them.
    assert client.get("/app/").status_code == 302


def test_a_worker_started_before_migrate_says_so_and_starts_once_migrated(cli_env):
    worker = subprocess.Popen([*HUSHPOST, "worker", "--interval", "0.1"], env=cli_env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              cwd=Path(__file__).parent.parent)
    try:
        first = worker.stdout.readline()
        assert "not migrated" in first and "run `hushpost migrate`" in first
        assert run_cli(cli_env, "migrate", "-v0").returncode == 0
        # It was waiting, not dead: once the schema is there it starts by itself.
        lines = [worker.stdout.readline() for _ in range(2)]
        assert any("started" in line for line in lines), lines
        assert worker.poll() is None
    finally:
        worker.terminate()
        out, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0
    assert "Traceback" not in first + "".join(lines) + out


def test_help_lists_hushposts_own_commands_not_djangos_whole_list(cli_env):
    for args in (["--help"], ["help"], []):
        r = run_cli(cli_env, *args)
        assert r.returncode == 0, r.stderr
        assert "Hushpost's commands:" in r.stdout
        for ours in ("serve", "worker", "smtpd", "org", "user", "audit", "sso", "gateway", "operator"):
            assert f"\n  {ours} " in r.stdout, ours
        assert "migrate" in r.stdout and "dumpdata" not in r.stdout and "squashmigrations" not in r.stdout
    everything = run_cli(cli_env, "help", "--all")
    assert "dumpdata" in everything.stdout
    assert "--email" in run_cli(cli_env, "help", "user").stdout


@pytest.mark.parametrize("command", ["serve", "smtpd"])
def test_a_server_refuses_in_one_line_a_database_it_cannot_use(cli_env, command):
    cases = {
        # Nothing listens there; the password must not be echoed.
        "postgres://hushpost:not-echoed@127.0.0.1:9/hushpost": "cannot use its database 127.0.0.1:9/hushpost",
        # The server is there, the database is not.
        "postgres://postgres@127.0.0.1:5432/hushpost_no_such_database": 'database "hushpost_no_such_database" does not exist',
        # A new, empty SQLite file: never migrated.
        "sqlite:///" + cli_env["HUSHPOST_DATA_DIR"] + "/empty.sqlite3": "run 'hushpost migrate' first",
        "postgress://hushpost@127.0.0.1/hushpost": "must start with postgres:// or sqlite:///, not postgress://",
    }
    for url, said in cases.items():
        r = run_cli(cli_env | {"HUSHPOST_DATABASE_URL": url}, command)
        assert r.returncode == 2, (url, r.stdout, r.stderr)
        assert said in r.stderr, (url, r.stderr)
        assert "Traceback" not in r.stderr and "not-echoed" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_check_deploy_gives_no_false_alarm_on_a_production_setup(production_env):
    env = production_env | {"HUSHPOST_BEHIND_TLS_PROXY": "true", "HUSHPOST_BASE_URL": "https://secure.example.org"}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set by the browser tests' process, never by a deployment
    r = run_cli(env, "check", "--deploy")
    assert r.returncode == 0, r.stderr
    assert "System check identified no issues" in r.stdout, r.stdout + r.stderr
