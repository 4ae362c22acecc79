"""Asking the other regions' deployments where a mail domain lives.

A question is an HMAC-SHA256-signed JSON body with a timestamp; so is the
answer. Every region is asked at once with short timeouts; an unreachable
one simply does not answer, and answers are cached for a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed

from django.conf import settings
from django.core.cache import cache

from hushpost.regions.config import Region

log = logging.getLogger(__name__)
SIGNATURE = "X-Hushpost-Signature"
MAX_SKEW = 60  # seconds a signed message stays valid
TIMEOUT = 2.0
CACHE_SECONDS = 300


def sign(body: bytes) -> str:
    return hmac.new(settings.REGIONS.key, body, hashlib.sha256).hexdigest()


def verify(body: bytes, signature: str) -> dict | None:
    """The message, if it is signed with the shared key and fresh."""
    if not settings.REGIONS.key or not hmac.compare_digest(sign(body), signature or ""):
        return None
    try:
        message = json.loads(body)
    except ValueError:
        return None
    if not isinstance(message, dict) or abs(time.time() - float(message.get("ts", 0))) > MAX_SKEW:
        return None
    return message


def _ask(region: Region, domain: str) -> bool:
    body = json.dumps({"domain": domain, "from": settings.REGIONS.here, "ts": time.time()}).encode()
    request = urllib.request.Request(  # noqa: S310 - base_url comes from the regions file, http(s) only
        region.base_url + "/regions/v1/domain", data=body, method="POST",
        headers={"Content-Type": "application/json", SIGNATURE: sign(body)},
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
        answer = verify(response.read(), response.headers.get(SIGNATURE, ""))
    return bool(answer and answer.get("domain") == domain and answer.get("hosted") is True)


def region_for_domain(domain: str) -> Region | None:
    """The other region whose deployment hosts ``domain``, or None."""
    others = settings.REGIONS.others
    if not others or not domain:
        return None
    cache_key = "hushpost:region-of:" + hashlib.sha256(domain.encode()).hexdigest()
    cached = cache.get(cache_key)
    if cached is not None:
        return settings.REGIONS.get(cached) if cached else None
    found = None
    with ThreadPoolExecutor(max_workers=len(others)) as pool:
        futures = {pool.submit(_ask, region, domain): region for region in others}
        for future in as_completed(futures):
            try:
                if future.result():
                    found = futures[future]
                    break
            except Exception as exc:  # an unreachable region does not answer
                log.info("region %s did not answer: %s", futures[future].code, type(exc).__name__)
    cache.set(cache_key, found.code if found else "", CACHE_SECONDS)
    return found
