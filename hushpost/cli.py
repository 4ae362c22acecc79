"""The ``hushpost`` command: Django's management commands, Hushpost's settings."""

from __future__ import annotations

import os
import sys

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
    if command not in SAFE_COMMANDS:
        from hushpost.server.startup import make_database_dir, refuse_unsafe_production

        refuse_unsafe_production()
        make_database_dir()
    from django.core.management import execute_from_command_line

    execute_from_command_line(argv)


if __name__ == "__main__":
    main()
