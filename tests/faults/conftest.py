"""Fault tests: real workers, a real relay and a private PostgreSQL, broken on purpose.

They run once per `make test`, in its PostgreSQL run (HUSHPOST_DATABASE_URL set
to a postgres:// URL); the SQLite run skips them. Each test gets a database of
its own, copied from one migrated once per session, on a PostgreSQL server
that only these tests use, so restarting or stopping it disturbs nothing else.
"""

from __future__ import annotations

import base64
import os
import re
import secrets

import pytest

from tests.faults.deployment import Deployment
from tests.faults.postgres import PrivatePostgres


def pytest_runtest_setup(item):
    if item.get_closest_marker("faults") and not os.environ.get("HUSHPOST_DATABASE_URL", "").startswith(
        ("postgres://", "postgresql://")
    ):
        pytest.skip("fault tests run once, in the PostgreSQL run (make test-postgres)")


@pytest.fixture(scope="session")
def private_postgres():
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def deployment_secrets():
    return {
        "HUSHPOST_SECRET_KEY": secrets.token_urlsafe(48),
        "HUSHPOST_MASTER_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }


@pytest.fixture(scope="session")
def migrated_database(private_postgres, deployment_secrets, tmp_path_factory):
    """A database `hushpost migrate` has set up, for each test to start from a copy of."""
    name = "hushpost_migrated"
    url = private_postgres.create_database(name)
    done = Deployment(url, tmp_path_factory.mktemp("migrate"), deployment_secrets).hushpost(
        "migrate", "-v0")
    assert done.returncode == 0, done.stderr
    return name


@pytest.fixture
def deployment(private_postgres, migrated_database, deployment_secrets, tmp_path, request):
    name = "hushpost_" + re.sub(r"\W+", "_", request.node.name).lower()[:50]
    url = private_postgres.create_database(name, template=migrated_database)
    deployment = Deployment(url, tmp_path, deployment_secrets)
    yield deployment
    deployment.stop()
    if not private_postgres.running():  # a test that failed during an outage
        private_postgres.start()
