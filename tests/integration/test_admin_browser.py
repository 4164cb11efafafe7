"""The admin page in a real headless Chromium (tests/peers/browser.py), as an operator uses it: the nav
leads to every view, the views show the served config's rules and handlers, hostile names stay text,
the page's own script runs under its Content-Security-Policy, a broken edit shows up with its file and
field path, and a screenshot has something on it.

Skipped, saying why, only when Chromium cannot run here (tests/peers/install.sh installs it)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.browser import BrowserUnavailable, chromium, read_png

from mixerd.server.admin.views import VIEWS

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "admin"
HOSTILE_RULE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One Chromium for the module's tests (starting it is most of their time)."""
    try:
        with chromium() as driver:
            yield driver
    except BrowserUnavailable as e:
        pytest.skip(f"no browser: {e}")


@pytest.fixture
def served(start_mixer_server: Callable[..., Any], tmp_path: Path) -> tuple[Any, Path]:
    folder = tmp_path / "config"
    shutil.copytree(DATA, folder)
    return start_mixer_server(config=str(folder), config_poll_interval=0.05), folder


def _by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _go(driver: Any, slug: str) -> str:
    """Click the nav entry of view `slug`; the text of the page's main part once it is shown."""
    [link] = _by_css(driver, f'nav a[href="/{slug}"]')
    link.click()
    _wait(lambda: driver.current_url.endswith(f"/{slug}"), f"the {slug} view")
    [here] = _by_css(driver, "nav a.here")
    assert here.get_attribute("href").endswith(f"/{slug}")
    [main] = _by_css(driver, "main")
    return str(main.text)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.05)


def test_the_nav_leads_to_every_view_showing_the_served_config(
    browser: Any, served: tuple[Any, Path]
) -> None:
    server, _ = served
    browser.get(server.admin_url + "/")
    assert browser.title == "Config · mixerd admin"
    shown = {view.slug: _go(browser, view.slug) for view in reversed(VIEWS)}  # every nav entry, by clicking
    config = shown["config"]
    for name in (HOSTILE_RULE, "deny-blocked", "per-user", "edge", "shared", "limit-bookings"):
        assert name in config, name
    assert "No change rejected since this config was put in force." in config
    routes = shown["routes"]
    for name in (
        f"{HOSTILE_RULE}.rule.istio-system",
        'request.headers["x-user"] == "<script>alert(2)</script>"',
        "deny-blocked.handler.istio-system",
        "rate-limit-users.rule.istio-system",
        "limit-bookings.rule.bookinfo",
        "shared.handler.bookinfo",
    ):
        assert name in routes, name
    adapters = shown["adapters"]
    assert "per-user.handler.istio-system" in adapters and "memquota" in adapters
    assert "redis://:***@127.0.0.1:1/0" in shown["quotas"] and "not connected" in shown["quotas"]
    assert "per-ip" in shown["ratelimits"] and "remote_address" in shown["ratelimits"]
    assert "No Envoy has an access-log stream open." in shown["accesslog"]
    assert "Decision logs are off" in shown["decisions"] and "--decision-log stdout" in shown["decisions"]
    for text in shown.values():
        assert "hunter2" not in text
    # What users wrote stayed text: no element came of it, no script ran.
    assert _by_css(browser, "main img") == [] and _by_css(browser, "main script") == []
    assert browser.execute_script("return document.querySelectorAll('script').length") == 1


def test_the_page_s_own_script_runs_and_filters_a_long_table(browser: Any, served: tuple[Any, Path]) -> None:
    server, _ = served
    browser.get(server.admin_url + "/config")
    [box] = _by_css(browser, "input.filter")  # added by the script: the policy lets it run
    box.send_keys("ratelimitconfig")
    rows = [r for r in _by_css(browser, "table.filterable tbody tr") if r.is_displayed()]
    assert [r.text.split()[:2] for r in rows] == [["ratelimitconfig", "edge"]]
    # The YAML as written opens without any script: a <details>.
    [row] = rows
    [details] = row.find_elements("css selector", "details")
    details.click()
    assert "domain: edge" in details.text


def test_a_broken_edit_shows_with_its_file_and_path_and_a_screenshot_has_it(
    browser: Any, served: tuple[Any, Path], tmp_path: Path
) -> None:
    server, folder = served
    browser.get(server.admin_url + "/routes")
    good = (folder / "quota.yaml").read_text()
    (folder / "quota.yaml").write_text(
        good.replace("handler: per-user\n    instances", "handler: gone\n    instances")
    )

    def rejected() -> bool:
        with urllib.request.urlopen(server.admin_url + "/debug/config", timeout=10) as answer:
            return json.load(answer)["last_rejection"] is not None

    _wait(rejected, "rejection of the broken edit")
    main = _go(browser, "config")
    [section] = _by_css(browser, "#last-rejection")
    assert "Last change rejected with 1 problem" in section.text
    assert "quota.yaml" in section.text and ".spec.actions[0].handler" in section.text
    assert "handler 'gone' not found" in section.text
    assert _by_css(browser, "dl.facts dd")[0].text == "1"  # the generation: the previous config serves
    assert "quota.yaml" in main

    shot = tmp_path / "admin-config.png"
    assert browser.save_screenshot(str(shot))
    png = read_png(shot.read_bytes(), max_rows=320)  # the header, the nav, the summary, the rejection
    assert (png.width, png.height) == tuple(browser.execute_script("return [innerWidth, innerHeight]"))
    assert png.width >= 800 and png.height >= 600
    colours = {}
    for pixel in png.pixels():
        colours[pixel] = colours.get(pixel, 0) + 1
    background = max(colours.values()) / sum(colours.values())
    assert len(colours) > 50 and background < 0.9, (len(colours), background)  # text, colour, not blank
    reds = [p for p in colours if p[0] > 200 and p[1] < 120 and p[2] < 120]
    assert reds  # the rejection's red badge is on screen
