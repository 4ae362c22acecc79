"""Asking the other regions' deployments where a mail domain lives.

Every question and answer is JSON signed with HMAC-SHA256 under the shared
key, and names its purpose, sender, addressee, a nonce and a timestamp, so a
message cannot be replayed to another region, to another endpoint, or as an
answer. All regions are asked at once with one overall deadline; redirects
are never followed; an unreachable region simply does not answer, and only
complete answers are cached.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.core.cache import cache

from hushpost.crypto import macs
from hushpost.regions.config import Region

log = logging.getLogger(__name__)
SIGNATURE = "X-Hushpost-Signature"
MAX_SKEW = 60  # seconds a signed message stays valid
DEADLINE = 2.0  # seconds for all regions together
MAX_ANSWER = 64 * 1024
CACHE_SECONDS = 300
# Shared by every request of the process: a burst of logins cannot start a
# burst of threads, and a slow region only ever holds these.
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="hushpost-regions")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a region answers itself or not at all


_opener = urllib.request.build_opener(_NoRedirects)


def sign(body: bytes) -> str:
    return macs.region_signature(settings.REGIONS.key, body)


def verify(body: bytes, signature: str, *, purpose: str, sender: str | None = None) -> dict | None:
    """The message, if signed with the shared key, fresh, meant for this region and purpose."""
    if not settings.REGIONS.key or not macs.matches(sign(body), signature or ""):
        return None
    try:
        message = json.loads(body)
        ts = float(message.get("ts"))
    except (ValueError, TypeError, AttributeError):
        return None
    regions = settings.REGIONS
    if (
        not math.isfinite(ts)
        or abs(time.time() - ts) > MAX_SKEW
        or message.get("purpose") != purpose
        or message.get("to") != regions.here
        or message.get("from") not in regions.regions
        or (sender is not None and message.get("from") != sender)
    ):
        return None
    return message


def signed(purpose: str, to: str, **fields) -> bytes:
    message = {"purpose": purpose, "from": settings.REGIONS.here, "to": to,
               "nonce": secrets.token_hex(8), "ts": time.time(), **fields}
    return json.dumps(message).encode()


def ask(region: Region, path: str, purpose: str, **fields) -> dict | None:
    """One signed question to ``region``; its signed answer, or None."""
    body = signed(purpose, region.code, **fields)
    question = json.loads(body)
    request = urllib.request.Request(  # noqa: S310 - base_url comes from the regions file, http(s) only
        region.base_url + path, data=body, method="POST",
        headers={"Content-Type": "application/json", SIGNATURE: sign(body)},
    )
    with _opener.open(request, timeout=DEADLINE) as response:
        raw = response.read(MAX_ANSWER + 1)
        if len(raw) > MAX_ANSWER:
            return None
        answer = verify(raw, response.headers.get(SIGNATURE, ""), purpose=purpose + "-answer",
                        sender=region.code)
    if answer is None or answer.get("nonce") != question["nonce"]:
        return None
    return answer


def ask_all(path: str, purpose: str, **fields) -> tuple[dict[str, dict], bool]:
    """Ask every other region at once; (answers by region code, whether all answered)."""
    others = settings.REGIONS.others
    futures = {_pool.submit(ask, region, path, purpose, **fields): region for region in others}
    done, pending = wait(futures, timeout=DEADLINE)
    for future in pending:
        future.cancel()
    answers: dict[str, dict] = {}
    for future in done:
        try:
            answer = future.result()
        except Exception as exc:  # an unreachable region does not answer
            log.info("region %s did not answer: %s", futures[future].code, type(exc).__name__)
            continue
        if answer is not None:
            answers[futures[future].code] = answer
    return answers, len(answers) == len(others)


def answer_to(question: dict, **fields) -> tuple[bytes, str]:
    """A signed answer, for the asking region only, carrying the question's nonce."""
    body = signed(question["purpose"] + "-answer", question["from"], nonce=question["nonce"], **fields)
    return body, sign(body)


def region_for_domain(domain: str) -> Region | None:
    """The other region whose deployment hosts ``domain``, or None."""
    if not settings.REGIONS.others or not domain:
        return None
    cache_key = "hushpost:region-of:" + hashlib.sha256(domain.encode()).hexdigest()
    cached = cache.get(cache_key)
    if cached is not None:
        return settings.REGIONS.get(cached) if cached else None
    hosting, silent = regions_hosting(domain)
    if len(hosting) > 1:
        log.warning("domain %s is hosted in several regions: %s", domain, ", ".join(sorted(r.code for r in hosting)))
        return None
    found = hosting[0] if hosting else None
    if found is not None or not silent:
        # A region that did not answer might host it: ask again next time.
        cache.set(cache_key, found.code if found else "", CACHE_SECONDS)
    return found


def regions_hosting(domain: str) -> tuple[list[Region], list[Region]]:
    """Every other region hosting ``domain``, and the regions that did not answer (uncached)."""
    answers, _ = ask_all("/regions/v1/domain", "domain", domain=domain)
    hosting = [r for r in settings.REGIONS.others
               if answers.get(r.code, {}).get("domain") == domain and answers[r.code].get("hosted") is True]
    silent = [r for r in settings.REGIONS.others if r.code not in answers]
    return hosting, silent
