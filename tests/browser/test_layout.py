"""What the pages look like, measured in Chromium as a person would see them.

Lists give subjects the room there is; on a phone the menus stay on one line
and the organisation's name stays in sight; a blank line in a message is as
tall on its page as it was in the editor; a "No Print" original quoted on the
reply page does not print.  Messages are stored through the real actions so
the browser time goes to the pages under test.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from hushpost.accounts.models import User
from hushpost.messaging.actions import Addressees, SendOptions, send_message
from hushpost.messaging.models import Message
from tests import personas
from tests.browser.steps import (
    BOB,
    MOBILE,
    VIEWPORT,
    choose_options,
    editor_ready,
    shot,
    sign_in_sender,
)
from tests.personas import NEW_PASSWORD

pytestmark = pytest.mark.browser

SUBJECT = "Settlement documents for the Harbour Street lease"
LONG_SUBJECT = "Quarterly statement " + "with every figure you asked for and the notes on each of them " * 2


def _send(author, subject: str, **options) -> Message:
    return send_message(author=author, addressees=Addressees(to=[BOB]), subject=subject,
                        body_html="<p>Please read.</p>", options=SendOptions(**options),
                        send_token=f"layout-{abs(hash(subject))}-{len(options)}")


def _bob_signs_in(page: Page, site: str, org) -> None:
    bob = User.objects.get(email=BOB, org=org)
    bob.set_password(NEW_PASSWORD)
    bob.must_change_password = False
    bob.save()
    page.goto(f"{site}/r/{org.slug}/login")
    page.get_by_label("E-mail address").fill(BOB)
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()


def _fits(page: Page, selector: str) -> dict:
    """Whether the element shows its whole text and lies inside the viewport."""
    return page.locator(selector).first.evaluate("""el => {
        const box = el.getBoundingClientRect();
        return {whole: el.scrollWidth <= el.clientWidth, inside: box.left >= 0 && box.right <= innerWidth,
                visible: box.width > 0 && box.height > 0 && getComputedStyle(el).visibility !== "hidden"};
    }""")


def _no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the page scrolls sideways"


def _one_line(page: Page, nav: str) -> None:
    """Every item of the menu on the same line (their heights overlap), all of it on the screen."""
    boxes = page.locator(f"{nav} a").evaluate_all("links => links.map(a => a.getBoundingClientRect().toJSON())")
    assert max(b["top"] for b in boxes) < min(b["bottom"] for b in boxes), f"the menu wraps: {boxes}"
    assert max(b["right"] for b in boxes) <= MOBILE["width"], "the menu runs off the screen"


def test_lists_give_subjects_the_room_there_is_and_phones_a_tidy_menu(site, page, org, smtp, deliver):
    ada = personas.ada(org)
    _send(ada, LONG_SUBJECT)
    deliver()
    _send(ada, SUBJECT, read_receipt=True, restriction="no_print", expire_days=7)
    sign_in_sender(page, site, ada)
    page.goto(f"{site}/app/sent")
    row = page.locator(".message-row", has_text=SUBJECT)
    expect(row).to_be_visible()
    shot(page, "layout-sent-desktop")
    assert _fits(page, f".message-row:has-text('{SUBJECT}') .subject")["whole"], "the subject is cut off at 1280 px"
    expect(row.get_by_text("No print")).to_be_visible()
    # Each row says how its message is doing, as the message page does.
    expect(row.locator(".delivery-state")).to_have_text("Delivery: Pending")
    delivered = page.locator(".message-row", has_text="Quarterly statement").locator(".delivery-state")
    expect(delivered).to_have_text("Delivery: Notified")

    page.set_viewport_size(MOBILE)
    page.reload()
    shot(page, "24-sent-on-a-phone")
    _no_sideways_scroll(page)
    _one_line(page, "nav.sidenav")
    # A subject longer than a phone is wide ends in an ellipsis inside the screen.
    long_subject = page.locator(".message-row .subject").first
    assert long_subject.evaluate("el => getComputedStyle(el).textOverflow") == "ellipsis"
    assert _fits(page, ".message-row .subject")["inside"]
    for state in page.locator(".delivery-state").all():
        box = state.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"], "a delivery state is off the screen"
    name_shown = _fits(page, ".brand-org")
    assert name_shown["visible"] and name_shown["inside"] and name_shown["whole"], name_shown
    # Keyboard users reach every item of the compact menu.
    page.locator("nav.sidenav a").first.focus()
    for name in ("Inbox", "Sent", "Administration"):
        page.keyboard.press("Tab")
        expect(page.locator("nav.sidenav").get_by_role("link", name=name)).to_be_focused()
    page.set_viewport_size(VIEWPORT)


def test_the_recipient_on_a_phone_sees_the_organisation_and_no_print_quotes_stay_off_paper(site, page, org, alice):
    message = _send(alice, SUBJECT, restriction="no_print")
    page.set_viewport_size(MOBILE)
    _bob_signs_in(page, site, org)
    shot(page, "layout-recipient-inbox-phone")
    _no_sideways_scroll(page)
    name_shown = _fits(page, ".brand-org")
    assert name_shown["visible"] and name_shown["inside"] and name_shown["whole"], name_shown
    expect(page.locator(".brand-org")).to_have_text(org.name)
    expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
    _one_line(page, "nav.sidenav")

    page.set_viewport_size(VIEWPORT)
    page.goto(f"{site}/r/{org.slug}/m/{message.uid}/reply")
    page.locator(".quoted summary").click()
    quote = page.locator(".quoted blockquote")
    expect(quote).to_contain_text("Please read.")
    page.emulate_media(media="print")
    shot(page, "layout-reply-no-print-printed")
    expect(quote).to_be_hidden()
    expect(page.get_by_text(SUBJECT)).to_be_hidden()
    expect(page.get_by_text("the original message is not printed")).to_be_visible()
    page.emulate_media(media="screen")


BLANK_LINES = """() => {
    // Where each typed line's text is drawn, whatever elements hold it.
    const area = document.querySelector(%r);
    const walker = document.createTreeWalker(area, NodeFilter.SHOW_TEXT);
    const tops = {};
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const range = document.createRange();
        range.selectNodeContents(node);
        tops[node.textContent.trim()] = range.getBoundingClientRect().top;
    }
    return [tops["Line two"] - tops["Line one"], tops["Line four"] - tops["Line two"]];
}"""


def test_a_blank_line_is_as_tall_on_the_message_page_as_in_the_editor(site, page, org, alice):
    sign_in_sender(page, site, alice)
    page.goto(f"{site}/app/compose")
    editor_ready(page)
    page.get_by_label("To", exact=True).fill(BOB)
    page.get_by_label("Subject").fill("Spacing")
    page.get_by_role("textbox", name="Message").click()
    for key in ("Line one", "Enter", "Line two", "Enter", "Enter", "Line four"):
        page.keyboard.press(key) if key == "Enter" else page.keyboard.type(key)
    in_editor = page.evaluate(BLANK_LINES % "#body-editor")
    shot(page, "layout-blank-line-editor")
    choose_options(page)
    page.get_by_role("button", name="Send securely").click()
    expect(page.get_by_role("heading", name="Spacing")).to_be_visible()
    shot(page, "layout-blank-line-message")
    on_page = page.evaluate(BLANK_LINES % ".message-body")
    # A new line, then a blank line between two: the same distances on both pages, within a pixel or so.
    for typed, shown in zip(in_editor, on_page, strict=True):
        assert abs(shown - typed) <= 1.5, f"lines {in_editor} px apart in the editor, {on_page} px on the message page"
    # A blank line is a line: a new line and a blank one more differ by about one line's height.
    assert in_editor[1] - in_editor[0] >= 20


ADMIN_TABS = ("Senders", "Recipients", "Messages", "Audit trail", "Policy", "Retention", "Branding",
              "Single sign-on", "Provisioning")


def _tab_boxes(page: Page) -> list[dict]:
    return page.locator("nav.tabs a").evaluate_all("links => links.map(a => a.getBoundingClientRect().toJSON())")


def test_the_admin_tabs_are_one_row_at_1280_px_and_a_strip_that_scrolls_on_a_phone(site, page, org):
    sign_in_sender(page, site, personas.ada(org))
    page.goto(f"{site}/app/admin/branding")
    tabs = page.get_by_role("navigation", name="Administration")
    expect(tabs.get_by_role("link")).to_have_text(list(ADMIN_TABS))
    boxes = _tab_boxes(page)
    assert max(b["top"] for b in boxes) < min(b["bottom"] for b in boxes), f"the tabs wrap at 1280 px: {boxes}"
    # All of them in sight, none scrolled away.
    assert tabs.evaluate("nav => nav.scrollWidth <= nav.clientWidth"), "the tab row scrolls at 1280 px"
    nav_box = tabs.bounding_box()
    assert nav_box and max(b["right"] for b in boxes) <= nav_box["x"] + nav_box["width"]
    shot(page, "layout-admin-tabs-desktop")

    page.set_viewport_size(MOBILE)
    page.goto(f"{site}/app/admin/provisioning")
    shot(page, "layout-admin-tabs-phone")
    _no_sideways_scroll(page)
    boxes = _tab_boxes(page)
    assert max(b["top"] for b in boxes) < min(b["bottom"] for b in boxes), f"the tabs wrap on a phone: {boxes}"
    # The page's own tab is in sight though it is the last.
    row = tabs.bounding_box()
    assert row and row["x"] >= 0 and row["x"] + row["width"] <= MOBILE["width"], row

    def in_sight(box) -> bool:
        return bool(box) and box["x"] >= row["x"] - 0.5 and box["x"] + box["width"] <= row["x"] + row["width"] + 0.5

    assert in_sight(tabs.get_by_role("link", name="Provisioning").bounding_box())
    # The keyboard reaches every tab, and each one scrolls into sight with its focus outline.
    tabs.get_by_role("link", name=ADMIN_TABS[1]).focus()
    page.keyboard.press("Shift+Tab")
    for name in ADMIN_TABS:
        link = tabs.get_by_role("link", name=name)
        expect(link).to_be_focused()
        assert link.evaluate("a => getComputedStyle(a).outlineStyle") == "solid", f"no visible focus on {name}"
        assert in_sight(link.bounding_box()), f"{name} is out of sight"
        page.keyboard.press("Tab")
    page.set_viewport_size(VIEWPORT)
