"""Which mail is secure, and the send options it asks for.

The trigger keyword (the organisation's, ``[secure]`` by default, any case)
makes a message secure and is removed from the subject; an organisation that
routes all its mail to the gateway needs no keyword.

Options start from the organisation's defaults, exactly as Compose preselects
them; an ``X-Hushpost-Options`` header changes them, then tags in the subject
do (a person typing a tag has the last word)::

    X-Hushpost-Options: read-receipt; restrict=no-print,no-reply; expire=7d
    Subject: [secure] [receipt] [noprint] [expire=7d] Your results

Subject tags: ``[receipt]``, ``[no-receipt]``, ``[noprint]``, ``[noreply]``
(no print and no reply, as Compose's "Restricted - No Print, No Reply"),
``[unrestricted]``, ``[expire=7d]`` / ``[expire=never]``.  A tag is removed
from the subject; other bracketed text (``[EXT]``, a ticket number) stays.
An expiry the organisation does not allow is refused, as Compose refuses it.
"""

from __future__ import annotations

import re

from hushpost.gateway.replies import SmtpRefused
from hushpost.lib.refusals import Refused
from hushpost.messaging.actions import SendOptions, check_expiry
from hushpost.messaging.forms import ComposeForm, preselected
from hushpost.messaging.models import Restriction
from hushpost.orgs.models import Organization

MAX_SUBJECT = ComposeForm.base_fields["subject"].max_length
NO_SUBJECT = "(no subject)"
TAG = re.compile(r"\[\s*([A-Za-z-]+)\s*(?:=\s*([A-Za-z0-9]+)\s*)?\]")
DAYS = re.compile(r"^(\d{1,4})d?$", re.I)
YES = {"", "yes", "on", "true", "1"}
NO = {"no", "off", "false", "0"}


def keyword_pattern(keyword: str) -> re.Pattern:
    # A keyword that starts or ends with a letter matches whole words only:
    # "secure" must not fire on "insecure".
    start = r"(?<!\w)" if keyword[:1].isalnum() else ""
    end = r"(?!\w)" if keyword[-1:].isalnum() else ""
    return re.compile(start + re.escape(keyword) + end, re.I)


def secure_subject(subject: str, org: Organization) -> str:
    """The subject without the keyword; refused if it had none and the organisation
    does not route all its mail here."""
    pattern = keyword_pattern(org.gateway_keyword or "[secure]")
    stripped, found = pattern.subn(" ", subject)
    if not found and not org.gateway_route_all:
        raise SmtpRefused(550, "5.7.0", f"the subject has no {org.gateway_keyword} keyword, so this is not "
                                    "a secure message; add the keyword to send it securely")
    return stripped


def read_options(subject: str, header: str, org: Organization) -> tuple[str, SendOptions]:
    """The options asked for, and the subject without its tags."""
    read_receipt, restriction, expire_days = preselected(org)  # as Compose preselects them
    options = SendOptions(read_receipt=read_receipt, restriction=restriction, expire_days=expire_days)
    if header:
        _apply_header(options, header)
    subject = TAG.sub(lambda m: _apply_tag(options, m), subject)
    try:
        check_expiry(org, options.expire_days)  # before any file is stored; send_message checks again
    except Refused as e:
        raise SmtpRefused(550, "5.7.0", str(e)) from None
    return clean_subject(subject), options


def clean_subject(subject: str) -> str:
    subject = " ".join(subject.split())
    return (subject or NO_SUBJECT)[:MAX_SUBJECT].rstrip()


def _apply_tag(options: SendOptions, match: re.Match) -> str:
    name, value = match.group(1).lower().replace("-", ""), match.group(2)
    if value is None and name in {"receipt", "readreceipt"}:
        options.read_receipt = True
    elif value is None and name in {"noreceipt", "noreadreceipt"}:
        options.read_receipt = False
    elif value is None and name == "noprint":
        options.restriction = Restriction.NO_PRINT
    elif value is None and name == "noreply":
        options.restriction = Restriction.NO_PRINT_NO_REPLY
    elif value is None and name == "unrestricted":
        options.restriction = Restriction.NONE
    elif name in {"expire", "expires"} and value is not None:
        options.expire_days = _expiry(value, f"[{match.group(1)}={value}]")
    else:
        return match.group(0)  # not ours: leave it in the subject
    return " "


def _apply_header(options: SendOptions, header: str) -> None:
    for item in header.split(";"):
        name, _, value = (s.strip().lower() for s in item.partition("="))
        if not name:
            continue
        if name in {"read-receipt", "receipt"} and value in YES | NO:
            options.read_receipt = value in YES
        elif name in {"no-read-receipt", "no-receipt"} and not value:
            options.read_receipt = False
        elif name in {"restrict", "restriction"}:
            options.restriction = _restriction(value)
        elif name in {"expire", "expires"}:
            options.expire_days = _expiry(value, f"X-Hushpost-Options {item.strip()}")
        else:
            raise SmtpRefused(550, "5.6.0", f"X-Hushpost-Options: unknown option {item.strip()!r}; use "
                                        "read-receipt, restrict=no-print[,no-reply] and expire=7d")


def _restriction(value: str) -> str:
    words = {w.strip() for w in value.split(",") if w.strip()}
    if not words or not words <= {"none", "no-print", "no-reply"} or ("none" in words and len(words) > 1):
        raise SmtpRefused(550, "5.6.0", f"X-Hushpost-Options: restrict={value} is not one of none, "
                                    "no-print, no-print,no-reply")
    if "no-reply" in words:
        return Restriction.NO_PRINT_NO_REPLY  # there is no "no reply" that may be printed
    if "no-print" in words:
        return Restriction.NO_PRINT
    return Restriction.NONE


def _expiry(value: str, where: str) -> int:
    if value.lower() in {"never", "none"}:
        return 0
    match = DAYS.match(value)
    if not match:
        raise SmtpRefused(550, "5.6.0", f"{where}: write the expiry as a number of days (7d) or never")
    return int(match.group(1))

