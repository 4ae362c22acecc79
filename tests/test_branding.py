"""An organisation's branding: set by its admins only, checked as it is saved (a readable colour, a
logo that is a real PNG or JPEG written again without its metadata, plain text), and shown to its
recipients on the portal and in every e-mail, without a statement more on the portal's pages."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import connection
from django.http import Http404
from django.test import Client
from django.test.utils import CaptureQueriesContext
from PIL import Image

from hushpost.accounts.models import User
from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from hushpost.orgadmin.access import organisation_for_admin
from hushpost.orgadmin.branding import LOGO_KEPT
from hushpost.orgs.models import Organization
from tests import personas
from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT, run_worker, send, signed_in_as
from tests.personas import PASSWORD

ACCENT = "#0b6e4f"  # a green with 6.3:1 on white
FOOTER = "Northwind Health NHS Trust, 1 Harbour Road, Leeds.\nThis message is confidential."
SUPPORT_EMAIL, SUPPORT_PHONE = "help@northwind.example", "+44 113 496 0000"


def picture(kind: str = "PNG", size=(300, 100), exif: bool = False, mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (11, 110, 79) if mode == "RGB" else 1)
    out = io.BytesIO()
    if exif:
        tags = Image.Exif()
        tags[0x010F] = "SpyCam Make KQ7"  # Make
        tags[0x8825] = {1: "N", 2: (53.0, 48.0, 0.0)}  # GPS position
        image.save(out, kind, exif=tags)
    else:
        image.save(out, kind)
    return out.getvalue()


def upload(data: bytes, name: str = "logo.png", content_type: str = "image/png"):
    file = io.BytesIO(data)
    file.name, file.content_type = name, content_type
    return file


@pytest.fixture
def admin(org):
    return signed_in_as(Client(), personas.ada(org))


def save(client, **fields):
    data = {"accent": "", "footer": "", "support_email": "", "support_phone": "", "action": "save", **fields}
    return client.post("/app/admin/branding", data)


def error_of(response) -> str:
    return " ".join(re.findall(r'class="field-error">([^<]*)<', response.content.decode()))


def test_an_admin_brands_the_organisation_and_the_change_is_audited(admin, org):
    r = save(admin, accent=ACCENT, footer=FOOTER, support_email=SUPPORT_EMAIL, support_phone=SUPPORT_PHONE,
             logo=upload(picture()))
    assert r.status_code == 302, error_of(r)
    org.refresh_from_db()
    assert (org.brand_accent, org.brand_footer, org.support_email, org.support_phone) == (
        ACCENT, FOOTER, SUPPORT_EMAIL, SUPPORT_PHONE)
    assert (org.logo_width, org.logo_height) == (300, 100)
    assert ("The branding is saved (accent colour, footer text, logo, support e-mail, support phone)"
            in admin.get(r["Location"]).content.decode())
    event = AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, org=org).latest("at")
    assert event.detail == ("changed the branding: accent colour, footer text, logo, support e-mail, "
                            "support phone")
    assert "Nothing changed" in admin.get(save(admin, accent=ACCENT, footer=FOOTER, support_email=SUPPORT_EMAIL,
                                               support_phone=SUPPORT_PHONE)["Location"]).content.decode()


def test_the_logo_is_served_at_its_content_hash_with_its_type_for_a_year(admin, org, client):
    save(admin, logo=upload(picture()))
    org.refresh_from_db()
    r = client.get(org.logo_path)
    assert r.status_code == 200 and r["Content-Type"] == "image/png"
    assert r["X-Content-Type-Options"] == "nosniff"
    assert r["Cache-Control"] == "public, max-age=31536000, immutable"
    data = b"".join(r) if r.streaming else r.content
    assert org.logo_path.endswith(hashlib.sha256(data).hexdigest())
    assert client.get(org.logo_path.replace(org.logo_digest[:4], "0000")).status_code == 404
    assert client.get(f"/brand/harbour-legal/logo/{org.logo_digest}").status_code == 404
    assert "no-store" in client.get(f"/brand/{org.slug}/logo/nothing").headers["Cache-Control"]
    # Fetched by a signed-in person long after their last page, it still carries no session
    # cookie: a cache that keeps it for a year must not keep anyone's session with it.
    clock.travel(timedelta(minutes=5))
    r = admin.get(org.logo_path)
    assert r.status_code == 200 and r["Cache-Control"].startswith("public") and not r.cookies
    Organization.objects.filter(pk=org.pk).update(is_active=False)
    assert client.get(org.logo_path).status_code == 404  # as its portal is


def test_a_jpeg_is_kept_a_jpeg_and_loses_its_exif(admin, org, client):
    raw = picture("JPEG", exif=True)
    assert b"SpyCam" in raw
    assert save(admin, logo=upload(raw, "photo.jpg", "image/jpeg")).status_code == 302
    org.refresh_from_db()
    r = client.get(org.logo_path)
    assert r["Content-Type"] == "image/jpeg"
    assert b"SpyCam" not in r.content and b"Exif" not in r.content
    assert dict(Image.open(io.BytesIO(r.content)).getexif()) == {}


def test_a_cameras_multi_picture_jpeg_becomes_a_one_picture_jpeg(admin, org, client):
    out = io.BytesIO()
    Image.new("RGB", (300, 100), (11, 110, 79)).save(
        out, "MPO", save_all=True, append_images=[Image.new("RGB", (300, 100), (200, 0, 0))])
    assert Image.open(io.BytesIO(out.getvalue())).format == "MPO"
    assert save(admin, logo=upload(out.getvalue(), "photo.jpg", "image/jpeg")).status_code == 302
    org.refresh_from_db()
    served = Image.open(io.BytesIO(client.get(org.logo_path).content))
    assert served.format == "JPEG" and getattr(served, "n_frames", 1) == 1


def test_a_polyglot_loses_everything_but_its_pixels(admin, org, client):
    # A real PNG with a script after its end and an HTML text chunk: a browser sniffing it would run it.
    payload = b"<script>alert(document.domain)</script>"
    raw = picture() + b"<html>" + payload
    assert save(admin, logo=upload(raw)).status_code == 302
    org.refresh_from_db()
    served = client.get(org.logo_path).content
    assert payload not in served and b"<html>" not in served
    assert Image.open(io.BytesIO(served)).size == (300, 100)


def test_removing_the_logo_leaves_the_portal_with_the_name(admin, org, client):
    save(admin, logo=upload(picture()))
    org.refresh_from_db()
    path = org.logo_path
    assert save(admin, remove_logo="on").status_code == 302
    org.refresh_from_db()
    assert org.logo_digest == "" and 'class="brand-logo"' not in client.get(f"/r/{org.slug}/login").content.decode()
    assert client.get(path).status_code == 200  # e-mails already sent still show it
    event = AuditEvent.objects.filter(action=AuditEvent.Action.ADMIN, org=org).latest("at")
    assert event.detail == "changed the branding: logo removed"


def test_a_large_logo_is_scaled_down_to_600_by_200(admin, org):
    assert save(admin, logo=upload(picture(size=(3000, 600)))).status_code == 302
    org.refresh_from_db()
    assert (org.logo_width, org.logo_height) == (600, 120)


@pytest.mark.parametrize(("data", "name", "content_type", "says"), [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg", "image/svg+xml",
     "SVG logos are not accepted"),
    (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "logo.png", "image/png",
     "SVG logos are not accepted"),
    (b"GIF89a" + b"\x00" * 40, "logo.gif", "image/gif", "must be a PNG or JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"not really", "logo.png", "image/png", "must be a PNG or JPEG"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * (1024 * 1024 + 10), "logo.png", "image/png", "at most 1 MB"),
], ids=["svg", "svg-named-png", "gif", "broken-png", "over-1-MB"])
def test_anything_but_a_real_png_or_jpeg_is_refused_and_nothing_changes(admin, org, data, name, content_type,
                                                                          says):
    r = save(admin, logo=upload(data, name, content_type))
    assert r.status_code == 400 and says in error_of(r)
    org.refresh_from_db()
    assert org.logo_digest == "" and not org.logos.exists()


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow's own, at open
@pytest.mark.parametrize("side", [6000, 20000])  # 36 million pixels; 400 million, past Pillow's own limit
def test_a_decompression_bomb_is_refused_before_it_is_decoded(admin, org, side):
    bomb = picture(size=(side, side), mode="1")  # a few kilobytes
    assert len(bomb) < 200_000
    r = save(admin, logo=upload(bomb))
    assert r.status_code == 400 and "far too large" in error_of(r)
    org.refresh_from_db()
    assert org.logo_digest == ""


def test_a_colour_white_text_cannot_be_read_on_is_refused_with_its_ratio(admin, org):
    r = save(admin, accent="#ffcc00")
    assert r.status_code == 400
    assert "#ffcc00 against white has a contrast ratio of 1.51:1; WCAG AA needs at least 4.5:1" in error_of(r)
    assert "must have a contrast" in r.content.decode()
    assert save(admin, accent="blue").status_code == 400
    assert save(admin, accent="#767676").status_code == 302  # 4.54:1, just enough
    org.refresh_from_db()
    assert org.brand_accent == "#767676"


def test_the_footer_is_plain_text_and_limited(admin, org):
    r = save(admin, footer='<a href="https://evil.example">Click</a>')
    assert r.status_code == 400 and "plain text" in error_of(r)
    assert save(admin, footer="x" * 501).status_code == 400
    assert save(admin, support_phone="call <me>").status_code == 400
    assert save(admin, footer="Fees < 5 & costs > 2").status_code == 302


def test_the_accent_stylesheet_sets_the_colour_variables_and_nothing_else(client):
    r = client.get("/brand/accent/0b6e4f.css")
    assert r.status_code == 200 and r["Content-Type"] == "text/css; charset=utf-8"
    assert r.content == b".brand-accent{--brand:#0b6e4f;--brand-dark:#084d37}\n"
    assert r["Cache-Control"] == "public, max-age=31536000, immutable"
    for bad in ("0B6E4F", "0b6e4", "red;}", "0b6e4f0"):
        assert client.get(f"/brand/accent/{bad}.css").status_code == 404


def test_preview_shows_the_choices_without_saving_and_save_keeps_the_previewed_logo(admin, org):
    r = admin.post("/app/admin/branding", {"accent": ACCENT, "footer": FOOTER, "support_email": "",
                                           "support_phone": "", "action": "preview", "logo": upload(picture())})
    page = r.content.decode()
    assert r.status_code == 200 and "not saved yet" in page
    assert 'src="data:image/png;base64,' in page and 'href="/brand/accent/0b6e4f.css"' in page
    assert "This message is confidential." in page
    org.refresh_from_db()
    assert org.brand_accent == "" and org.logo_digest == ""
    pending = re.search(r'name="pending_logo" value="([^"]+)"', page).group(1)
    assert save(admin, accent=ACCENT, pending_logo=pending).status_code == 302
    org.refresh_from_db()
    assert org.brand_accent == ACCENT and org.logo_digest
    assert save(admin, pending_logo="bm90IGFuIGltYWdl").status_code == 400  # "not an image": checked again


def carried(page: str) -> dict:
    """The fields "confirm it's you" posts on."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def test_a_logo_chosen_when_confirmation_is_due_is_kept_through_it_and_saved(admin, org, settings):
    clock.travel(timedelta(minutes=settings.REAUTH_MINUTES + 1))
    r = save(admin, accent=ACCENT, logo=upload(picture(size=(320, 90))))
    page = r.content.decode()
    assert r.status_code == 200 and "Confirm it's you" in page and LOGO_KEPT in page
    org.refresh_from_db()
    assert org.logo_digest == "" and org.brand_accent == ""  # nothing saved before the answer
    # A wrong password first: the logo is still kept, and the page still says so.
    r = admin.post("/app/admin/branding", {**carried(page), "current": "not my password"})
    page = r.content.decode()
    assert r.status_code == 400 and LOGO_KEPT in page and carried(page)["pending_logo"]
    r = admin.post("/app/admin/branding", {**carried(page), "current": PASSWORD})
    assert r.status_code == 302, error_of(r)
    org.refresh_from_db()
    assert org.brand_accent == ACCENT and (org.logo_width, org.logo_height) == (320, 90)
    assert "The branding is saved (accent colour, logo)" in admin.get(r["Location"]).content.decode()


def test_a_file_that_is_no_logo_chosen_when_confirmation_is_due_is_named_on_the_confirmation(admin, org, settings):
    clock.travel(timedelta(minutes=settings.REAUTH_MINUTES + 1))
    r = save(admin, footer=FOOTER, logo=upload(b"<svg onload=alert(1)>", "logo.svg", "image/svg+xml"))
    page = r.content.decode()
    assert r.status_code == 200 and "The logo you chose cannot be used:" in page
    assert "Choose another one after you confirm." in page and "pending_logo" not in carried(page)
    r = admin.post("/app/admin/branding", {**carried(page), "current": PASSWORD})
    assert r.status_code == 302
    org.refresh_from_db()
    assert org.brand_footer == FOOTER and org.logo_digest == ""


@pytest.fixture
def outsiders(org, smtp):
    """Alice (a sender, not an admin), Bob (her recipient, signed in) and Hal (Harbour Legal's admin)."""
    alice = personas.sender(org)
    hal_client = signed_in_as(Client(), personas.hal(personas.harbour()))
    assert send(signed_in_as(Client(), alice), to=personas.BOB).status_code == 302
    run_worker()
    bob_client = Client()
    personas.first_login(bob_client, smtp, org, personas.BOB)
    return alice, bob_client, hal_client


def test_only_the_organisations_admin_reaches_its_branding(org, outsiders):
    alice, bob_client, hal_client = outsiders
    alice_client = signed_in_as(Client(), alice)
    assert alice_client.get("/app/admin/branding").status_code == 404
    assert save(alice_client, accent="#000000").status_code == 404
    for r in (bob_client.get("/app/admin/branding"), save(bob_client, accent="#000000"),
              Client().get("/app/admin/branding")):
        assert r.status_code == 302 and r["Location"].startswith("/login?")
    # Another organisation's admin changes that organisation, never Northwind.
    r = hal_client.get("/app/admin/branding")
    assert r.status_code == 200 and "Harbour Legal" in r.content.decode() and "Northwind" not in r.content.decode()
    assert save(hal_client, accent="#000000").status_code == 302
    org.refresh_from_db()
    assert org.brand_accent == ""
    assert Organization.objects.get(name="Harbour Legal").brand_accent == "#000000"


def test_the_gate_gives_the_branding_to_an_admin_of_the_organisation_only(org, outsiders):
    alice, _, _ = outsiders
    bob = User.objects.get(email=personas.BOB, org=org)
    for who in (alice, bob, AnonymousUser()):
        with pytest.raises(Http404):
            organisation_for_admin(who)
    assert organisation_for_admin(personas.ada(org)) == org


def test_the_recipient_portal_shows_the_branding_with_no_statement_more(admin, org, client):
    with CaptureQueriesContext(connection) as plain:
        client.get(f"/r/{org.slug}/login")
    save(admin, accent=ACCENT, footer=FOOTER, support_email=SUPPORT_EMAIL, support_phone=SUPPORT_PHONE,
         logo=upload(picture()))
    org.refresh_from_db()
    with CaptureQueriesContext(connection) as branded:
        page = client.get(f"/r/{org.slug}/login").content.decode()
    assert len(branded) == len(plain)
    assert '<html lang="en" class="brand-accent">' in page
    assert '<link rel="stylesheet" href="/brand/accent/0b6e4f.css">' in page
    assert f'<img class="brand-logo" src="{org.logo_path}" alt="Northwind Health" width="300" height="100">' in page
    assert "This message is confidential." in page
    assert f'<a href="mailto:{SUPPORT_EMAIL}">{SUPPORT_EMAIL}</a>' in page and 'href="tel:+441134960000"' in page


def test_every_email_carries_the_footer_the_support_contact_and_the_logo(admin, org, smtp, settings):
    settings.BASE_URL = "https://messaging.northwind.example"
    save(admin, accent=ACCENT, footer=FOOTER, support_email=SUPPORT_EMAIL, support_phone=SUPPORT_PHONE,
         logo=upload(picture()))
    org.refresh_from_db()
    alice = personas.sender(org)
    assert send(signed_in_as(Client(), alice), to=personas.BOB).status_code == 302
    run_worker()
    for mail in (smtp.wait_for(personas.BOB, PASSWORD_SUBJECT)[-1], smtp.wait_for(personas.BOB, MESSAGE_SUBJECT)[-1]):
        assert mail.text.replace("\r\n", "\n").rstrip().endswith(f"--\n{FOOTER}\nSupport: {SUPPORT_EMAIL} · {SUPPORT_PHONE}")
        assert (f'<img src="https://messaging.northwind.example{org.logo_path}" alt="Northwind Health" '
                f'width="300" height="100"') in mail.html
        assert "This message is confidential." in mail.html and f"mailto:{SUPPORT_EMAIL}" in mail.html
        assert f"color:{ACCENT}" in mail.html
