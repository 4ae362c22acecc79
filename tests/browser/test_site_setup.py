"""The site as configured: its own assets and the operators' admin work in a real browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_static_assets_are_served_as_configured(live_server, transactional_db, page):
    css = page.request.get(f"{live_server.url}/static/hushpost/hushpost.css")
    assert css.status == 200
    page.goto(f"{live_server.url}/login")
    sign_in = page.get_by_role("button", name="Next")
    expect(sign_in).to_have_css("background-color", "rgb(29, 78, 216)", timeout=2_000)


def test_operators_admin_sign_in_form_submits(site, page):
    page.goto(f"{site}/ops/login/")
    page.get_by_label("E-mail address").fill("ops@example.org")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("This page has expired")).to_have_count(0, timeout=2_000)
    expect(page.get_by_text("do not match an operator account")).to_be_visible(timeout=2_000)
