"""An admin connects the identity provider: a provisioning token, made, copied once, revoked."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from hushpost.audit.models import AuditEvent
from hushpost.lib import clock
from tests import personas
from tests.browser.steps import MOBILE, VIEWPORT, check, shot, sign_in_sender

pytestmark = pytest.mark.browser


def users_answer(site: str, token: str) -> int:
    """What the identity provider's "Test connection" gets back: the HTTP status."""
    request = urllib.request.Request(f"{site}/scim/v2/Users?count=1", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            assert json.loads(response.read())["totalResults"] >= 1
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_admin_makes_a_provisioning_token_sees_it_once_and_revokes_it(site, page, org):
    ada = personas.ada(org)
    problems: dict[str, list[str]] = {}
    sign_in_sender(page, site, ada)
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Provisioning").click()
    expect(page.get_by_role("heading", name="Provisioning (SCIM 2.0)")).to_be_visible()
    expect(page.get_by_text("No token yet")).to_be_visible()
    expect(page.get_by_text(f"{site}/scim/v2")).to_be_visible()
    check(page, "provisioning", problems)

    clock.travel(timedelta(minutes=11))  # the sign-in is a while ago: making a token asks again
    page.get_by_label("Name").fill("Microsoft Entra ID")
    page.get_by_role("button", name="Make token").click()
    expect(page.get_by_role("heading", name="Confirm it's you")).to_be_visible()
    page.get_by_label("Your password").fill(personas.PASSWORD)
    page.get_by_role("button", name="Confirm and continue").click()

    expect(page.get_by_role("heading", name="Your new provisioning token")).to_be_visible()
    expect(page.get_by_text("shown this once only")).to_be_visible()
    token = page.get_by_label("Secret token (Microsoft Entra ID)").input_value()
    assert token.startswith("hpscim_") and len(token) > 40
    expect(page.get_by_label("Tenant URL")).to_have_value(f"{site}/scim/v2")
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator("[data-copy-status]")).not_to_be_empty()
    check(page, "provisioning token shown", problems)
    shot(page, "29-admin-provisioning-token")
    page.set_viewport_size(MOBILE)  # on a phone: the page does not scroll sideways, Copy stays in reach
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    box = page.get_by_role("button", name="Copy token").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= MOBILE["width"]
    page.set_viewport_size(VIEWPORT)
    assert users_answer(site, token) == 200

    page.goto(f"{site}/app/admin/provisioning")  # back again: the token itself is gone for good
    expect(page.get_by_role("heading", name="Your new provisioning token")).to_have_count(0)
    assert token not in page.content()
    row = page.locator("tr", has=page.get_by_text("Microsoft Entra ID"))
    expect(row.get_by_text(token[:13] + "…")).to_be_visible()
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("no longer works")).to_be_visible()
    expect(page.get_by_text("No token yet")).to_be_visible()
    assert users_answer(site, token) == 401
    assert AuditEvent.objects.filter(action=AuditEvent.Action.SCIM, actor=ada).count() == 2
    assert problems == {}
