"""An admin brands the organisation and sees the preview follow each choice; recipients then see the
colour, logo, footer and support contact on the portal, and the pages stay accessible in that colour."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from PIL import Image, ImageDraw, ImageFont
from playwright.sync_api import expect

from hushpost.lib import clock
from tests import personas
from tests.browser.steps import check, recipient_first_sign_in, send_message, shot, sign_in_sender
from tests.personas import PASSWORD

pytestmark = pytest.mark.browser

ACCENT, ACCENT_RGB = "#0b6e4f", "rgb(11, 110, 79)"
FOOTER = "Northwind Health NHS Trust · 1 Harbour Road, Leeds LS1 4AB\nThis message is confidential."


def logo_png() -> bytes:
    image = Image.new("RGBA", (400, 120), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((4, 10, 104, 110), radius=22, fill=(11, 110, 79, 255))
    draw.polygon([(30, 85), (54, 30), (78, 85)], fill=(255, 255, 255, 255))
    draw.text((124, 34), "Northwind", font=ImageFont.load_default(size=52), fill=(11, 80, 60, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_the_admin_brands_the_portal_and_recipients_see_it(site, page, bob_context, smtp, deliver, org, alice):
    found: dict[str, list[str]] = {}
    sign_in_sender(page, site, personas.ada(org))
    page.goto(f"{site}/app/admin/branding")
    preview = page.locator("#brand-preview")
    button = preview.get_by_text("Sign in", exact=True)
    expect(button).to_have_css("background-color", "rgb(29, 78, 216)")  # Hushpost's blue until one is chosen

    page.get_by_label("Accent colour").fill("#ffcc00")
    expect(page.locator("#accent-ratio")).to_contain_text("1.51:1")
    expect(page.locator("#accent-ratio")).to_contain_text("too light")
    page.get_by_label("Accent colour").fill(ACCENT)
    expect(page.locator("#accent-ratio")).to_have_text("Contrast with white: 6.25:1, at least 4.5:1 needed.")
    expect(button).to_have_css("background-color", ACCENT_RGB)
    page.get_by_label("Logo").set_input_files(files=[{"name": "northwind.png", "mimeType": "image/png",
                                                      "buffer": logo_png()}])
    logo = preview.get_by_role("img", name="Northwind Health")
    expect(logo).to_be_visible()
    assert logo.get_attribute("src").startswith("data:image/png;base64,")
    page.get_by_label("Footer text").fill(FOOTER)
    page.get_by_label("Support e-mail address").fill("help@northwind.example")
    page.get_by_label("Support phone number").fill("+44 113 496 0000")
    expect(preview.get_by_text("This message is confidential.")).to_be_visible()
    expect(preview.get_by_text("Support: help@northwind.example · +44 113 496 0000")).to_be_visible()
    check(page, "branding tab with its live preview", found)
    page.evaluate("window.scrollTo(0, 0)")
    shot(page, "37-admin-branding")
    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_text("The branding is saved")).to_be_visible()
    expect(page.get_by_label("Accent colour")).to_have_value(ACCENT)
    expect(preview.get_by_role("img", name="Northwind Health")).to_have_attribute(
        "src", f"/brand/{org.slug}/logo/{type(org).objects.get(pk=org.pk).logo_digest}")

    send_message(page, subject="Your appointment", text="Your appointment is confirmed.")
    deliver()
    anonymous = bob_context.browser.new_page()
    anonymous.goto(f"{site}/r/{org.slug}/login?email=bob%40client.example")
    banner = anonymous.get_by_role("banner")
    expect(banner.get_by_role("img", name="Northwind Health")).to_be_visible()
    expect(anonymous.get_by_role("button", name="Sign in", exact=True)).to_have_css("background-color", ACCENT_RGB)
    footer = anonymous.get_by_role("contentinfo")
    expect(footer).to_contain_text("This message is confidential.")
    expect(footer.get_by_role("link", name="help@northwind.example")).to_have_attribute(
        "href", "mailto:help@northwind.example")
    check(anonymous, "branded recipient sign-in", found)
    anonymous.set_viewport_size({"width": 1280, "height": 940})  # down to the footer
    shot(anonymous, "38-branded-recipient-sign-in")
    anonymous.close()

    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    expect(bob.get_by_role("heading", name="Your appointment")).to_be_visible()
    expect(bob.get_by_role("contentinfo")).to_contain_text("Support: help@northwind.example")
    check(bob, "branded recipient message", found)
    assert found == {}, "\n".join(f"{where}: {problem}" for where, items in found.items() for problem in items)


def test_without_script_preview_shows_the_choices_from_the_server(site, new_context, org):
    page = new_context(java_script_enabled=False).new_page()
    sign_in_sender(page, site, personas.ada(org))
    page.goto(f"{site}/app/admin/branding")
    page.get_by_label("Accent colour").fill(ACCENT)
    page.get_by_label("Logo").set_input_files(files=[{"name": "northwind.png", "mimeType": "image/png",
                                                      "buffer": logo_png()}])
    page.get_by_label("Footer text").fill(FOOTER)
    page.get_by_role("button", name="Preview").click()
    preview = page.locator("#brand-preview")
    expect(page.get_by_text("(not saved yet)")).to_be_visible()
    expect(preview.get_by_text("Sign in", exact=True)).to_have_css("background-color", ACCENT_RGB)
    expect(preview.get_by_role("img", name="Northwind Health")).to_be_visible()
    expect(preview.get_by_text("This message is confidential.")).to_be_visible()
    expect(page.locator("#accent-ratio")).to_have_text("Contrast with white: 6.25:1, at least 4.5:1 needed.")
    org.refresh_from_db()
    assert org.brand_accent == ""
    page.get_by_role("button", name="Save branding").click()  # the previewed logo goes with it, not chosen again
    expect(page.get_by_text("The branding is saved")).to_be_visible()
    org.refresh_from_db()
    assert org.brand_accent == ACCENT and org.logo_digest and org.brand_footer == FOOTER


def test_a_logo_chosen_when_confirmation_is_due_is_saved_once_the_admin_confirms(site, page, org, settings):
    found: dict[str, list[str]] = {}
    sign_in_sender(page, site, personas.ada(org))
    page.goto(f"{site}/app/admin/branding")
    clock.travel(timedelta(minutes=settings.REAUTH_MINUTES + 1))  # the sign-in is a while ago
    page.get_by_label("Accent colour").fill(ACCENT)
    page.get_by_label("Logo").set_input_files(files=[{"name": "northwind.png", "mimeType": "image/png",
                                                      "buffer": logo_png()}])
    page.get_by_role("button", name="Save branding").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    expect(page.get_by_text("The logo you chose is kept: it is saved with the rest once you confirm.")).to_be_visible()
    check(page, "confirm it's you, with the logo kept", found)
    page.get_by_label("Your password").fill(PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()
    expect(page.get_by_text("The branding is saved (accent colour, logo)")).to_be_visible()
    org.refresh_from_db()
    assert org.brand_accent == ACCENT and (org.logo_width, org.logo_height) == (400, 120)
    expect(page.locator("#brand-preview").get_by_role("img", name="Northwind Health")).to_have_attribute(
        "src", f"/brand/{org.slug}/logo/{org.logo_digest}")
    assert found == {}, "\n".join(f"{where}: {problem}" for where, items in found.items() for problem in items)
