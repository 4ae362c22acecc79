"""An organisation's branding: accent colour, logo, footer text and support contact.

Shown on the organisation's recipient portal and in every e-mail it sends, so recipients (and
spam filters) see who writes to them. Each rule lives here and the admin area's form only shows
its words: an accent colour must keep white text readable (WCAG AA, 4.5:1), a logo is a PNG or
JPEG that Pillow decodes and writes again from its pixels alone (no metadata, no SVG: see
docs/security/threat-model.md), and the footer is plain text.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from hushpost.audit.actions import record
from hushpost.audit.models import AuditEvent
from hushpost.lib.refusals import Refused
from hushpost.orgs.models import Organization, OrgLogo

ACCENT = re.compile(r"#[0-9a-fA-F]{6}")
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal text
MAX_LOGO_BYTES = 1024 * 1024
MAX_LOGO_SIZE = (600, 200)  # the largest logo kept, in pixels, after scaling down
MAX_SOURCE_PIXELS = 25_000_000  # larger pictures are refused before a pixel is decoded (decompression bombs)
MAX_FOOTER = 500
HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z!?]")
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg"}


def _luminance(colour: str) -> float:
    def channel(hex_pair: str) -> float:
        c = int(hex_pair, 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i:i + 2]) for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(colour: str, other: str = "#ffffff") -> float:
    """WCAG 2's contrast ratio of two #RRGGBB colours, from 1 to 21."""
    lighter, darker_one = sorted((_luminance(colour), _luminance(other)), reverse=True)
    return (lighter + 0.05) / (darker_one + 0.05)


def check_accent(value: str) -> str:
    """The accent colour as stored (lower case), or Refused saying why; empty keeps Hushpost's own."""
    value = value.strip()
    if not value:
        return ""
    if not ACCENT.fullmatch(value):
        raise Refused("Write the colour as # and six hexadecimal digits, for example #1d4ed8.")
    ratio = contrast_ratio(value)
    if ratio < MIN_CONTRAST:
        # Rounded down, so a colour shown as 4.5:1 is never refused.
        raise Refused(f"{value} against white has a contrast ratio of {int(ratio * 100) / 100:.2f}:1; "
                      f"WCAG AA needs at least {MIN_CONTRAST}:1 for text, so choose a darker colour.")
    return value.lower()


def darker(colour: str, by: float = 0.3) -> str:
    """The colour mixed with black: text in it stays readable on the pale tints the pages use."""
    r, g, b = (round(int(colour[i:i + 2], 16) * (1 - by)) for i in (1, 3, 5))
    return f"#{r:02x}{g:02x}{b:02x}"


def accent_css(colour: str) -> str:
    """The stylesheet behind ``Organization.accent_css_path``: the pages' colour variables, nothing else."""
    return f".brand-accent{{--brand:{colour};--brand-dark:{darker(colour)}}}\n"


def check_footer(value: str) -> str:
    value = value.strip().replace("\r\n", "\n")
    if len(value) > MAX_FOOTER:
        raise Refused(f"The footer text is too long: use at most {MAX_FOOTER} characters.")
    if HTML_TAG.search(value):
        raise Refused("The footer text is plain text: remove the HTML tags (such as <p> or <a>).")
    return value


@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    width: int
    height: int

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def reencode_logo(raw: bytes) -> Logo:
    """A PNG or JPEG written again from its pixels alone, at most ``MAX_LOGO_SIZE``; Refused otherwise.

    Nothing of the upload but its pixels survives: no EXIF (a phone's location), no colour profile,
    text chunk or trailing bytes, so a logo cannot carry a script or a polyglot to the recipients."""
    if len(raw) > MAX_LOGO_BYTES:
        raise Refused(f"The logo is too large: upload a file of at most {MAX_LOGO_BYTES // (1024 * 1024)} MB.")
    head = raw[:512].lstrip().lower()
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) or b"<svg" in head:
        raise Refused("SVG logos are not accepted (an SVG file can carry scripts): upload a PNG or JPEG.")
    too_large = Refused("The logo's picture is far too large (in pixels) to be a logo: "
                        f"upload one of at most {MAX_LOGO_SIZE[0]} × {MAX_LOGO_SIZE[1]} pixels.")
    try:
        # Pillow itself refuses twice its MAX_IMAGE_PIXELS at open (DecompressionBombError); the
        # header's size is checked against a far lower limit here, before any pixel is decoded.
        with Image.open(io.BytesIO(raw), formats=list(FORMATS)) as probe:
            if probe.width * probe.height > MAX_SOURCE_PIXELS:
                raise too_large
            probe.verify()  # checksums and structure, before any decoding
        with Image.open(io.BytesIO(raw), formats=list(FORMATS)) as image:
            # A camera's multi-picture JPEG (MPO) opens as one: its first picture is the photo.
            kind = "JPEG" if image.format == "MPO" else image.format
            if kind not in FORMATS:
                raise Refused("The logo must be a PNG or JPEG image; this file is not one Hushpost can read.")
            image = ImageOps.exif_transpose(image)  # as the camera meant it, before the EXIF goes
            image.load()
    except Refused:
        raise
    except Image.DecompressionBombError as e:
        raise too_large from e
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise Refused("The logo must be a PNG or JPEG image; this file is not one Hushpost can read.") from e
    mode = "RGBA" if kind == "PNG" and ("A" in image.getbands() or "transparency" in image.info) else "RGB"
    image = image.convert(mode)
    image.thumbnail(MAX_LOGO_SIZE, Image.Resampling.LANCZOS)
    clean = Image.frombytes(mode, image.size, image.tobytes())  # pixels only: no info, no profile
    out = io.BytesIO()
    if kind == "PNG":
        clean.save(out, "PNG", optimize=True)
    else:
        clean.save(out, "JPEG", quality=90, optimize=True)
    return Logo(out.getvalue(), FORMATS[kind], clean.width, clean.height)


def save_branding(org: Organization, *, accent: str, footer: str, support_email: str, support_phone: str,
                  logo: Logo | None = None, remove_logo: bool = False, by) -> list[str]:
    """Apply the branding the admin ``by`` chose; returns what changed (recorded in the audit trail)."""
    values = {"brand_accent": check_accent(accent), "brand_footer": check_footer(footer),
              "support_email": support_email.strip().lower(), "support_phone": " ".join(support_phone.split())}
    labels = {"brand_accent": "accent colour", "brand_footer": "footer text", "support_email": "support e-mail",
              "support_phone": "support phone", "logo_digest": "logo"}
    with transaction.atomic():
        if logo is not None:
            OrgLogo.objects.get_or_create(org=org, digest=logo.digest,
                                          defaults={"content_type": logo.content_type, "data": logo.data})
            values.update(logo_digest=logo.digest, logo_width=logo.width, logo_height=logo.height)
        elif remove_logo:
            values.update(logo_digest="", logo_width=None, logo_height=None)
        changed = [field for field, value in values.items() if getattr(org, field) != value]
        if not changed:
            return []
        for field in changed:
            setattr(org, field, values[field])
        org.save(update_fields=changed)
        words = sorted({labels[f] for f in changed if f in labels} | ({"logo"} if "logo_width" in changed else set()))
        if "logo_digest" in changed and not org.logo_digest:
            words = [w if w != "logo" else "logo removed" for w in words]
        record(AuditEvent.Action.ADMIN, actor=by, obj=org, detail="changed the branding: " + ", ".join(words))
    return words


def logo_for(org_slug: str, digest: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of one of the organisation's logos, current or replaced; None if there is none
    (or the organisation is disabled, as its portal is)."""
    found = (OrgLogo.objects.filter(org__slug=org_slug, org__is_active=True, digest=digest)
             .values_list("content_type", "data").first())
    return (found[0], bytes(found[1])) if found else None
