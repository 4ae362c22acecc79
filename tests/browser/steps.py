"""What a person does in the browser, as small reusable steps."""

from __future__ import annotations

import os
import re
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import APIResponse, Page, expect

from tests.helpers import MESSAGE_SUBJECT, PASSWORD_SUBJECT
from tests.personas import BOB, NEW_PASSWORD, PASSWORD

# Every run saves its screenshots under var/screenshots; `make screenshots`
# runs the browser tests with HUSHPOST_SCREENSHOT_DIR=docs/screenshots to
# refresh the ones the README shows (those whose names start with their number).
WORK_SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
SCREENSHOTS = Path(os.environ.get("HUSHPOST_SCREENSHOT_DIR") or WORK_SCREENSHOTS)
VIEWPORT = {"width": 1280, "height": 800}
MOBILE = {"width": 390, "height": 844}

RESTRICTIONS = {
    "none": re.compile(r"^No restriction"),
    "no_print_no_reply": re.compile(r"^Restricted - No Print, No Reply"),
    "no_print": re.compile(r"^Restricted - No Print(?!, No Reply)"),
}


def shot(page: Page, name: str) -> Path:
    """Save what the user sees now: as docs/screenshots/<name>.png for the README's numbered
    pictures, under var/screenshots for the others (pictures a test looks at)."""
    folder = SCREENSHOTS if name[:1].isdigit() else WORK_SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    return path


def sign_in_sender(page: Page, site: str, user, password: str = PASSWORD) -> None:
    """The two-step sign-in: the address and Next, then the password."""
    enter_password(page, site, user, password)
    expect(page).to_have_url(f"{site}/app/")


def enter_password(page: Page, site: str, user, password: str = PASSWORD) -> None:
    """The address and Next, then the password: the Inbox, or the second step where it is on."""
    page.goto(f"{site}/login")
    page.get_by_label("E-mail address").fill(user.email)
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


def write_message(page: Page, *, to: str, subject: str, text: str) -> None:
    """Compose: To, Subject and a plain paragraph typed into the editor."""
    mailboxes(page).get_by_role("link", name="Compose").click()
    expect(page.get_by_role("heading", name="New secure message")).to_be_visible()
    page.get_by_label("To", exact=True).fill(to)
    page.get_by_label("Subject").fill(subject)
    editor_ready(page)
    page.get_by_role("textbox", name="Message").click()
    page.keyboard.type(text)


def editor_ready(page: Page) -> None:
    """Wait until the rich-text editor has replaced the plain textarea."""
    expect(page.get_by_role("toolbar", name="Formatting")).to_be_visible()


def choose_options(page: Page, *, read_receipt=False, restriction="none", expire="Never") -> None:
    """Click Send and pick the send options in the dialog (not yet sent)."""
    page.get_by_role("button", name="Send", exact=True).click()
    dialog = page.get_by_role("dialog", name="Send options")
    expect(dialog).to_be_visible()
    dialog.get_by_role("checkbox", name="Request Read Receipt").set_checked(read_receipt)
    dialog.get_by_role("radio", name=RESTRICTIONS[restriction]).check()
    dialog.get_by_label("Expire Message in").select_option(label=expire)


def send_message(page: Page, *, to=BOB, subject="Test results", text="Your results are normal.",
                 **options) -> str:
    """Compose and send through the dialog; returns the sent message's uid."""
    write_message(page, to=to, subject=subject, text=text)
    choose_options(page, **options)
    page.get_by_role("button", name="Send securely").click()
    expect(page.get_by_text("Your secure message was sent to 1 recipient.")).to_be_visible()
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def recipient_first_sign_in(page: Page, smtp, *, address=BOB, new_password=NEW_PASSWORD,
                            screenshots: tuple[str, str] | None = None) -> None:
    """Follow the Secure Messaging Notification link, sign in with the
    temporary password and choose a password of one's own."""
    temporary = smtp.wait_for(address, PASSWORD_SUBJECT)[-1].temporary_password()
    link = smtp.wait_for(address, MESSAGE_SUBJECT)[-1].link()
    page.goto(link)
    expect(page.get_by_role("heading", name="Secure Messaging")).to_be_visible()
    expect(page.get_by_label("E-mail address")).to_have_value(address)
    expect(page.get_by_label("Password")).to_be_focused()
    page.get_by_label("Password").fill(temporary)
    if screenshots:
        shot(page, screenshots[0])
    page.get_by_role("button", name="Sign in", exact=True).click()

    expect(page.get_by_role("heading", name="Choose your password")).to_be_visible()
    page.get_by_label("New password").fill(new_password)
    page.get_by_label("Type it again").fill(new_password)
    if screenshots:
        shot(page, screenshots[1])
    page.get_by_role("button", name="Save password and continue").click()
    expect(page.get_by_text("Your password is set.")).to_be_visible()


def open_message(page: Page, site: str, org, uid: str, subject: str) -> None:
    """Open a received message, from wherever the sign-in left the recipient."""
    if not page.url.endswith(f"/m/{uid}"):
        page.goto(f"{site}/r/{org.slug}/")
        page.get_by_role("link", name=re.compile(re.escape(subject))).click()
    expect(page).to_have_url(f"{site}/r/{org.slug}/m/{uid}")
    expect(page.get_by_role("heading", name=subject, level=1)).to_be_visible()


def mailboxes(page: Page):
    """The side navigation: Compose, Inbox, Sent."""
    return page.get_by_role("navigation", name="Mailboxes")


def csrf_token(page: Page) -> str:
    """The CSRF token of a form on the page (the cookie is HttpOnly)."""
    return page.locator("input[name=csrfmiddlewaretoken]").first.input_value()


def forge_reply(page: Page, site: str, org, uid: str, body: str = "forged") -> APIResponse:
    """POST a reply the page does not offer, with the signed-in browser's cookies."""
    token = csrf_token(page)
    return page.request.post(
        f"{site}/r/{org.slug}/m/{uid}/reply",
        form={"csrfmiddlewaretoken": token, "body": body, "send_token": "forged-" + "x" * 20},
        headers={"X-CSRFToken": token},
        max_redirects=0,
    )


AXE = Axe()
SERIOUS = {"moderate", "serious", "critical"}


def check(page: Page, where: str, found: dict[str, list[str]]) -> None:
    """axe-core's moderate, serious and critical findings on the page as it is now, added to
    ``found`` under ``where`` (the rule and the first elements it names)."""
    results = AXE.run(page).response
    for violation in results["violations"]:
        if violation["impact"] in SERIOUS:
            targets = [", ".join(node["target"]) for node in violation["nodes"]][:3]
            found.setdefault(where, []).append(f"{violation['id']}: {violation['help']} at {targets}")
