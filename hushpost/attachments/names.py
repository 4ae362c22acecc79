"""Filenames as a recipient's computer will see them: harmless, whatever was uploaded."""

from __future__ import annotations

import re
import unicodedata

# Windows device names, refused as a file's stem whatever the extension.
RESERVED = {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$",
            *(f"COM{i}" for i in "0123456789¹²³"), *(f"LPT{i}" for i in "0123456789¹²³")}
# Control (Cc), format (Cf: bidi overrides and isolates, zero-width), surrogate,
# private-use and unassigned characters.
DROPPED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
UNSAFE = re.compile(r'[<>:"|?*/\\]')
MAX_LENGTH = 150
# No file system holds a longer name, so a longer one is no file's: refused, not cut, and
# before any work on it (normalising Unicode takes time that grows faster than the length).
MAX_GIVEN_LENGTH = 255
MAX_TYPE_LENGTH = 100
CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")


def name_problem(raw: str | None) -> str | None:
    """Why a file's name as given cannot be taken, or None; :func:`safe_filename` then cleans it."""
    if raw and len(raw) > MAX_GIVEN_LENGTH:
        return f"A file's name is longer than {MAX_GIVEN_LENGTH} characters. Rename the file and attach it again."
    return None


def safe_filename(raw: str | None) -> str:
    """The last path segment, without control or direction characters, never a device name."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch) not in DROPPED_CATEGORIES)
    name = UNSAFE.sub("_", name)
    name = " ".join(name.split())  # tabs and runs of spaces become one space
    name = name.strip(". ")  # no hidden files, no trailing dot or space (Windows)
    if name.split(".")[0].strip().upper() in RESERVED:
        name = "_" + name
    if len(name) > MAX_LENGTH:
        stem, dot, ext = name.rpartition(".")
        ext = ext if dot and len(ext) <= 16 else ""
        name = (stem if ext else name)[: MAX_LENGTH - len(ext) - 1].rstrip(". ") + ("." + ext if ext else "")
    return name or "file"


def safe_content_type(raw: str | None) -> str:
    value = (raw or "").split(";")[0].strip().lower()[:MAX_TYPE_LENGTH]
    return value if CONTENT_TYPE.match(value) else "application/octet-stream"
