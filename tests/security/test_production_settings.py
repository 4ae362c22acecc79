"""What production mode refuses: to start with missing, weak or plain-text settings (naming
each problem), and to serve the development mailbox."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from hushpost.notifications.models import DevMail
from tests.helpers import PASSWORD_SUBJECT

# --- the development mailbox ---------------------------------------------------------------------

@pytest.fixture
def stored_mail(db):
    return DevMail.objects.create(to="bob@client.example", from_email="x@y.example", subject=PASSWORD_SUBJECT,
                                  text="temporary password abcde-fghij", html="<p>hi</p>", raw="raw")


def _mailbox_urls(mail) -> list[str]:
    return ["/dev/mailbox", f"/dev/mailbox/{mail.pk}", f"/dev/mailbox/{mail.pk}/html"]


def test_dev_mailbox_is_not_found_when_disabled(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = False
    for url in _mailbox_urls(stored_mail):
        r = client.get(url)
        assert r.status_code == 404, url
        assert "abcde-fghij" not in r.content.decode()
    assert "/dev/mailbox" not in client.get("/login").content.decode()


def test_dev_mailbox_is_not_found_in_production_even_if_enabled(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = True
    settings.PRODUCTION = True
    for url in _mailbox_urls(stored_mail):
        assert client.get(url).status_code == 404, url


def test_dev_mailbox_answers_in_development(stored_mail, settings, client):
    settings.DEV_MAILBOX_ENABLED = True
    for url in _mailbox_urls(stored_mail):
        assert client.get(url).status_code == 200, url


# --- production refuses unsafe settings -----------------------------------------------------------

HUSHPOST = str(Path(sys.executable).parent / "hushpost")
GOOD = {
    "HUSHPOST_SECRET_KEY": "s" * 10 + secrets.token_urlsafe(40),
    "HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),  # openssl rand -base64 32
    "HUSHPOST_EMAIL_URL": "smtp://relay.example:587",
    "HUSHPOST_BASE_URL": "https://secure.example.org",
}
PROBLEMS = {
    "secret": ("HUSHPOST_SECRET_KEY", "HUSHPOST_SECRET_KEY (or HUSHPOST_SECRET_KEY_FILE) is not set"),
    "master": ("HUSHPOST_MASTER_KEY", "HUSHPOST_MASTER_KEY (or HUSHPOST_MASTER_KEY_FILE) is not set"),
    "mailbox": ("HUSHPOST_EMAIL_URL", "HUSHPOST_EMAIL_URL is the dev mailbox"),
    "debug": ("HUSHPOST_DEBUG", "HUSHPOST_DEBUG is on"),
}


def _run(tmp_path, env: dict[str, str], *args: str, command=None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT")}
    clean["HUSHPOST_DATABASE_URL"] = f"sqlite:///{tmp_path / 'prod.sqlite3'}"
    clean.update(env)
    return subprocess.run(command or [HUSHPOST, *args], env=clean, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)


def test_production_refuses_to_start_with_nothing_configured(tmp_path):
    r = _run(tmp_path, {}, "check")
    assert r.returncode == 2, r.stderr
    assert "refuses to start in production mode" in r.stderr
    for name in ("secret", "master", "mailbox"):
        assert PROBLEMS[name][1] in r.stderr
    assert PROBLEMS["debug"][1] not in r.stderr


@pytest.mark.parametrize("problem", list(PROBLEMS))
def test_production_names_each_problem(tmp_path, problem):
    env = dict(GOOD)
    variable, message = PROBLEMS[problem]
    if problem == "debug":
        env["HUSHPOST_DEBUG"] = "true"
    elif problem == "mailbox":
        env["HUSHPOST_EMAIL_URL"] = "mailbox:"
    else:
        env.pop(variable)
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    for other, (_, text) in PROBLEMS.items():
        if other != problem:
            assert text not in r.stderr


def test_production_starts_when_configured(tmp_path):
    r = _run(tmp_path, GOOD, "check")
    assert r.returncode == 0, r.stderr
    assert "no issues" in r.stdout
    shown = _run(tmp_path, GOOD, "shell", "-c",
                 "from django.conf import settings as s; print(s.PRODUCTION, s.DEBUG, s.DEV_MAILBOX_ENABLED, "
                 "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY)")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip().splitlines()[-1].split() == ["True", "False", "False", "True", "True", "True"]


def test_production_reads_secrets_from_files(tmp_path):
    secret, master = tmp_path / "secret", tmp_path / "master"
    secret.write_text(GOOD["HUSHPOST_SECRET_KEY"] + "\n")
    master.write_text(GOOD["HUSHPOST_MASTER_KEY"] + "\n")
    env = {"HUSHPOST_SECRET_KEY_FILE": str(secret), "HUSHPOST_MASTER_KEY_FILE": str(master),
           "HUSHPOST_EMAIL_URL": GOOD["HUSHPOST_EMAIL_URL"], "HUSHPOST_BASE_URL": GOOD["HUSHPOST_BASE_URL"]}
    assert _run(tmp_path, env, "check").returncode == 0
    env["HUSHPOST_MASTER_KEY_FILE"] = str(tmp_path / "missing")
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2 and "HUSHPOST_MASTER_KEY_FILE" in r.stderr


def test_wsgi_entry_point_refuses_too(tmp_path):
    r = _run(tmp_path, {}, command=[sys.executable, "-c", "import hushpost.wsgi"])
    assert r.returncode == 2
    assert PROBLEMS["secret"][1] in r.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"HUSHPOST_SECRET_KEY": "short-secret"}, "HUSHPOST_SECRET_KEY is shorter than 32 characters"),
        ({"HUSHPOST_MASTER_KEY": "a memorable passphrase"}, "HUSHPOST_MASTER_KEY must be 32 random bytes"),
        ({"HUSHPOST_MASTER_KEY_PREVIOUS": f"{GOOD['HUSHPOST_MASTER_KEY']},a memorable passphrase"},
         "HUSHPOST_MASTER_KEY_PREVIOUS: each key must be 32 random bytes"),
        ({"HUSHPOST_BASE_URL": "http://secure.example.org"}, "HUSHPOST_BASE_URL must start with https://"),
    ],
)
def test_production_refuses_weak_settings(tmp_path, change, message):
    r = _run(tmp_path, GOOD | change, "check")
    assert r.returncode == 2 and message in r.stderr


def test_production_accepts_https_base_url(tmp_path):
    r = _run(tmp_path, GOOD | {"HUSHPOST_BASE_URL": "https://secure.example.org"}, "check")
    assert r.returncode == 0, r.stderr


def test_production_accepts_a_previous_master_key_of_32_random_bytes(tmp_path):
    previous = base64.b64encode(secrets.token_bytes(32)).decode()
    r = _run(tmp_path, GOOD | {"HUSHPOST_MASTER_KEY_PREVIOUS": previous}, "check")
    assert r.returncode == 0, r.stderr


def test_production_refuses_plain_http_between_regions(tmp_path):
    regions = tmp_path / "regions.toml"
    regions.write_text(
        '[trust]\nkey = "QEFuxEXTRb42NsHiYkYI/qDNzBdhYzSglxI3d4bpu63C"\n'
        '[regions.us]\nbase_url = "https://secure.example.org"\n'
        '[regions.eu]\nbase_url = "http://eu.secure.example.org"\n')
    env = GOOD | {"HUSHPOST_REGION": "us", "HUSHPOST_REGIONS_FILE": str(regions)}
    r = _run(tmp_path, env, "check")
    assert r.returncode == 2 and "region eu's base_url must be https://" in r.stderr
