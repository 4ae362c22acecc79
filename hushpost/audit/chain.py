"""What the audit trail's keyed hashes cover: each event's link, each chain head's seal, and checkpoints.

All are HMAC-SHA256 under keys derived from the master key (``hushpost.crypto.macs.audit``),
which is not in the database: whoever can write the database can delete or change rows, but
cannot make links, seals or checkpoints that verify.

* An event's ``mac``, made as it is written, covers its fields: the linker chains
  whatever waits, so an event inserted by anyone else is told apart by it.
* An event's ``hash`` covers its fields and the hash before it.
* A chain's head carries how many events the chain has and its last hash,
  sealed, so removing the last events and moving the head back shows.
* A checkpoint states every chain's count and last hash at one moment, for
  the operator to keep outside Hushpost: restoring an older head together
  with its older seal (from a backup) cannot hide events the checkpoint saw.
"""

from __future__ import annotations

import json

from hushpost.crypto import macs
from hushpost.crypto.labels import AUDIT_CHECKPOINT, AUDIT_EVENT, AUDIT_HEAD, AUDIT_LINK
from hushpost.lib import clock

GENESIS = "0" * 64
CHECKPOINT = "hushpost-audit-checkpoint"


class BadCheckpoint(ValueError):
    """A checkpoint that is not one, or whose signature does not match."""


def _fields(event) -> list:
    return [event.org_id or 0, event.at.isoformat(), event.action, event.actor_id or 0, event.actor_email,
            event.client, event.object_type, event.object_id, event.detail]


def link(prev: str, event) -> str:
    """The event's hash: its fields and the previous hash of its chain."""
    return macs.audit(AUDIT_LINK, [prev, *_fields(event)])


def event_mac(event) -> str:
    """The event's own seal, made by ``record`` as it is written."""
    return macs.audit(AUDIT_EVENT, _fields(event))


def mac_holds(event) -> bool:
    return bool(event.mac) and macs.matches(event.mac, event_mac(event))


def head_seal(chain: int, events: int, last_hash: str) -> str:
    return macs.audit(AUDIT_HEAD, [chain, events, last_hash])


def seal_holds(head) -> bool:
    return macs.matches(head.seal, head_seal(head.chain, head.events, head.last_hash))


def write_checkpoint(chains: dict[int, tuple[int, str]]) -> str:
    """One line of JSON: when, and each chain's count and last hash, signed."""
    body = {"kind": CHECKPOINT, "at": clock.now().isoformat(timespec="seconds"),
            "chains": {str(c): [n, h] for c, (n, h) in sorted(chains.items())}}
    return json.dumps({**body, "mac": macs.audit(AUDIT_CHECKPOINT, [body])}, separators=(",", ":"))


def read_checkpoint(text: str) -> tuple[str, dict[int, tuple[int, str]]]:
    """(when it was taken, each chain's count and last hash); BadCheckpoint if it is not genuine."""
    try:
        data = json.loads(text)
        body = {"kind": data["kind"], "at": data["at"], "chains": data["chains"]}
        chains = {int(c): (int(n), str(h)) for c, (n, h) in body["chains"].items()}
        mac = str(data["mac"])
    except (ValueError, TypeError, KeyError, AttributeError):
        raise BadCheckpoint("this is not an audit checkpoint (the one line `hushpost audit checkpoint` "
                            "printed)") from None
    if body["kind"] != CHECKPOINT or not macs.matches(macs.audit(AUDIT_CHECKPOINT, [body]), mac):
        raise BadCheckpoint("the checkpoint's signature does not match: it was changed, or made with "
                            "another master key")
    return str(body["at"]), chains
