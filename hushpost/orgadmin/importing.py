"""Adding many senders at once from a CSV file: read, check each row, then invite the good ones.

The file is read as UTF-8 (a spreadsheet's "CSV UTF-8"), with or without a
header row, in the columns e-mail address, name and (optionally) admin. Each
row is checked as the one-by-one form checks it (``check_new_sender``), plus
what only a list can get wrong (the same address twice). Nothing is created
until the admin confirms the preview; each account then gets its invitation
(``create_sender``), and a row that stopped being possible meanwhile (someone
added that sender) is reported, not fatal.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict, dataclass

from hushpost.accounts.actions import check_new_sender, create_sender
from hushpost.lib.input import CONTROL
from hushpost.lib.refusals import Refused

MAX_ROWS = 500
MAX_BYTES = 256 * 1024
YES = {"yes", "y", "true", "1", "admin", "x"}
NO = {"", "no", "n", "false", "0"}
HEADER = {"email", "e-mail", "e-mail address", "email address", "address"}


@dataclass
class Row:
    line: int
    email: str
    name: str
    admin: bool = False
    problem: str = ""


def read(data: bytes, org) -> tuple[list[Row], str]:
    """The rows of the file, each with its problem if it has one; or a problem with the whole file."""
    if len(data) > MAX_BYTES:
        return [], f"The file is larger than {MAX_BYTES // 1024} KB; split it into smaller files."
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], "The file is not UTF-8 text. Save it from your spreadsheet as \u201cCSV UTF-8\u201d."
    try:
        lines = [cells for cells in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in cells)]
    except csv.Error as error:
        return [], f"The file is not readable as CSV ({error})."
    if lines and lines[0][0].strip().lower() in HEADER:
        lines, first = lines[1:], 2
    else:
        first = 1
    if not lines:
        return [], "The file has no senders in it: one line each, with the e-mail address, name and admin (yes/no)."
    if len(lines) > MAX_ROWS:
        return [], f"The file has {len(lines)} senders; at most {MAX_ROWS} at a time."
    rows, seen = [], set()
    for n, cells in enumerate(lines, start=first):
        cells = [c.strip() for c in cells] + ["", "", ""]
        row = Row(line=n, email=cells[0].lower(), name=cells[1])
        row.problem = _problem(row, cells[2].lower(), org, seen)
        rows.append(row)
    return rows, ""


def _problem(row: Row, admin: str, org, seen: set[str]) -> str:
    if any(CONTROL.search(v) for v in (row.email, row.name, admin)):
        return "It contains a control character."
    if admin not in YES | NO:
        return f"Admin should be yes or no, not \u201c{admin[:40]}\u201d."
    row.admin = admin in YES
    if not row.name:
        return "The name is missing."
    if len(row.name) > 200:
        return "The name is longer than 200 characters."
    if row.email in seen:
        return "This address is already on an earlier line."
    seen.add(row.email)
    try:
        check_new_sender(row.email, row.name, org)
    except Refused as refusal:
        return str(refusal)
    return ""


def to_session(rows: list[Row]) -> list[dict]:
    return [asdict(r) for r in rows if not r.problem]


def from_session(stored) -> list[Row]:
    if not isinstance(stored, list):
        return []
    return [Row(**r) for r in stored if isinstance(r, dict) and set(r) == {"line", "email", "name", "admin", "problem"}]


def invite_all(rows: list[Row], *, by) -> tuple[int, list[Row]]:
    """Create and invite each row's sender; how many were invited, and the rows refused now."""
    invited, refused = 0, []
    for row in rows:
        try:
            create_sender(email=row.email, name=row.name, admin=row.admin, org=by.org, by=by)
        except Refused as refusal:
            row.problem = str(refusal)
            refused.append(row)
        else:
            invited += 1
    return invited, refused
