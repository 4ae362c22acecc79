"""A PrivateBin-like paste server for ``make bench``'s part (h): what such a server does per paste.

PrivateBin encrypts in the browser; its server stores the ciphertext, serves one
static page, and hands the ciphertext back.  PHP is not part of the bench's
machine, so this is the same server-side work in a minimal WSGI app (standard
library only, no framework), served by gunicorn with the command line ``hushpost
serve`` builds, like ``bench/trivial.py``:

* ``POST /`` with a JSON paste (format 2: ``adata``, ``ct``, ``meta``), sent with
  ``X-Requested-With: JSONHttpRequest`` as PrivateBin's JavaScript does: the
  paste is checked, given a random id and a delete token (an HMAC of the id),
  and written as a file under the data directory, ``<ab>/<cd>/<id>.php`` with
  PrivateBin's protection line in front (written to a temporary file, then
  renamed into place); the answer is JSON with the id.
* ``GET /?<id>``: the page, a static template with the id in it.
* ``GET /?<id>`` with ``X-Requested-With: JSONHttpRequest``: the paste's JSON,
  read from its file; a burn-after-reading paste (``adata[3]``) is deleted then.

Left out, as a benchmark would configure PrivateBin: the traffic limiter,
discussions, expiry purging.  Files live under ``BENCH_PASTEBIN_DIR``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from pathlib import Path

from django.conf import settings

from hushpost.lib.env import envint

DATA = Path(os.environ.get("BENCH_PASTEBIN_DIR", "var/pastebin"))
SALT = secrets.token_bytes(32)  # PrivateBin keeps a server salt for delete tokens
PROTECTION = b"<?php http_response_code(403); /*"
MAX_BYTES = 10 * 1024 * 1024  # PrivateBin's default size limit
PASTE_ID = re.compile(r"^[0-9a-f]{16}$")
EXPIRE = {"5min": 300, "10min": 600, "1hour": 3600, "1day": 86400, "1week": 604800,
          "1month": 2592000, "1year": 31536000, "never": 0}

HEADERS = [
    ("Cache-Control", "no-store, no-cache, no-transform, must-revalidate"),
    ("Pragma", "no-cache"),
    ("Content-Security-Policy", "default-src 'none'; base-uri 'self'; form-action 'none'; "
     "manifest-src 'self'; connect-src * blob:; script-src 'self' 'unsafe-eval'; "
     "style-src 'self'; font-src 'self'; frame-ancestors 'none'; img-src 'self' data: blob:; "
     "media-src blob:; object-src blob:; sandbox allow-same-origin allow-scripts allow-forms "
     "allow-popups allow-modals allow-downloads"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Cross-Origin-Embedder-Policy", "require-corp"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "browsing-topics=()"),
    ("Referrer-Policy", "no-referrer"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "deny"),
    ("X-XSS-Protection", "1; mode=block"),
]

# The page: markup, no data (the script reads the id from the address and fetches the paste).
_FORM = "".join(
    f'<li><a href="#" data-expiration="{key}">{key}</a></li>' for key in EXPIRE
)
PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'">
<meta name="robots" content="noindex"><meta name="google" content="notranslate">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>PrivateBin</title>
<link type="text/css" rel="stylesheet" href="css/bootstrap/bootstrap-3.4.1.css">
<link type="text/css" rel="stylesheet" href="css/bootstrap/privatebin.css?1.7.6">
<script src="js/jquery-3.7.1.js" crossorigin="anonymous"></script>
<script src="js/zlib-1.3.1.js" crossorigin="anonymous"></script>
<script src="js/base-x-4.0.0.js" crossorigin="anonymous"></script>
<script src="js/bootstrap-3.4.1.js" crossorigin="anonymous"></script>
<script src="js/purify-3.1.6.js" crossorigin="anonymous"></script>
<script src="js/privatebin.js?1.7.6" crossorigin="anonymous"></script>
</head><body role="document" data-compression="zlib" data-paste="@ID@">
<div id="loadingindicator" class="hidden"><span class="glyphicon glyphicon-time"></span>
Loading…</div>
<nav class="navbar navbar-inverse navbar-static-top"><div class="container">
<div class="navbar-header"><a class="reloadlink navbar-brand" href="">PrivateBin</a></div>
<div id="navbar" class="navbar-collapse collapse"><ul class="nav navbar-nav">
<li id="loadingindicator" class="navbar-text hidden">Loading…</li>
<li><button id="retrybutton" type="button" class="reloadlink hidden btn btn-primary">Retry
</button><button id="newbutton" type="button" class="hidden btn btn-default">New</button>
<button id="clonebutton" type="button" class="hidden btn btn-default">Clone</button>
<button id="rawtextbutton" type="button" class="hidden btn btn-default">Raw text</button>
<button id="downloadtextbutton" type="button" class="hidden btn btn-default">Save paste
</button><button id="emaillink" type="button" class="hidden btn btn-default">Email</button>
<button id="qrcodelink" type="button" class="hidden btn btn-default">QR code</button></li>
<li class="dropdown"><select id="pasteExpiration" name="pasteExpiration" class="hidden">
@EXPIRE@</select></li>
<li id="burnafterreadingoption" class="checkbox hidden"><label>
<input type="checkbox" id="burnafterreading" name="burnafterreading"> Burn after reading
</label></li>
<li id="opendiscussionoption" class="checkbox hidden"><label>
<input type="checkbox" id="opendiscussion" name="opendiscussion"> Open discussion</label></li>
</ul></div></div></nav>
<main><section class="container">
<div id="remainingtime" role="alert" class="hidden alert alert-info">
<span class="glyphicon glyphicon-fire" aria-hidden="true"></span></div>
<div id="pastelink" role="alert" class="hidden alert alert-success"></div>
<div id="errormessage" role="alert" class="hidden alert alert-danger">
<span class="glyphicon glyphicon-alert" aria-hidden="true"></span></div>
<noscript><div id="noscript" role="alert" class="alert alert-warning">
This website needs JavaScript to work.</div></noscript>
<div id="status" role="alert" class="alert alert-info hidden"></div>
<ul id="editorTabs" class="nav nav-tabs hidden"><li role="presentation" class="active">
<a role="tab" aria-selected="true" id="messageedit" href="#">Editor</a></li>
<li role="presentation"><a role="tab" id="messagepreview" href="#">Preview</a></li></ul>
<div id="placeholder" class="hidden">+++ no paste text +++</div>
<div id="attachmentPreview" class="hidden"></div>
<div id="prettymessage" class="hidden"><pre id="prettyprint" class="prettyprint linenums:1">
</pre></div><div id="plaintext" class="hidden"></div>
<p><textarea id="message" name="message" cols="80" rows="25" class="form-control hidden">
</textarea></p></section>
<section class="container"><div id="discussion" class="hidden">
<h4>Discussion</h4><div id="commentcontainer"></div></div></section>
</main><footer class="container"><div class="row">
<h4 class="col-md-5 col-xs-8">PrivateBin <small>- Because ignorance is bliss</small></h4>
<p class="col-md-1 col-xs-4 text-center">1.7.6</p>
<p id="aboutbox" class="col-md-6 col-xs-12">PrivateBin is a minimalist, open source online
pastebin where the server has zero knowledge of pasted data. Data is encrypted/decrypted
<i>in the browser</i> using 256 bits AES.</p></div></footer>
<div id="serverdata" class="hidden" aria-hidden="true"><div id="templates">
<li id="commenttemplate" class="comment"><div class="commentmeta">
<span class="nickname">name</span><span class="commentdate">0000-00-00</span></div>
<div class="commentdata">c</div><button class="btn btn-default btn-sm">Reply</button></li>
<p id="commenttailtemplate" class="comment"><button class="btn btn-default btn-sm">
Add comment</button></p>
<div id="replytemplate" class="reply hidden"><input type="text" id="nickname"
class="form-control" title="Optional nickname…" placeholder="Optional nickname…">
<textarea id="replymessage" class="replymessage form-control" cols="80" rows="7"></textarea>
<br><div id="replystatus" role="alert" class="statusmessage hidden alert"></div>
<button id="replybutton" class="btn btn-default btn-sm">Post comment</button></div>
</div></div></body></html>
""".replace("@EXPIRE@", _FORM)


def _json(start_response, data: dict, status: str = "200 OK") -> list[bytes]:
    body = json.dumps(data, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))), *HEADERS])
    return [body]


def _error(start_response, message: str) -> list[bytes]:
    # PrivateBin answers errors with status 1 in a 200 JSON reply.
    return _json(start_response, {"status": 1, "message": message})


def _path(paste_id: str) -> Path:
    return DATA / paste_id[:2] / paste_id[2:4] / f"{paste_id}.php"


def _valid(paste: object) -> bool:
    """The checks PrivateBin's FormatV2 makes of a new paste."""
    if not isinstance(paste, dict) or paste.get("v") != 2:
        return False
    adata, ct, meta = paste.get("adata"), paste.get("ct"), paste.get("meta")
    if not (isinstance(adata, list) and len(adata) == 4 and isinstance(adata[0], list)
            and len(adata[0]) == 8 and isinstance(ct, str) and isinstance(meta, dict)):
        return False
    cipher = adata[0]
    if not (isinstance(cipher[2], int) and cipher[3] in (128, 192, 256)
            and cipher[4] in (64, 96, 128) and cipher[5] == "aes" and cipher[6] == "gcm"
            and cipher[7] in ("zlib", "none")):
        return False
    if adata[1] not in ("plaintext", "syntaxhighlighting", "markdown"):
        return False
    if adata[2] not in (0, 1) or adata[3] not in (0, 1) or (adata[2] and adata[3]):
        return False
    return meta.get("expire", "1week") in EXPIRE and re.fullmatch(r"[A-Za-z0-9+/=]+", ct) is not None


def create(environ, start_response) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length <= 0 or length > MAX_BYTES:
        return _error(start_response, "Paste is limited to 10 MB of encrypted data.")
    try:
        paste = json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        return _error(start_response, "Invalid data.")
    if not _valid(paste):
        return _error(start_response, "Invalid data.")
    paste_id = secrets.token_hex(8)
    target = _path(paste_id)
    if target.exists():
        return _error(start_response, "You are unlucky. Try again.")
    expire = EXPIRE[paste["meta"].get("expire", "1week")]
    now = int(time.time())
    paste["meta"] = {"created": now, **({"expire_date": now + expire} if expire else {})}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{paste_id}.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        out.write(PROTECTION + b"\n" + json.dumps(paste, separators=(",", ":")).encode())
    os.replace(tmp, target)
    delete_token = hmac.new(SALT, paste_id.encode(), hashlib.sha256).hexdigest()
    return _json(start_response, {"status": 0, "id": paste_id, "url": f"/?{paste_id}",
                                  "deletetoken": delete_token})


def read(paste_id: str, start_response) -> list[bytes]:
    target = _path(paste_id)
    try:
        stored = target.read_bytes()
    except OSError:
        return _error(start_response, "Paste does not exist, has expired or has been deleted.")
    paste = json.loads(stored.split(b"\n", 1)[1])
    expires = paste["meta"].get("expire_date")
    if expires and expires < time.time() or paste["adata"][3]:
        # Expired, or burnt after this reading: gone from the disk.
        target.unlink(missing_ok=True)
        if expires and expires < time.time():
            return _error(start_response, "Paste does not exist, has expired or has been deleted.")
    meta = paste["meta"]
    if expires:
        meta = {"created": meta["created"], "time_to_live": int(expires - time.time())}
    return _json(start_response, {
        **paste, "meta": meta, "id": paste_id, "url": f"/?{paste_id}", "comments": [],
        "comment_count": 0, "comment_offset": 0, "@context": "?jsonld=paste"})


def application(environ, start_response) -> list[bytes]:
    method = environ["REQUEST_METHOD"]
    ajax = environ.get("HTTP_X_REQUESTED_WITH") == "JSONHttpRequest"
    query = environ.get("QUERY_STRING", "")
    if method == "POST" and ajax:
        return create(environ, start_response)
    if method == "GET" and (not query or PASTE_ID.match(query)):
        if ajax and query:
            return read(query, start_response)
        body = PAGE.replace("@ID@", query).encode()
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8"),
                                  ("Content-Length", str(len(body))), *HEADERS])
        return [body]
    start_response("400 Bad Request", [("Content-Type", "text/plain")])
    return [b"bad request"]


if not settings.configured:
    # Only for the worker class ``hushpost serve`` runs (hushpost/server/worker.py), which reads
    # its request deadlines from Django's settings; the app itself uses no framework.
    settings.configure(REQUEST_TIMEOUT=envint("REQUEST_TIMEOUT", 10),
                       REQUEST_MIN_RATE=envint("REQUEST_MIN_RATE", 500))
