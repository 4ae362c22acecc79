"""The allow-list every message body passes through before it is stored.

Built on ``nh3`` (the Ammonia sanitiser).  Formatting survives: paragraphs,
bold, italic, underline, lists, quotes, code and links.  Scripts, styles,
forms, frames, images (remote images track readers) and event attributes do
not; links may only use http, https or mailto and always get
``rel="noopener noreferrer nofollow"``.
"""

from __future__ import annotations

import html
import re

import nh3

ALLOWED_TAGS = {
    "p", "br", "div", "span", "strong", "b", "em", "i", "u", "s", "strike",
    "ul", "ol", "li", "blockquote", "pre", "code", "a", "h2", "h3", "h4", "hr",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}}
URL_SCHEMES = {"http", "https", "mailto"}


def sanitize_html(value: str) -> str:
    """The body as stored: cleaned until cleaning changes nothing more. Removing a
    tag can leave markup that parses differently the next time (``<li><form><li>``
    becomes nested items, then two), and a body must read the same however often
    it passes through here (a reply quotes it, the gateway cleans it again).

    A body that cleaning leaves as it is (every stored body, shown again on each page
    that reads it) is that already: cleaned once, not twice."""
    cleaned = _clean(value)
    if cleaned == value:
        return cleaned
    for _ in range(3):
        again = _clean(cleaned)
        if again == cleaned:
            break
        cleaned = again
    return cleaned


def _clean(value: str) -> str:
    return nh3.clean(
        value,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
        clean_content_tags={"script", "style", "title", "textarea", "noscript", "iframe", "template"},
    ).strip()


_TAG = re.compile(r"<[^>]+>")
_BLOCK_END = re.compile(r"</(p|div|li|h[2-4]|blockquote|pre)>|<br\s*/?>", re.I)


def html_to_text(value: str) -> str:
    """Plain text of a sanitised body, for quoting in replies and emptiness checks."""
    text = _BLOCK_END.sub("\n", value)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def text_to_html(value: str) -> str:
    """A plain-text body (no-script fallback, e-mail gateway) as safe paragraphs."""
    paragraphs = re.split(r"\n\s*\n", value.strip())
    return "".join(
        "<p>" + html.escape(p).replace("\n", "<br>") + "</p>" for p in paragraphs if p.strip()
    )
