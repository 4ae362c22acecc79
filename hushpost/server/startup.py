from __future__ import annotations

import sys


def refuse_unsafe_production() -> None:
    """Stop here, loudly, rather than run production on unsafe settings."""
    from django.conf import settings

    problems = settings.PRODUCTION_PROBLEMS
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        sys.stderr.write(
            "Hushpost refuses to start in production mode:\n"
            f"{lines}\n"
            "Fix these, or set HUSHPOST_MODE=development for a local trial.\n"
        )
        raise SystemExit(2)
