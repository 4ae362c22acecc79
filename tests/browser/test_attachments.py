"""Attachments in a real browser: picked, dropped, uploaded with a progress bar,
sent, and downloaded byte for byte on the other side.

Alice (staff) attaches files in Compose; Bob (an outside recipient) follows the
e-mailed link in his own browser and downloads them, and attaches a file to his
reply. Uploads go to the live server (XHR, raw body), which encrypts them.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from hushpost.attachments.models import Attachment
from hushpost.messaging.models import Message
from tests.browser.steps import (
    BOB,
    choose_options,
    editor_ready,
    mailboxes,
    open_message,
    recipient_first_sign_in,
    send_message,
    shot,
    sign_in_sender,
    write_message,
)

pytestmark = pytest.mark.browser

MB = 1024 * 1024
REPLY_SUBJECT = "Secure Messaging Reply Notification"
WAIT_FOR_UPLOADS = "Wait until your files have finished uploading."


# --- small steps, local to attachments ------------------------------------------------

def write_file(tmp_path: Path, name: str, data: bytes) -> Path:
    """A file on the user's disk, to pick or drop."""
    folder = tmp_path / "on-disk"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    return path


def file_list(page: Page) -> Locator:
    """The list of attached files under the drop zone (labelled by "Attachments")."""
    return page.get_by_role("list", name=re.compile(r"^Attachments"))


def file_row(page: Page, name: str) -> Locator:
    return file_list(page).get_by_role("listitem").filter(has_text=name)


def drop_zone(page: Page) -> Locator:
    return page.locator(".attachments .dropzone")


def pick_files(page: Page, *paths: Path) -> None:
    """The "choose files" picker (the label is what the user clicks)."""
    page.get_by_label("choose files").set_input_files(list(paths))


def drop_files(page: Page, *paths: Path) -> None:
    """Drag files from the desktop and drop them on the drop zone: the page gets
    dragenter, dragover and drop with a DataTransfer holding the files."""
    files = [[p.name, base64.b64encode(p.read_bytes()).decode("ascii")] for p in paths]
    transfer = page.evaluate_handle(
        """(files) => {
            const dt = new DataTransfer();
            for (const [name, b64] of files) {
                const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
                dt.items.add(new File([bytes], name, {type: "application/octet-stream"}));
            }
            return dt;
        }""",
        files,
    )
    zone = drop_zone(page)
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    # While something is dragged over it, the drop zone lights up.
    expect(zone).to_have_class(re.compile(r"\bdragging\b"))
    zone.dispatch_event("drop", {"dataTransfer": transfer})
    expect(zone).not_to_have_class(re.compile(r"\bdragging\b"))
    transfer.dispose()


def expect_uploaded(page: Page, name: str, size: str) -> Locator:
    """The file's row: its name and size, no progress bar, and a Remove button."""
    row = file_row(page, name)
    expect(row).to_have_count(1)
    expect(row.locator(".file-name")).to_have_text(name)
    expect(row.locator(".file-size")).to_have_text(size)
    expect(row.get_by_role("progressbar")).to_have_count(0)
    expect(row.get_by_role("button", name=f"Remove {name}")).to_be_visible()
    expect(row.get_by_role("alert")).to_have_count(0)
    return row


def send_with_options(page: Page) -> str:
    """Send (through the send-options dialog); returns the sent message's uid."""
    choose_options(page)
    page.get_by_role("button", name="Send securely").click()
    expect(page.get_by_text("Your secure message was sent to 1 recipient.")).to_be_visible()
    return page.url.rstrip("/").rsplit("/", 1)[-1]


def attachments_section(page: Page, count: int) -> Locator:
    """The message page's "N attachment(s)" card."""
    title = f"{count} attachment{'s' if count != 1 else ''}"
    section = page.get_by_role("region", name=title)
    expect(section).to_be_visible()
    expect(section.get_by_role("heading", name=title)).to_be_visible()
    return section


def download(page: Page, link: Locator) -> tuple[str, bytes]:
    """Click a file's link; returns the name the browser would save it as, and its bytes."""
    with page.expect_download() as info:
        link.click()
    saved = info.value
    assert saved.failure() is None
    return saved.suggested_filename, Path(saved.path()).read_bytes()


def throttle_uploads(page: Page, bytes_per_second: int):
    """A slow uplink for this page (Chrome DevTools network emulation)."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second,
    })
    return cdp


def unthrottle(cdp) -> None:
    cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1,
    })
    cdp.detach()


# --- the tests ---------------------------------------------------------------------------

def test_picked_and_dropped_files_reach_the_recipient_byte_for_byte(
    site, page, bob_context, smtp, deliver, org, alice, tmp_path
):
    scan = write_file(tmp_path, "Scan 0412.bin", os.urandom(5 * MB))
    resume = write_file(tmp_path, "Résumé 2026.txt", "Curriculum vitae — Bob Ó Briain\n".encode())

    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="Your documents", text="Both files are attached.")
    attachments = page.locator(".attachments")
    expect(attachments.get_by_text("Up to 100 MB per file and 100 MB in all.")).to_be_visible()

    # One file with the picker, one dragged onto the drop zone.
    pick_files(page, scan)
    drop_files(page, resume)
    expect(file_list(page).get_by_role("listitem")).to_have_count(2)
    expect_uploaded(page, "Scan 0412.bin", "5.0 MB")
    expect_uploaded(page, "Résumé 2026.txt", f"{resume.stat().st_size} bytes")
    expect(file_list(page).locator(".file-name")).to_have_text(["Scan 0412.bin", "Résumé 2026.txt"])
    # The whole attachments area and Send in view.
    page.get_by_role("button", name="Send", exact=True).scroll_into_view_if_needed()
    shot(page, "17-compose-attachments")

    # The files went ahead; the form itself posts as a plain form, not a multipart body.
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/app/compose")) as posted:
        uid = send_with_options(page)
    assert posted.value.headers["content-type"] == "application/x-www-form-urlencoded"
    message = Message.objects.get(uid=uid)
    assert message.attachments.count() == 2
    # Alice's own copy lists them too.
    sent = attachments_section(page, 2)
    expect(sent.get_by_role("link")).to_have_text(["Scan 0412.bin", "Résumé 2026.txt"])

    # Bob follows the e-mailed link in his own browser.
    deliver()
    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    open_message(bob, site, org, uid, "Your documents")
    files = attachments_section(bob, 2)
    links = files.get_by_role("link")
    expect(links).to_have_text(["Scan 0412.bin", "Résumé 2026.txt"])
    expect(files.get_by_role("listitem").filter(has_text="Scan 0412.bin")).to_contain_text("5.0 MB")
    expect(files.get_by_role("listitem").filter(has_text="Résumé 2026.txt")).to_contain_text(
        f"{resume.stat().st_size} bytes"
    )
    shot(bob, "18-recipient-attachments")

    for original in (scan, resume):
        name, data = download(bob, files.get_by_role("link", name=original.name))
        assert name == original.name
        assert data == original.read_bytes()
    # Downloading leaves him on the message.
    expect(bob).to_have_url(f"{site}/r/{org.slug}/m/{uid}")


def test_a_progress_bar_shows_and_send_waits_for_the_upload(site, page, org, alice, tmp_path):
    report = write_file(tmp_path, "Annual report.pdf", b"%PDF-1.7 " + os.urandom(3 * MB))
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="The report", text="Attached, as promised.")

    cdp = throttle_uploads(page, 1 * MB)  # about three seconds for this file
    pick_files(page, report)
    row = file_row(page, "Annual report.pdf")
    bar = row.get_by_role("progressbar", name="Uploading Annual report.pdf")
    expect(bar).to_be_visible()
    expect(row).to_contain_text("3.0 MB")
    expect(bar).to_have_attribute("value", re.compile(r"^[1-9][0-9]?$"))  # it fills as the bytes go

    # Send while the file is still on its way: told to wait, no options dialog.
    # (force: the button may rightly be marked unavailable; a user can still click it.)
    page.get_by_role("button", name="Send", exact=True).click(force=True)
    note = page.get_by_role("alert").filter(has_text=WAIT_FOR_UPLOADS)
    expect(note).to_be_visible()
    expect(page.get_by_role("dialog", name="Send options")).to_be_hidden()
    expect(bar).to_be_visible()  # it was still uploading when Send was refused
    assert not Message.objects.exists()

    # Once it has arrived, the row shows the file and Send works.
    expect(bar).to_have_count(0)
    unthrottle(cdp)
    expect_uploaded(page, "Annual report.pdf", "3.0 MB")
    uid = send_with_options(page)
    message = Message.objects.get(uid=uid)
    assert message.attachments.count() == 1
    expect(attachments_section(page, 1).get_by_role("link")).to_have_text(["Annual report.pdf"])


def test_send_is_announced_as_unavailable_while_a_file_uploads(site, page, org, alice, tmp_path):
    report = write_file(tmp_path, "Annual report.pdf", b"%PDF-1.7 " + os.urandom(3 * MB))
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="The report", text="Attached, as promised.")
    send = page.get_by_role("button", name="Send", exact=True)
    expect(send).to_be_enabled()

    cdp = throttle_uploads(page, 1 * MB)
    pick_files(page, report)
    bar = page.get_by_role("progressbar", name="Uploading Annual report.pdf")
    expect(bar).to_be_visible()
    # A screen reader says "Send, unavailable" while the file is on its way ...
    expect(send).to_be_disabled()
    expect(send).to_have_attribute("aria-disabled", "true")
    # ... and Send is usable again once it has arrived.
    expect(bar).to_have_count(0)
    unthrottle(cdp)
    expect(send).to_be_enabled()


def test_the_request_to_wait_goes_once_the_upload_is_done(site, page, org, alice, tmp_path):
    report = write_file(tmp_path, "Annual report.pdf", b"%PDF-1.7 " + os.urandom(3 * MB))
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="The report", text="Attached, as promised.")

    cdp = throttle_uploads(page, 1 * MB)
    pick_files(page, report)
    bar = page.get_by_role("progressbar", name="Uploading Annual report.pdf")
    expect(bar).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click(force=True)
    note = page.get_by_text(WAIT_FOR_UPLOADS)
    expect(note).to_be_visible()

    expect(bar).to_have_count(0)
    unthrottle(cdp)
    expect_uploaded(page, "Annual report.pdf", "3.0 MB")
    # Nothing is uploading any more: the page must not go on saying to wait.
    expect(note).to_be_hidden()


def test_a_file_over_the_organisations_limit_is_refused_in_its_row(site, page, org, alice, tmp_path):
    org.max_file_mb = 1
    org.save()
    big = write_file(tmp_path, "Scan of passport.bin", os.urandom(MB + 1))
    small = write_file(tmp_path, "notes.txt", b"fits easily")
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="Passport", text="The scan is too large.")
    expect(page.get_by_text("Up to 1 MB per file and 100 MB in all.")).to_be_visible()

    pick_files(page, big, small)
    row = file_row(page, "Scan of passport.bin")
    expect(row.get_by_role("alert")).to_have_text(
        "Scan of passport.bin is larger than 1 MB, the largest file your organisation allows."
    )
    expect(row.get_by_role("progressbar")).to_have_count(0)
    expect_uploaded(page, "notes.txt", "11 bytes")  # the other file is not held up

    row.get_by_role("button", name="Remove Scan of passport.bin").click()
    expect(row).to_have_count(0)
    expect(file_list(page).get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_text("is larger than 1 MB")).to_have_count(0)
    # The refused file never left the browser.
    assert Attachment.objects.count() == 1

    uid = send_with_options(page)
    expect(attachments_section(page, 1).get_by_role("link")).to_have_text(["notes.txt"])
    assert Message.objects.get(uid=uid).attachments.count() == 1


def test_a_file_that_does_not_fit_on_a_full_disk_says_so_in_its_row(site, page, alice, tmp_path, full_disk):
    scan = write_file(tmp_path, "Scan of passport.pdf", os.urandom(MB // 2))
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="Passport", text="The scan follows.")
    pick_files(page, scan)
    alert = file_row(page, "Scan of passport.pdf").get_by_role("alert")
    expect(alert).to_contain_text("Hushpost has run out of storage space, so this file was not stored.")
    expect(alert).to_contain_text("This has been recorded for your organisation's administrator.")
    alert.scroll_into_view_if_needed()
    shot(page, "attachments-storage-full")
    assert Attachment.objects.count() == 0
    assert not [p for p in full_disk.rglob("*") if p.is_file()]


def test_a_recipient_attaches_a_file_to_a_reply(site, page, bob_context, smtp, deliver, org, alice, tmp_path):
    signed = write_file(tmp_path, "Signed consent form.pdf", b"%PDF-1.4 signed " + os.urandom(200 * 1024))
    sign_in_sender(page, site, alice)
    uid = send_message(page, subject="Consent form", text="Please sign and send it back.")
    deliver()

    bob = bob_context.new_page()
    recipient_first_sign_in(bob, smtp)
    open_message(bob, site, org, uid, "Consent form")
    bob.get_by_role("toolbar", name="Message actions").get_by_role("link", name="Reply", exact=True).click()
    expect(bob.get_by_role("heading", name="Reply", level=1)).to_be_visible()
    editor_ready(bob)
    bob.get_by_role("textbox", name="Your reply").click()
    bob.keyboard.type("Signed, attached.")
    expect(bob.get_by_text("Up to 100 MB per file and 100 MB in all.")).to_be_visible()
    pick_files(bob, signed)
    expect_uploaded(bob, "Signed consent form.pdf", "200.0 KB")
    bob.get_by_role("button", name="Send reply").click()
    expect(bob.get_by_text("Your reply was sent securely.")).to_be_visible()
    expect(bob).to_have_url(f"{site}/r/{org.slug}/m/{uid}")

    deliver()
    smtp.wait_for(alice.email, REPLY_SUBJECT)
    mailboxes(page).get_by_role("link", name="Inbox").click()
    page.get_by_role("link", name=re.compile("Re: Consent form")).click()
    expect(page.locator(".message-body")).to_have_text("Signed, attached.")
    files = attachments_section(page, 1)
    name, data = download(page, files.get_by_role("link", name="Signed consent form.pdf"))
    assert name == "Signed consent form.pdf"
    assert data == signed.read_bytes()


def test_a_removed_file_is_not_sent(site, page, org, alice, tmp_path):
    keep = write_file(tmp_path, "Invoice 2026-03.pdf", b"%PDF-1.7 invoice " + os.urandom(64 * 1024))
    wrong = write_file(tmp_path, "Someone else's invoice.pdf", b"%PDF-1.7 not for Bob " + os.urandom(64 * 1024))
    sign_in_sender(page, site, alice)
    write_message(page, to=BOB, subject="Your invoice", text="Here is your invoice.")

    pick_files(page, keep, wrong)
    expect_uploaded(page, "Invoice 2026-03.pdf", "64.0 KB")
    row = expect_uploaded(page, "Someone else's invoice.pdf", "64.0 KB")
    with page.expect_response(re.compile(r"/app/files/[^/]+/discard$")) as discarded:
        row.get_by_role("button", name="Remove Someone else's invoice.pdf").click()
    expect(row).to_have_count(0)
    assert discarded.value.status == 200
    expect(file_list(page).get_by_role("listitem")).to_have_count(1)

    uid = send_with_options(page)
    files = attachments_section(page, 1)
    expect(files.get_by_role("link")).to_have_text(["Invoice 2026-03.pdf"])
    expect(page.get_by_text("Someone else's invoice.pdf")).to_have_count(0)
    message = Message.objects.get(uid=uid)
    assert message.attachments.count() == 1
    name, data = download(page, files.get_by_role("link", name="Invoice 2026-03.pdf"))
    assert (name, data) == ("Invoice 2026-03.pdf", keep.read_bytes())
    # The removed upload was discarded, not left behind as a draft.
    assert not Attachment.objects.filter(message__isnull=True).exists()
