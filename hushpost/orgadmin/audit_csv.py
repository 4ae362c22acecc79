"""The audit trail as CSV: the admin area's export, and the audit file of a conversation's export."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator

from hushpost.audit.models import AuditEvent

HEADER = ["time (UTC)", "action", "actor", "client address", "object type", "object", "detail", "hash"]


class _Echo:
    """csv.writer's file: each row comes back as text, to be streamed or stored."""

    def write(self, value: str) -> str:
        return value


def _cell(value) -> str:
    text = str(value)
    # Spreadsheets run cells that start with these as formulas.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The header, then one line per event (an event not chained yet has no hash)."""
    writer = csv.writer(_Echo())
    yield writer.writerow(HEADER)
    for e in events:
        yield writer.writerow([_cell(v) for v in (e.at.isoformat(), e.get_action_display(), e.actor_email,
                                                  e.client, e.object_type, e.object_id, e.detail, e.hash or "")])
