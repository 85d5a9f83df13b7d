"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real
`shipyard server` on 127.0.0.1.

One Chromium per test module; each test gets a fresh browser context (its own
cookies) and a server on its own state directory. ``make test`` installs the `chromium` package
when it is missing and it runs as root; Playwright's own browser download is never used.
Screenshots go to ``$SHIPYARD_SCREENSHOTS`` when it is set (``make screenshots`` sets it to
docs/screenshots), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from servers import ShipyardServer
from shipyard.domain import TokenRole
from shipyard.services import Services
from shipyard.store import acting_as
from shipyard.wiring import open_adapters

CHROMIUM = "/usr/bin/chromium"
# Without these, Chromium reaches for Google's hosts at start, which this network refuses.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
WIDE = {"width": 1440, "height": 900}


# Module scope, not session: Playwright's sync API runs an event loop in this thread while it
# is open, and a later test's asyncio.run() in the same process would find it running.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium package when it "
            "runs as root; otherwise `sudo apt-get install -y chromium`."
        )
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    one = chromium.new_context(viewport=WIDE)
    one.set_default_timeout(15_000)
    yield one
    one.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@dataclass
class Dashboard:
    """A `shipyard server` subprocess, and one token per role (``tokens[role]``)."""

    state: Path
    url: str
    tokens: dict[TokenRole, str]
    server: ShipyardServer

    def services(self) -> Services:
        """The state's services, opened here (close ``.adapters.store`` when done)."""
        return Services(open_adapters(self.state))

    def sign_in(self, page: Page, role: TokenRole, path: str = "/projects") -> None:
        page.goto(f"{self.url}{path}")
        page.get_by_label("API token").fill(self.tokens[role])
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{self.url}{path}")

    def stop(self) -> None:
        self.server.stop()


def start_dashboard(state: Path, prepare: Callable[[Services], None] | None = None) -> Dashboard:
    services = Services(open_adapters(state))
    try:
        with acting_as("root"):
            tokens = {role: services.tokens.create(f"{role}", role)[1] for role in TokenRole}
        if prepare is not None:
            prepare(services)
    finally:
        services.adapters.store.close()
    server = ShipyardServer(state)
    server.start()
    server.wait_ready()
    return Dashboard(state, server.url, tokens, server)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[Dashboard]:
    one = start_dashboard(tmp_path / "state")
    yield one
    one.stop()


@pytest.fixture
def shoot(tmp_path: Path) -> Callable[[Page, str], Path]:
    """``shoot(page, "run")`` saves a full-page PNG and returns its path."""
    folder = Path(os.environ.get("SHIPYARD_SCREENSHOTS") or tmp_path / "screenshots")

    def take(page: Page, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def axe_script() -> str:
    return (Path(__file__).parent / "vendor" / "axe.min.js").read_text()


def serious_violations(page: Page) -> list[str]:
    """axe-core's violations of impact serious or critical on the page, one line each."""
    page.evaluate(
        axe_script()
    )  # through the DevTools protocol: the page's CSP allows no inline script
    found = page.evaluate("async () => (await axe.run(document)).violations")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


assert shutil.which("git"), "the browser tests make git repositories"
