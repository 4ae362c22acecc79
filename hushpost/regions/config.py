"""The regions file: every deployment's code, name and public URL, and the key they share.

Each deployment serves one region (``HUSHPOST_REGION``) and reads the same
TOML file (``HUSHPOST_REGIONS_FILE``)::

    [trust]
    key = "<32 random bytes, base64>"   # signs the deployments' questions to each other

    [regions.us]
    name = "United States"
    base_url = "https://us.secure.example.org"

Discovery only ever sends a browser to a ``base_url`` listed here.
"""

from __future__ import annotations

import base64
import binascii
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from hushpost.lib.env import ConfigError

CODE = re.compile(r"^[a-z]{2,10}$")


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    base_url: str


@dataclass(frozen=True)
class Regions:
    here: str
    regions: dict[str, Region]
    key: bytes

    @property
    def others(self) -> list[Region]:
        return [r for c, r in sorted(self.regions.items()) if c != self.here]

    def get(self, code: str) -> Region | None:
        return self.regions.get(code)


def load_regions(path: str | None, here: str, base_url: str) -> Regions:
    """The deployment's view of all regions; without a file, a region of its own."""
    if not path:
        return Regions(here=here, regions={here: Region(here, here.upper(), base_url)}, key=b"")
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"HUSHPOST_REGIONS_FILE {path}: {exc}") from None
    table = data.get("regions")
    if not isinstance(table, dict) or not table:
        raise ConfigError(f"HUSHPOST_REGIONS_FILE {path}: no [regions.<code>] tables")
    regions = {}
    for code, entry in table.items():
        if not CODE.match(code) or not isinstance(entry, dict):
            raise ConfigError(f"HUSHPOST_REGIONS_FILE: bad region code {code!r}")
        url = str(entry.get("base_url", "")).rstrip("/")
        parts = urlsplit(url)
        if (
            parts.scheme not in {"http", "https"} or not parts.hostname or parts.path
            or parts.query or parts.fragment or parts.username or parts.password
        ):
            raise ConfigError(f"HUSHPOST_REGIONS_FILE: region {code} needs a base_url like https://host")
        regions[code] = Region(code=code, name=str(entry.get("name") or code.upper()), base_url=url)
    if here not in regions:
        raise ConfigError(f"HUSHPOST_REGION {here!r} is not in HUSHPOST_REGIONS_FILE ({', '.join(regions)})")
    key = str((data.get("trust") or {}).get("key", "")).strip()
    if len(regions) > 1 and not _strong(key):
        raise ConfigError(
            "HUSHPOST_REGIONS_FILE: [trust] key must be 32 or more random bytes in base64 "
            "(openssl rand -base64 32)"
        )
    return Regions(here=here, regions=regions, key=key.encode())


def _strong(key: str) -> bool:
    try:
        raw = base64.b64decode(key, validate=True)
    except (ValueError, binascii.Error):
        return False
    return len(raw) >= 32 and len(set(raw)) > 8  # not a placeholder of repeated characters
