"""The ``hushpost`` command: Django's management commands, Hushpost's settings."""

from __future__ import annotations

import os
import sys
import textwrap

# Commands that only read or help may run on an unfinished production set-up.
SAFE_COMMANDS = {"help", "--help", "-h", "version", "--version"}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hushpost.settings")
    from hushpost.lib.env import ConfigError

    try:
        import django

        django.setup()
    except ConfigError as exc:
        sys.stderr.write(f"Hushpost configuration error: {exc}\n")
        raise SystemExit(2) from None
    command = argv[1] if len(argv) > 1 else "help"
    if command in {"help", "--help", "-h"} and len(argv) <= 2:
        sys.stdout.write(overview())
        return
    if command not in SAFE_COMMANDS:
        from hushpost.server.keycheck import refuse_unknown_master_key
        from hushpost.server.startup import (
            NEEDS_DATABASE,
            make_database_dir,
            refuse_unsafe_production,
            refuse_unusable_database,
        )

        refuse_unsafe_production()
        make_database_dir()
        if command in NEEDS_DATABASE:
            refuse_unusable_database()
        if command in {*NEEDS_DATABASE, "worker"}:
            refuse_unknown_master_key()
    from django.core.management import execute_from_command_line

    from hushpost.crypto.master import UnknownMasterKey

    try:
        execute_from_command_line(argv)
    except UnknownMasterKey as exc:
        sys.stderr.write(f"Hushpost's master key does not fit this deployment: {exc}.\n")
        raise SystemExit(2) from None


# Django's own commands an operator needs; 'hushpost help --all' lists every one.
DJANGO_COMMANDS = {
    "migrate": "Create or upgrade the database's tables (run after every upgrade).",
    "check": "Check the settings ('check --deploy' for production).",
    "createsuperuser": "Create a platform operator for /ops/.",
    "collectstatic": "Copy the static files where a web server can serve them (optional: 'serve' serves them).",
}


def overview() -> str:
    """``hushpost --help``: Hushpost's own commands with what each does, then the few of Django's
    that running it needs."""
    from django.core.management import get_commands, load_command_class

    ours = sorted((name, app) for name, app in get_commands().items() if app.startswith("hushpost."))
    lines = ["Usage: hushpost <command> [options]    ('hushpost help <command>' for its options)", "",
             "Hushpost's commands:"]
    for name, app in ours:
        text = " ".join((load_command_class(app, name).help or "").split())
        lines += textwrap.wrap(text, 100, initial_indent=f"  {name:<16}", subsequent_indent=" " * 18)
    lines += ["", "Django's commands used to run it:"]
    lines += [f"  {name:<16}{text}" for name, text in DJANGO_COMMANDS.items()]
    lines += ["", "'hushpost help --all' lists every command Django has.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
