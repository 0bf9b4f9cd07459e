"""The console in a real Chromium (Debian's, driven by Playwright) against real
gunicorn workers on a real Redis. Set CONSOLE_SCREENSHOTS=docs/console to keep
screenshots of the pages."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.conftest import (
    ADMIN,
    ADMIN_TOKEN,
    API_TOKEN,
    TOKENS_ENV,
    WEBHOOK,
    isolate_alert,
)
from tests.servers import Receiver, RedisServer, need_binary

pytestmark = pytest.mark.redis
HOSTILE = '<script>window.owned = 1</script><img src=x onerror="window.owned = 2">'
REFRESH_WAIT_MS = 15_000
FLEET = [
    (name, tier)
    for names, tier in (
        (("acme", "hooli", "stark"), "platinum"),
        (("globex", "initech", "umbrella", "wayne"), "gold"),
        (("cyberdyne", "soylent", "tyrell", "wonka", "oscorp"), "silver"),
        (tuple(f"shop-{i:02d}" for i in range(14)), "bronze"),
    )
    for name in names
]


@pytest.fixture(scope="module")
def receiver(redis_server: RedisServer) -> Iterator[Receiver]:
    """Two workers: a session signed by one is honoured by the other."""
    server = Receiver({**TOKENS_ENV, "REDIS_URL": redis_server.url}, workers=2).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = need_binary("chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def context(browser: Browser, real_redis: redis.Redis) -> Iterator[BrowserContext]:
    """A fresh browser profile on a flushed Redis."""
    made = browser.new_context(viewport={"width": 1100, "height": 760})
    yield made
    made.close()


def shot(page: Page, name: str) -> None:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"))


def post_webhook(receiver: Receiver, body: dict[str, Any]) -> None:
    reply = requests.post(
        f"{receiver.url}/webhook/alertmanager", json=body, headers=WEBHOOK, timeout=10
    )
    assert reply.status_code == 200, reply.text


def isolate(receiver: Receiver, tenant_id: str, summary: str = "error ratio 0.4") -> None:
    body = isolate_alert(tenant_id)
    body["alerts"][0]["annotations"] = {"summary": summary}
    post_webhook(receiver, body)


def sign_in(context: BrowserContext, receiver: Receiver, token: str) -> Page:
    page = context.new_page()
    page.goto(f"{receiver.url}/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Token").fill(token)
    page.get_by_label("Your name").fill("ana")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
    return page


def test_sign_in_and_watch_a_tile_turn_open(context: BrowserContext, receiver: Receiver) -> None:
    """Signed in, the fleet shows known tenants; a webhook's isolation reaches the tile
    by the page's own poll, without a reload."""
    for tenant_id, tier in FLEET:
        url = f"{receiver.url}/api/v1/tenants/{tenant_id}"
        requests.put(url, json={"tier": tier}, headers=ADMIN, timeout=5).raise_for_status()
    for tenant_id, action in (("hooli", "force_open"), ("umbrella", "disable")):
        url = f"{receiver.url}/api/v1/tenants/{tenant_id}/breaker"
        body = {"action": action, "reason": "maintenance"}
        requests.post(url, json=body, headers=ADMIN, timeout=5).raise_for_status()
    page = sign_in(context, receiver, ADMIN_TOKEN)
    tile = page.locator('a.tile[data-t="acme"]')
    expect(tile).to_have_class("tile s-closed")
    page.evaluate("window.stillTheSamePage = true")
    isolate(receiver, "acme")
    expect(tile).to_have_class("tile s-open", timeout=REFRESH_WAIT_MS)
    expect(tile).to_have_attribute("title", "acme: open: isolated")
    expect(page.locator('[data-sum="isolated"]')).to_have_text("2")
    expect(page.locator('a.tile[data-t="umbrella"]')).to_have_attribute(
        "title", "umbrella: disabled"
    )
    isolate(receiver, "newco")
    expect(page.locator('section[data-tier="bronze"] a.tile[data-t="newco"]')).to_have_class(
        "tile s-open", timeout=REFRESH_WAIT_MS
    )
    assert page.evaluate("window.stillTheSamePage") is True
    shot(page, "fleet")
    phone = context.new_page()
    phone.set_viewport_size({"width": 390, "height": 760})
    phone.goto(f"{receiver.url}/")
    expect(phone.locator('a.tile[data-t="acme"]')).to_have_class("tile s-open")
    shot(phone, "fleet-phone")


def test_acknowledge_and_resolve_from_the_incident_page(
    context: BrowserContext, receiver: Receiver
) -> None:
    """The incident page's buttons acknowledge, then resolve, the incident."""
    isolate(receiver, "acme")
    page = sign_in(context, receiver, ADMIN_TOKEN)
    page.get_by_role("link", name="Incidents").click()
    page.locator('a[href^="/console/incidents/INC-"]').first.click()
    expect(page.locator("#sla")).to_contain_text("due in")
    shot(page, "incident")
    page.get_by_role("button", name="Acknowledge").click()
    expect(page.locator("#status")).to_have_text("acknowledged")
    page.get_by_placeholder("why resolved").fill("pool drained")
    page.get_by_role("button", name="Resolve").click()
    expect(page.locator("#status")).to_have_text("resolved")
    expect(page.locator("#timeline")).to_contain_text("by ana, console: pool drained")


def test_force_close_with_a_reason_shows_on_the_timeline(
    context: BrowserContext, receiver: Receiver
) -> None:
    """A forced close with a reason is on the tenant's timeline and its state is closed."""
    isolate(receiver, "acme")
    page = sign_in(context, receiver, ADMIN_TOKEN)
    page.goto(f"{receiver.url}/console/tenants/acme")
    expect(page.locator("#state")).to_contain_text("open: isolated")
    page.get_by_label("Reason").fill("verified healthy by hand")
    page.get_by_role("button", name="force_close").click()
    expect(page.locator("#state")).to_contain_text("closed")
    first = page.locator("#timeline tbody tr").first
    expect(first).to_contain_text("verified healthy by hand (by ana, console)")
    expect(page.locator("#admission")).to_have_text("allow")
    shot(page, "tenant")


def test_read_only_sees_no_buttons_and_forged_posts_are_refused(
    browser: Browser, context: BrowserContext, receiver: Receiver
) -> None:
    """The API token's session has no action buttons and its POST gets 403; an admin
    session's POST without this session's CSRF token gets 403 too."""
    isolate(receiver, "acme")
    page = sign_in(context, receiver, API_TOKEN)
    page.goto(f"{receiver.url}/console/tenants/acme")
    expect(page.get_by_role("button", name="force_close")).to_have_count(0)
    page.get_by_role("link", name="Incidents").click()
    page.locator('a[href^="/console/incidents/INC-"]').first.click()
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    csrf = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    refused = context.request.post(
        f"{receiver.url}/console/tenants/acme/breaker",
        form={"csrf_token": csrf or "", "action": "force_close", "reason": "not mine"},
    )
    assert refused.status == 403
    admin = browser.new_context()
    try:
        sign_in(admin, receiver, ADMIN_TOKEN)
        for forged in ({}, {"csrf_token": "forged"}):
            reply = admin.request.post(
                f"{receiver.url}/console/tenants/acme/breaker",
                form={**forged, "action": "force_close", "reason": "forged"},
            )
            assert reply.status == 403
    finally:
        admin.close()
    state = requests.get(f"{receiver.url}/api/v1/tenants/acme", headers=ADMIN, timeout=5).json()
    assert state["breaker"]["state"] == "open"


def test_an_annotation_holding_a_script_renders_as_text(
    context: BrowserContext, receiver: Receiver
) -> None:
    """The alert's `<script>` and `onerror` are shown as text and never run."""
    isolate(receiver, "acme", HOSTILE)
    page = sign_in(context, receiver, API_TOKEN)
    page.goto(f"{receiver.url}/console/tenants/acme")
    expect(page.locator("article.alert dd").first).to_have_text(HOSTILE)
    assert page.evaluate("typeof window.owned") == "undefined"


def test_the_fleet_says_so_while_redis_is_down(browser: Browser) -> None:
    """With its Redis stopped the open fleet page shows a banner, and a reload gets the
    console's page with the banner, not a trace; both clear once Redis is back."""
    store = RedisServer().start()
    server = Receiver({**TOKENS_ENV, "REDIS_URL": store.url, "REDIS_TIMEOUT_S": "0.5"}, workers=1)
    server.start()
    context = browser.new_context()
    try:
        page = sign_in(context, server, API_TOKEN)
        store.stop()
        banner = page.locator("#banner")
        expect(banner).to_be_visible(timeout=REFRESH_WAIT_MS)
        expect(banner).to_contain_text("unavailable")
        page.reload()
        expect(banner).to_contain_text("The store (Redis) is unavailable")
        assert "Traceback" not in page.content()
        store.start()
        page.reload()
        expect(page.get_by_role("heading", name="Fleet")).to_be_visible()
        expect(banner).to_be_hidden()
    finally:
        context.close()
        server.stop()
        store.stop()
