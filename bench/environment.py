"""Where ``make bench`` runs: its settings, its own database, the servers and the seeded organisation.

The bench runs Hushpost as it is deployed: production settings from the
environment (random keys, e-mail to the counting sink, plain HTTP on loopback),
a fresh PostgreSQL database of its own on 127.0.0.1:5432, ``hushpost serve``
(gunicorn) and, beside it, gunicorn with the very command line ``hushpost
serve`` builds serving a trivial view (``bench/trivial.py``) as the baseline.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

from bench.common import BIN, Server

DATABASE = "hushpost_bench"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
PASSWORD = "Bench-orchard-velvet-73"
ORG_NAME, ORG_DOMAIN = "Bench Health", "bench-health.example"


@dataclass
class Config:
    rounds_http: int = 4
    warmup: float = 2.0
    duration: float = 6.0
    clients: int = 8
    workers: int = 0  # 0 = hushpost serve's default, 2 x cores + 1
    notify_rounds: int = 3
    notify_count: int = 400
    inbox_small: int = 100
    inbox_large: int = 10_000
    latency_rounds: int = 5
    latency_requests: int = 60
    recipients_pool: int = 50
    files_mb: int = 1024
    files_rounds: int = 2
    gateway_rounds: int = 3
    gateway_clients: int = 8
    password_rounds: int = 5
    password_count: int = 200  # messages to new recipients: twice as many e-mails
    latency_seconds: float = 60.0
    latency_workers: tuple[int, ...] = (1, 2)
    hot_rounds: int = 3  # (h): rounds of every path on one core
    hot_warmup: float = 2.0
    hot_duration: float = 6.0
    hot_messages: int = 30  # (h): messages in each reader's inbox before "open"
    database: str = DATABASE

    @classmethod
    def quick(cls) -> Config:
        return cls(rounds_http=2, warmup=1.0, duration=4.0, notify_rounds=2, notify_count=200,
                   inbox_large=2_000, latency_rounds=3, latency_requests=15,
                   files_mb=256, files_rounds=1, gateway_rounds=2, password_rounds=2,
                   password_count=100, latency_seconds=10.0, hot_warmup=1.0, hot_duration=3.0)


@dataclass
class Results:
    machine: dict = field(default_factory=dict)
    send_rounds: list[dict] = field(default_factory=list)
    notify_rounds: list[dict] = field(default_factory=list)
    inbox_rounds: list[dict] = field(default_factory=list)
    files_rounds: list[dict] = field(default_factory=list)
    gateway_rounds: list[dict] = field(default_factory=list)
    password_rounds: list[dict] = field(default_factory=list)
    latency_runs: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)
    profiles: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    config: Config = field(default_factory=Config)
    started: float = 0.0
    finished: float = 0.0
    quick: bool = False


# ----------------------------------------------------------------- settings


def production_env(database: str, workdir: Path, web_port: int, smtp_port: int) -> dict:
    """The environment of every Hushpost process the bench starts, and of the bench itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUSHPOST_")}
    env.update({
        "DJANGO_SETTINGS_MODULE": "hushpost.settings",
        "HUSHPOST_MODE": "production",
        "HUSHPOST_SECRET_KEY": secrets.token_urlsafe(50),
        "HUSHPOST_MASTER_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "HUSHPOST_EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}?timeout=10",
        "HUSHPOST_SECURE_COOKIES": "false",
        "HUSHPOST_BASE_URL": f"http://127.0.0.1:{web_port}",
        "HUSHPOST_DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "HUSHPOST_DATA_DIR": str(workdir / "data"),
    })
    # STATIC_ROOT: whitenoise serves from the finders; the directory only silences its warning.
    (workdir / "data" / "static").mkdir(parents=True)
    return env


# ----------------------------------------------------------------- database


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)


def create_database(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _pg_admin(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def migrate() -> str:
    """Django set up on the bench's database, migrated; PostgreSQL's version."""
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cur:
        cur.execute("SHOW server_version")
        return cur.fetchone()[0]


# ------------------------------------------------------------------ servers


def serve_argv(bind: str, workers: int) -> list[str]:
    """The exact gunicorn command line ``hushpost serve`` runs (captured, not copied)."""
    from django.conf import settings

    from hushpost.server.management.commands.serve import Command

    captured: list[str] = []

    def fake_exec(file, args):
        captured.extend(args)

    with mock.patch("os.execvp", fake_exec):
        Command().handle(bind=bind, workers=workers,
                         threads=settings.WEB_THREADS)
    return captured


def web_servers(cfg: Config, env: dict, workdir: Path, web_port: int,
                trivial_port: int) -> tuple[Server, Server]:
    """``hushpost serve`` and the trivial view under the same gunicorn command line (not started)."""
    product = Server("hushpost", [str(BIN / "hushpost"), "serve", "--bind",
                                  f"127.0.0.1:{web_port}", "--workers", str(cfg.workers)],
                     env, web_port, "/login", workdir)
    argv = serve_argv(f"127.0.0.1:{trivial_port}", cfg.workers)
    if "hushpost.wsgi:application" not in argv:
        raise RuntimeError(f"unexpected hushpost serve command line: {argv}")
    argv = ["bench.trivial:application" if a == "hushpost.wsgi:application" else a for a in argv]
    trivial_env = {k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"}
    return product, Server("trivial", argv, trivial_env, trivial_port, "/", workdir)


# ------------------------------------------------------------------ seeding


def seed_base(cfg: Config) -> dict:
    """The organisation: a sender per load client, a pool of recipients, two inbox readers."""
    from hushpost.accounts.actions import create_sender
    from hushpost.accounts.models import User
    from hushpost.orgs.actions import create_organization

    org = create_organization(name=ORG_NAME, domains=[ORG_DOMAIN])
    senders = [
        create_sender(email=f"sender{i}@{ORG_DOMAIN}", name=f"Sender {i}", password=PASSWORD)
        for i in range(cfg.clients)
    ]
    pool = []
    for i in range(cfg.recipients_pool):
        user = User(org=org, email=f"patient{i}@example.com", role=User.Role.RECIPIENT)
        user.set_unusable_password()
        user.save()
        pool.append(user)

    def reader(email: str) -> User:
        user = User(org=org, email=email, role=User.Role.RECIPIENT, name="")
        user.set_password(PASSWORD)
        user.must_change_password = False
        user.save()
        return user

    seeds = {"org": org, "senders": senders, "pool": pool,
             "small": reader("inbox-small@example.com"), "large": reader("inbox-large@example.com")}
    disconnect()
    return seeds


def sender_accounts(seeds: dict) -> list[dict]:
    """What each load client signs in with and sends to."""
    return [
        {"email": s.email, "password": PASSWORD, "index": i,
         "recipients": [u.email for u in seeds["pool"]]}
        for i, s in enumerate(seeds["senders"])
    ]


def disconnect() -> None:
    """Close the bench process's own database connections (the servers and workers keep theirs)."""
    from django.db import connections

    connections.close_all()


def settle_database() -> None:
    """Vacuum, analyse and checkpoint the bench's database, so that a part measured after others
    does not count, in PostgreSQL's CPU, autovacuum and checkpoints working through the rows
    those others wrote (its own rows' still count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE)")
        cursor.execute("CHECKPOINT")


def clear_queue() -> None:
    """No notification, no task and no unchained audit event left, so that no later trial
    reads a longer queue, nor has its workers' linker chain events it did not record."""
    from django_tasks_db.models import DBTaskResult

    from hushpost.audit import linker
    from hushpost.notifications.models import Notification

    DBTaskResult.objects.all().delete()
    Notification.objects.all().delete()
    linker.link(wait=True)
