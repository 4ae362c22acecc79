"""Organisation administration in the browser: what an admin does, and sees of nobody else."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from hushpost.accounts.models import User
from tests import personas
from tests.browser.steps import check, shot, sign_in_sender

pytestmark = pytest.mark.browser


def test_admin_manages_senders_and_policy(site, page, bob_context, org):
    ada = personas.ada(org)
    other = personas.harbour()
    hal = personas.hal(other)
    problems: dict[str, list[str]] = {}

    sign_in_sender(page, site, ada)
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    check(page, "admin senders", problems)
    page.get_by_label("E-mail address").fill("new@northwind.example")
    page.get_by_label("Name").fill("Nia Newcomer")
    page.get_by_label("First password").fill("Granite-violin-harbour-61")
    page.get_by_role("button", name="Add sender").click()
    expect(page.get_by_text("new@northwind.example can now sign in")).to_be_visible()
    row = page.locator("tr", has=page.get_by_text("new@northwind.example"))
    row.get_by_role("button", name="Disable").click()
    expect(row.get_by_text("Disabled")).to_be_visible()
    assert not User.objects.get(email="new@northwind.example").is_active
    shot(page, "15-admin-senders")

    page.get_by_role("link", name="Policy").click()
    check(page, "admin policy", problems)
    page.get_by_label("1 Day").uncheck()
    page.get_by_label("Default expiry").select_option(label="7 Days")
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("The organisation's settings are saved.")).to_be_visible()
    page.get_by_role("link", name="Compose").click()
    expire = page.locator("#id_expire_days")
    expect(expire.locator("option")).to_have_text(["Never", "7 Days", "30 Days"])
    page.get_by_role("link", name="Administration").click()
    page.get_by_role("link", name="Recipients").click()
    check(page, "admin recipients", problems)

    # The other organisation's admin sees only their own people.
    hal_page = bob_context.new_page()
    sign_in_sender(hal_page, site, hal)
    hal_page.goto(f"{site}/app/admin/")
    expect(hal_page.get_by_text("hal@harbour.example", exact=True)).to_be_visible()
    expect(hal_page.get_by_text("northwind.example")).to_have_count(0)
    nia = User.objects.get(email="new@northwind.example")
    token = hal_page.locator("input[name=csrfmiddlewaretoken]").first.input_value()
    response = hal_page.request.post(f"{site}/app/admin/senders/{nia.pk}/active",
                                     form={"active": "1", "csrfmiddlewaretoken": token})
    assert response.status == 404  # a valid request of Hal's, about someone not his
    response = hal_page.request.post(f"{site}/app/admin/senders/{nia.pk}/reset",
                                     form={"csrfmiddlewaretoken": token})
    assert response.status == 404
    assert not User.objects.get(pk=nia.pk).is_active
    assert problems == {}, problems
