"""Signing in to the dashboard in Chromium, and the projects page on a phone and a wide screen."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from shipyard.domain import TokenRole

from .conftest import PHONE, Dashboard, serious_violations


def test_sign_in_with_a_token_then_out(page: Page, dashboard: Dashboard) -> None:
    page.goto(f"{dashboard.url}/projects")
    expect(page).to_have_url(f"{dashboard.url}/login?next=/projects")
    assert serious_violations(page) == []  # the sign-in page itself
    page.get_by_label("API token").fill("shy_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
    page.get_by_label("API token").fill(dashboard.tokens[TokenRole.VIEWER])
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Projects")).to_be_visible()
    expect(page.get_by_text(f"{TokenRole.VIEWER}", exact=False).first).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "shipyard_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read it
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{dashboard.url}/login")


def test_the_projects_page_fits_a_phone_and_passes_axe(
    chromium: Browser, dashboard: Dashboard, shoot: Callable[[Page, str], Path]
) -> None:
    phone = chromium.new_context(viewport=PHONE, is_mobile=True)
    try:
        page = phone.new_page()
        dashboard.sign_in(page, TokenRole.VIEWER)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"the page is {width}px wide on a {PHONE['width']}px phone"
        assert serious_violations(page) == []
        shoot(page, "projects-phone")
    finally:
        phone.close()
