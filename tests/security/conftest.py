"""The attacks on Hushpost, one module per kind, over the world of ``tests/personas.py``:
Alice (sender, org A) sent m1 to Bob, m2 to Carol; Bob replied (r1); Charlie (org B) wrote
to Erin and to Bob's org-B account.
"""

from __future__ import annotations

import pytest

from hushpost.notifications.relay import relay
from tests import personas


@pytest.fixture(scope="package")
def world(django_db_setup, django_db_blocker, smtp_server):
    """The persona world, built once for all the security modules (each test rolled back)."""
    with personas.committed_world(smtp_server, django_db_blocker.unblock) as built:
        yield built


@pytest.fixture(autouse=True)
def _smtp_connection_from_this_test():
    """The worker keeps one connection per process; start each test with a fresh one."""
    relay.close()
    yield
    relay.close()
