"""Cross-site scripting, tried in a real browser: payloads in every field a person can type.

Subjects, bodies, replies, display names and filenames go in through the real
actions; then the sender's and the recipient's pages are opened in Chromium.
Each payload would set ``window.__pwned`` or open a dialog if it ever ran.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from hushpost.attachments.actions import receive
from hushpost.messaging.actions import Addressees, SendOptions, reply_as_recipient, send_message
from hushpost.messaging.models import Delivery, Message
from tests.browser.steps import recipient_first_sign_in, sign_in_sender

pytestmark = pytest.mark.browser

PAYLOADS = [
    "<script>window.__pwned=1</script>",
    '<img src=x onerror="window.__pwned=1">',
    '"><svg onload="window.__pwned=1">',
    "<iframe srcdoc=\"<script>parent.__pwned=1</script>\"></iframe>",
    '<a href="javascript:window.__pwned=1" id="jslink">click</a>',
    "<details open ontoggle=\"window.__pwned=1\">",
    "{{7*7}}<style>body{display:none}</style>",
]
HOSTILE = " ".join(PAYLOADS)


def untouched(page: Page, where: str, dialogs: list[str]) -> None:
    expect(page.locator("body")).to_be_visible()
    assert page.evaluate("() => window.__pwned") is None, f"a payload ran on {where}"
    assert not dialogs, f"a dialog opened on {where}: {dialogs}"
    links = page.locator("a[href^='javascript:']")
    assert links.count() == 0, f"a javascript: link survived on {where}"


def test_no_payload_runs_in_the_sender_or_the_recipient_browser(site, page, bob_context, smtp, deliver, org,
                                                                 alice):
    alice.name = "Alice " + PAYLOADS[1]
    alice.save()
    files = [receive(alice, PAYLOADS[2] + ".pdf", "text/html", [b"<script>window.__pwned=1</script>"]),
             receive(alice, PAYLOADS[1] + ".html", "text/html", [b"<img src=x onerror=alert(1)>"])]
    message = send_message(author=alice, addressees=Addressees(to=["bob@client.example"]),
                           subject=("Results " + PAYLOADS[0])[:200], body_html=f"<p>Dear Bob {HOSTILE}</p>",
                           options=SendOptions(), send_token="xss-corpus-send-token-1",
                           file_uids=[f.uid for f in files])
    deliver()
    bob = bob_context.new_page()
    dialogs: list[str] = []
    for p in (page, bob):
        p.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    recipient_first_sign_in(bob, smtp)
    base = f"{site}/r/{org.slug}"
    for path in ("/", f"/m/{message.uid}", f"/m/{message.uid}/print", f"/m/{message.uid}/reply"):
        bob.goto(base + path)
        untouched(bob, "recipient " + path, dialogs)
    expect(bob.locator("main")).to_contain_text("Dear Bob")
    # Opening the hostile file downloads it; it never renders as a page of the site.
    first = message.attachments.order_by("position").first()
    with bob.expect_download() as download:
        bob.goto(f"{base}/m/{message.uid}", wait_until="load")
        bob.locator(f"a[href$='/files/{first.uid}']").click()
    assert download.value.suggested_filename.endswith(".pdf")
    untouched(bob, "recipient after a download", dialogs)

    bob_user = Delivery.objects.get(message=message).recipient
    bob_user.name = PAYLOADS[3]
    bob_user.save()
    reply = reply_as_recipient(recipient=bob_user, delivery=Delivery.objects.get(message=message),
                               body_html=f"<p>Thanks {HOSTILE}</p>", reply_all=False,
                               send_token="xss-corpus-reply-token-1")
    sign_in_sender(page, site, alice)
    for path in ("/app/", "/app/sent", f"/app/m/{message.uid}", f"/app/m/{reply.uid}",
                 f"/app/compose?reply_to={reply.uid}"):
        page.goto(site + path)
        untouched(page, "sender " + path, dialogs)
    assert Message.objects.count() == 2
