"""Fixtures shared by the whole suite: the real SMTP sink, the stores, the people.

The people come from ``tests/personas.py`` (a fixture here is one of its functions);
shared steps from ``tests/helpers.py``. A test module imports from those, never from
this file or from another test module (``tests/test_suite_layout.py`` checks it).
"""

from __future__ import annotations

import errno
import os
import secrets
import subprocess

import pytest
from django.conf import settings
from django.db import connection as database

from hushpost.crypto import derivation, dkim, keys
from hushpost.gateway.config import configure
from hushpost.gateway.server import Gateway
from hushpost.lib import clock
from hushpost.notifications.relay import relay as connection
from hushpost.orgs.models import DerivationRoot
from hushpost.server.models import PeriodicRun
from tests import personas
from tests.deployments import two_regions
from tests.helpers import run_worker
from tests.settings import SMTP_PORT, _free_port
from tests.smtp import SmtpSink


@pytest.fixture(scope="session")
def smtp_server():
    sink = SmtpSink(SMTP_PORT)
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
def smtp(smtp_server):
    smtp_server.clear()
    if smtp_server.controller is None:
        smtp_server.start()
    yield smtp_server
    connection.close()
    if smtp_server.controller is None:
        smtp_server.start()


@pytest.fixture(autouse=True)
def _real_smtp(settings):
    # Django's test set-up swaps in an in-memory mail outbox; Hushpost's tests
    # send through a real SMTP server instead, as production does.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    connection.close()  # never reuse a connection opened under another backend
    # Each test's worker knows nothing of the relay yet, as a new process would: a test that ran
    # with no SMTP server leaves the relay marked down, which would hold the next test's e-mails back.
    connection.down, connection.probed_at = False, 0.0


@pytest.fixture(autouse=True)
def _no_singletons_from_earlier_tests(request):
    """Each test with a database starts as a new deployment would: no derivation root and no
    periodic job on record. A live server or worker thread that outlived an earlier test's
    emptying of the database may have stored them since, under that test's master key and clock."""
    uses = [name for name in ("transactional_db", "db") if name in request.fixturenames]
    if uses:
        request.getfixturevalue(uses[0])
        DerivationRoot.objects.all().delete()
        PeriodicRun.objects.all().delete()
        derivation.forget()
    yield


@pytest.fixture(autouse=True)
def _reset_clock():
    clock.reset()
    yield
    clock.reset()


TRUNCATE_GUARDS = {"audit_auditevent": "audit_no_truncate", "audit_audithead": "audit_head_no_truncate"}


@pytest.fixture(scope="session", autouse=True)
def _test_database_may_be_emptied(django_db_setup, django_db_blocker):
    """The audit tables refuse TRUNCATE in production; the test database is emptied
    with TRUNCATE between tests, so only there that one guard is off (the row guards stay)."""
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                if "audit_auditevent" not in connection.introspection.table_names(cursor):
                    return  # no test of this session uses it (the fault tests bring their own)
                for table, trigger in TRUNCATE_GUARDS.items():
                    cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")


@pytest.fixture(scope="session")
def s3_server():
    from tests.s3 import S3Server

    server = S3Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oidc_server():
    """The OpenID Connect provider of the single sign-on tests, in its own process."""
    from tests.idp import OIDCProvider

    provider = OIDCProvider()
    yield provider
    provider.stop()


@pytest.fixture
def idp(oidc_server):
    """The provider, behaving normally at the start of each test."""
    oidc_server.reset()
    return oidc_server


@pytest.fixture(scope="session")
def saml_server():
    """The SAML identity provider of the single sign-on tests, in its own process."""
    from tests.idp import SAMLIdentityProvider

    provider = SAMLIdentityProvider()
    yield provider
    provider.stop()


@pytest.fixture
def saml_idp(saml_server):
    """The identity provider, answering normally at the start of each test."""
    saml_server.next_response()
    return saml_server


@pytest.fixture(params=["local", "s3"])
def store(request, settings, tmp_path):
    """Both stores: the data directory, and S3-compatible storage on loopback.

    Yields a function listing what the store holds, {key: ciphertext}.
    """
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        bucket = "files-" + tmp_path.name.lower().replace("_", "-")[-40:]
        settings.FILE_STORAGE = server.storage_settings(bucket)
        yield lambda: server.objects(bucket)
    else:
        root = tmp_path / "files"
        settings.FILE_STORAGE = {**settings.FILE_STORAGE, "kind": "local", "root": str(root)}
        yield lambda: {p.name: p.read_bytes() for p in root.rglob("*") if p.is_file()}


class NearlyFullFile:
    """A real file on a disk with ``room`` bytes left: the write that does not fit puts what
    fits on disk and fails with ENOSPC, as the kernel's would."""

    def __init__(self, file, room: int):
        self.file, self.room = file, room

    def write(self, data) -> int:
        fits = max(0, self.room)
        self.room -= len(data)
        if len(data) > fits:
            self.file.write(bytes(data[:fits]))
            self.file.flush()  # the half-written part really is on disk
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.file.write(data)

    def __getattr__(self, name):
        return getattr(self.file, name)


@pytest.fixture
def files_dir(settings, tmp_path):
    """The local store, in a folder of this test's own."""
    root = tmp_path / "files"
    settings.FILE_STORAGE = {**settings.FILE_STORAGE, "kind": "local", "root": str(root)}
    return root


@pytest.fixture
def full_disk(monkeypatch, files_dir):
    """The store's disk has 64 KiB left for each file it writes (a full disk cannot be made
    safely on a shared machine; this is the store's own write failing as it would)."""
    from hushpost.attachments import store

    def nearly_full_open(path, mode="r", *args, **kwargs):
        return NearlyFullFile(open(path, mode, *args, **kwargs), 64 * 1024)  # noqa: SIM115

    monkeypatch.setattr(store, "open", nearly_full_open, raising=False)
    return files_dir


@pytest.fixture(autouse=True)
def _forget_org_keys():
    # Rolled-back tests reuse row ids on SQLite; a process in production never does.
    keys.forget_cached_keys()
    dkim.forget_cached_keys()
    yield
    keys.forget_cached_keys()
    dkim.forget_cached_keys()


@pytest.fixture
def deliver():
    return run_worker


# --- the people (tests/personas.py) -------------------------------------------------------

@pytest.fixture
def make_org(db):
    return personas.organisation


@pytest.fixture
def org(db):
    """Northwind Health."""
    return personas.northwind()


@pytest.fixture
def make_sender(db):
    return personas.sender


@pytest.fixture
def alice(org):
    return personas.sender(org)


@pytest.fixture
def sender_client(client, alice):
    """Alice's browser, signed in."""
    response = client.post("/login", {"email": alice.email, "password": personas.PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, smtp_server):
    """The two organisations of ``personas.World``, built once for the module and committed;
    each test runs in its own rolled-back transaction over it."""
    with personas.committed_world(smtp_server, django_db_blocker.unblock) as built:
        yield built


@pytest.fixture
def base_url_testserver(settings):
    settings.BASE_URL = "http://testserver"
    return settings.BASE_URL


__all__ = ["settings"]


@pytest.fixture
def client_factory(db):
    from django.test import Client

    return Client


# --- the SMTP gateway, the command line, whole deployments -------------------------------

@pytest.fixture
def make_gateway(transactional_db):
    """Start the real gateway on a free loopback port; stopped after the test."""
    started: list[Gateway] = []

    def make(**options) -> Gateway:
        options.setdefault("max_bytes", 20 * 1024 * 1024)
        options.setdefault("threads", 2)
        gateway = Gateway("127.0.0.1", _free_port(), **options)
        gateway.start()
        started.append(gateway)
        return gateway

    yield make
    for gateway in started:
        gateway.stop()


@pytest.fixture
def relaying(org, alice):
    """Northwind's mail server, on loopback, may relay to the gateway."""
    return configure(org, networks="127.0.0.1/32")


@pytest.fixture
def gateway(make_gateway, relaying):
    return make_gateway()


@pytest.fixture
def cli_env(tmp_path):
    """A development environment of its own for the ``hushpost`` command (``helpers.run_cli``)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("HUSHPOST_")}
    clean.pop("DJANGO_SETTINGS_MODULE", None)
    clean.update(HUSHPOST_MODE="development", HUSHPOST_DATA_DIR=str(tmp_path))
    return clean


@pytest.fixture
def empty_database(tmp_path):
    """A new database of the suite's kind (PostgreSQL or SQLite) for a deployment of its own: its URL."""
    if database.vendor == "postgresql":
        name = "hushpost_own_" + secrets.token_hex(4)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", name], check=True)
        yield f"postgres://postgres@127.0.0.1:5432/{name}"
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name], check=True)
    else:
        yield f"sqlite:///{tmp_path}/own.sqlite3"


@pytest.fixture(scope="module")
def deployments(tmp_path_factory):
    """Two regions, us and eu, each a running deployment (``tests/deployments.py``)."""
    running = two_regions(tmp_path_factory.mktemp("regions"))
    yield next(running)
    running.close()
