"""The filters identity providers send before they create a user (RFC 7644 §3.4.2.2).

Microsoft Entra ID and Okta ask ``userName eq "…"`` (and Entra at times
``externalId eq "…"``) to find out whether a person already has an account;
that is all Hushpost answers. Any other filter is refused with ``invalidFilter``
rather than half understood: an identity provider that got every user back
for a filter it thought narrow would match the wrong person.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from hushpost.scim.errors import ScimError

# attribute, "eq", a JSON string; attribute names and the operator are case-insensitive (§3.4.2.2).
EQUALS = re.compile(r'\s*([A-Za-z][\w.:]*)\s+eq\s+("(?:[^"\\]|\\.)*")\s*', re.IGNORECASE)
ATTRIBUTES = {"username": "userName", "externalid": "externalId"}
MAX_LENGTH = 1000


@dataclass(frozen=True)
class Equals:
    attribute: str  # "userName" or "externalId"
    value: str


def parse(text: str) -> Equals:
    """The one comparison ``text`` asks for, or ``ScimError`` (400 invalidFilter) saying why not."""
    match = EQUALS.fullmatch(text) if len(text) <= MAX_LENGTH else None
    if match is None:
        raise ScimError(400, 'Only filters of the form userName eq "…" or externalId eq "…" are supported.',
                        "invalidFilter")
    attribute = ATTRIBUTES.get(match.group(1).lower())
    if attribute is None:
        raise ScimError(400, f"Filtering on {match.group(1)[:40]} is not supported; use userName or externalId.",
                        "invalidFilter")
    try:
        value = json.loads(match.group(2))
    except ValueError:
        raise ScimError(400, "The filter's value is not a valid string.", "invalidFilter") from None
    if "\x00" in value:
        raise ScimError(400, "The filter's value contains a NUL character.", "invalidFilter")
    return Equals(attribute, value)
