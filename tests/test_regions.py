"""Regions: two deployments as separate processes, each with its own database.

A sender of an `eu` organisation who starts at the `us` login ends on the `eu`
login with the address filled in; the `us` database never holds a row of the
`eu` organisation; discovery only ever leads to a base URL of the regions file;
with the `eu` deployment down, the `us` login still works.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from hushpost.lib.env import ConfigError
from hushpost.regions.config import load_regions
from tests.deployments import KEY, Browser
from tests.helpers import ROOT
from tests.personas import PASSWORD


def test_a_sender_starting_in_the_wrong_region_lands_on_their_own(deployments):
    us, eu = deployments
    browser = Browser()
    # The login page lets its form lead to the listed regions, and only to them.
    _, headers, _ = browser.get(us.url + "/login")
    [form_action] = [d for d in headers["Content-Security-Policy"].split(";") if "form-action" in d]
    assert form_action.split() == ["form-action", "'self'", eu.url]
    status, headers, _ = browser.post_form(us.url + "/login", {"email": "eva@europa.example"})
    assert status == 302
    assert headers["Location"] == eu.url + "/login?email=eva%40europa.example"
    status, _, page = browser.get(headers["Location"])
    assert status == 200 and 'value="eva@europa.example"' in page
    status, headers, _ = browser.post_form(headers["Location"], {"email": "eva@europa.example", "password": PASSWORD})
    assert status == 302 and headers["Location"] == "/app/"
    # Even with a password typed at the wrong region, it goes nowhere but the redirect.
    status, headers, _ = Browser().post_form(us.url + "/login", {"email": "eva@europa.example", "password": PASSWORD})
    assert status == 302 and headers["Location"].startswith(eu.url + "/login?")


def test_each_database_holds_only_its_own_organisation(deployments):
    us, eu = deployments
    assert us.rows("select name from orgs_domain") == [("liberty.example",)]
    assert eu.rows("select name from orgs_domain") == [("europa.example",)]
    assert not us.rows("select id from accounts_user where email like '%europa.example'")


def test_org_add_refuses_another_region(deployments):
    us, _ = deployments
    r = us.run("org", "add", "--name", "Elsewhere", "--domain", "elsewhere.example", "--region", "eu")
    assert r.returncode != 0 and "serves region 'us'" in r.stderr


def test_org_add_refuses_a_domain_another_region_hosts(deployments):
    us, eu = deployments
    r = us.run("org", "add", "--name", "Europa Copy", "--domain", "fresh.example", "--domain", "Europa.Example")
    assert r.returncode != 0
    assert f"Europa.Example is already an organisation's domain in region 'eu' ({eu.url})" in r.stderr
    assert us.rows("select name from orgs_domain") == [("liberty.example",)]


def test_an_unknown_domain_gets_the_same_answer_as_any_other(deployments):
    us, _ = deployments
    status_unknown, _, unknown = Browser().post_form(us.url + "/login", {"email": "who@nowhere.example"})
    status_local, _, local = Browser().post_form(us.url + "/login", {"email": "sam@liberty.example"})
    assert status_unknown == status_local == 200
    strip = lambda page: re.sub(r'value="[^"]*"', "", page)  # noqa: E731
    assert strip(unknown) == strip(local)


def test_discovery_ignores_unsigned_or_forged_answers(deployments):
    us, eu = deployments
    body = json.dumps({"domain": "europa.example", "from": "us", "ts": time.time()}).encode()
    for signature in ("", "0" * 64, "\u00e9" * 64):  # a character no signature has: refused, not a 500
        request = urllib.request.Request(eu.url + "/regions/v1/domain", data=body,
                                         headers={"X-Hushpost-Signature": signature})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 403
    # The login never takes a destination from the request: a next= elsewhere stays on site.
    status, headers, _ = Browser().post_form(
        us.url + "/login?next=https://evil.example/", {"email": "sam@liberty.example", "password": PASSWORD})
    assert status == 302 and headers["Location"] == "/app/"


def test_a_recipient_of_another_region_learns_where_to_sign_in(deployments):
    us, eu = deployments
    r = eu.run("shell", "-c", (
        "from hushpost.accounts.models import User; from hushpost.orgs.models import Organization; "
        "u = User(org=Organization.objects.get(), email='rita@client.example', role='recipient'); "
        "u.set_unusable_password(); u.save()"))
    assert r.returncode == 0, r.stderr
    status, _, page = Browser().post_form(us.url + "/find-my-portal", {"email": "rita@client.example"})
    assert status == 200 and "we have sent it a list" in page
    assert us.run("worker", "--batch").returncode == 0
    [(text,)] = us.rows("select text from notifications_devmail where subject = 'Your Secure Messaging portals'")
    assert re.search(re.escape("Europa Legal: " + eu.url + "/r/europa-legal/login") + r"\s", text)
    assert not eu.rows("select id from notifications_devmail")  # the asking region sends it


def test_an_address_gets_one_list_whichever_region_is_asked(deployments):
    us, eu = deployments
    for name in ("rosa", "ruth"):
        r = eu.run("shell", "-c", (
            "from hushpost.accounts.models import User; from hushpost.orgs.models import Organization; "
            f"u = User(org=Organization.objects.get(), email='{name}@client.example', role='recipient'); "
            "u.set_unusable_password(); u.save()"))
        assert r.returncode == 0, r.stderr

    def ask(deployment, name):
        status, _, page = Browser().post_form(deployment.url + "/find-my-portal", {"email": f"{name}@client.example"})
        assert status == 200 and "we have sent it a list" in page

    def lists(deployment, name):
        sent = deployment.rows("select \"to\" from notifications_devmail where subject = 'Your Secure Messaging portals'")
        return sum(f"{name}@client.example" in to for (to,) in sent)

    for deployment in (us, eu, us, eu):
        ask(deployment, "rosa")
        assert deployment.run("worker", "--batch").returncode == 0
    assert (lists(us, "rosa"), lists(eu, "rosa")) == (1, 0)  # eu was asked by us: its own page sent no more
    # Both pages asked before either worker ran: the region asked first sends, the other holds back.
    ask(eu, "ruth")
    ask(us, "ruth")
    assert us.run("worker", "--batch").returncode == 0
    assert eu.run("worker", "--batch").returncode == 0
    assert (lists(us, "ruth"), lists(eu, "ruth")) == (0, 1)


def test_with_one_region_down_the_other_still_signs_in(deployments):
    us, eu = deployments
    eu.stop()
    try:
        started = time.monotonic()
        status, _, page = Browser().post_form(us.url + "/login", {"email": "new@europa-two.example"})
        assert status == 200 and time.monotonic() - started < 5
        status, headers, _ = Browser().post_form(us.url + "/login", {"email": "sam@liberty.example", "password": PASSWORD})
        assert status == 302 and headers["Location"] == "/app/"
        # An operator cannot add a domain that the silent region might host, unless told to.
        r = us.run("org", "add", "--name", "Harbour", "--domain", "harbour.example")
        assert r.returncode != 0 and "region 'eu' did not answer" in r.stderr
        r = us.run("org", "add", "--name", "Harbour", "--domain", "harbour.example", "--skip-region-check")
        assert r.returncode == 0, r.stderr
    finally:
        eu.start()


@pytest.mark.parametrize(("text", "message"), [
    ("[regions.us]\nbase_url = 'https://us.example'\n", "HUSHPOST_REGION 'eu' is not in"),
    ("[regions.eu]\nbase_url = 'javascript:alert(1)'\n", "needs a base_url"),
    ("[regions.eu]\nbase_url = 'https://eu.example/path'\n", "needs a base_url"),
    ("[regions.eu]\nbase_url = 'http://localhost:1@eu.example'\n", "needs a base_url"),
    ("[regions.eu]\nbase_url = 'https://eu.example'\n[regions.us]\nbase_url = 'https://us.example'\n",
     "[trust] key must be 32 or more random bytes"),
    ("not toml [", "HUSHPOST_REGIONS_FILE"),
])
def test_a_bad_regions_file_is_refused_with_a_reason(tmp_path, text, message):
    path = tmp_path / "regions.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_regions(str(path), "eu", "https://eu.example")


def test_the_example_regions_file_needs_its_own_key(tmp_path):
    example = (ROOT / "deploy" / "regions.example.toml").read_text()
    with pytest.raises(ConfigError, match="key must be 32 or more random bytes"):
        load_regions(str(ROOT / "deploy" / "regions.example.toml"), "eu", "")
    path = tmp_path / "regions.toml"
    path.write_text(example.replace('key = ""', f'key = "{KEY}"'))
    regions = load_regions(str(path), "eu", "")
    assert [r.code for r in regions.others] == ["uk", "us"]


def test_signed_messages_are_bound_to_purpose_addressee_and_time(settings):
    from hushpost.regions.config import Region, Regions
    from hushpost.regions.discovery import sign, signed, verify

    regions = {c: Region(c, c, f"https://{c}.example") for c in ("us", "eu", "uk")}
    settings.REGIONS = Regions(here="eu", key=KEY.encode(), regions=regions)
    body = signed("domain", "eu", domain="europa.example")
    assert verify(body, sign(body), purpose="domain")["domain"] == "europa.example"
    assert verify(body, sign(body), purpose="portals") is None  # another endpoint
    assert verify(body, sign(body), purpose="domain-answer") is None  # not an answer
    for_uk = signed("domain", "uk", domain="europa.example")
    assert verify(for_uk, sign(for_uk), purpose="domain") is None  # replayed to another region
    for ts in ("nan", "inf", "soon", None):
        forged = json.dumps({"purpose": "domain", "from": "us", "to": "eu", "ts": ts, "domain": "x"}).encode()
        assert verify(forged, sign(forged), purpose="domain") is None
    stranger = json.dumps({"purpose": "domain", "from": "zz", "to": "eu", "ts": time.time()}).encode()
    assert verify(stranger, sign(stranger), purpose="domain") is None
