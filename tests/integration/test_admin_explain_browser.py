"""The Explain view in a real headless Chromium (tests/peers/browser.py), as an operator uses it: open the
view from the nav, paste a request into the form, submit it, and read which rule denied it; the
screenshot shows the verdict. The form is a plain POST: it works the same with JavaScript off.

Skipped, saying why, only when Chromium cannot run here (tests/peers/install.sh installs it)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from peers.browser import BrowserUnavailable, chromium, read_png

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parents[1] / "data" / "explain"
DENY_RULE = "deny-blocked-users.rule.istio-system"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        with chromium() as driver:
            yield driver
    except BrowserUnavailable as e:
        pytest.skip(f"no browser: {e}")


@pytest.fixture
def server(start_mixer_server: Callable[..., Any], tmp_path: Path) -> Any:
    folder = tmp_path / "config"
    shutil.copytree(DATA, folder)
    return start_mixer_server(config=str(folder))


def _by_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout}s"
        time.sleep(0.05)


def test_the_form_explains_which_rule_denied_a_request(browser: Any, server: Any, tmp_path: Path) -> None:
    browser.get(server.admin_url + "/")
    [link] = _by_css(browser, 'nav a[href="/explain"]')
    link.click()
    _wait(lambda: browser.current_url.endswith("/explain"), "the explain view")
    assert browser.title == "Explain · mixerd admin"

    [textarea] = _by_css(browser, "form.explain textarea[name=request]")
    textarea.send_keys('{"request.headers": {"x-user": "blocked"}, "source.ip": "10.0.0.1"}')
    [quotas] = _by_css(browser, "form.explain input[name=quotas]")
    quotas.send_keys('{"requestcount": 1}')
    [button] = _by_css(browser, "form.explain button[type=submit]")
    button.click()
    _wait(lambda: bool(_by_css(browser, "#explanation")), "the explanation")

    [result] = _by_css(browser, "#explanation")
    text = result.text
    assert "PERMISSION_DENIED" in text and "this user is blocked" in text
    rules = _by_css(browser, "table.explain-rules tbody tr")
    [denying] = [row for row in rules if DENY_RULE in row.text]
    assert "held" in denying.text and "deny-blocked.handler.istio-system" in denying.text
    assert "not asked: the check did not allow the request" in text
    # The form still holds the request, to edit and explain again.
    [textarea] = _by_css(browser, "form.explain textarea[name=request]")
    assert '"x-user": "blocked"' in textarea.get_attribute("value")

    shot = tmp_path / "admin-explain.png"
    assert browser.save_screenshot(str(shot))
    png = read_png(shot.read_bytes(), max_rows=900)
    assert (png.width, png.height) == tuple(browser.execute_script("return [innerWidth, innerHeight]"))
    colours: dict[Any, int] = {}
    for pixel in png.pixels():
        colours[pixel] = colours.get(pixel, 0) + 1
    background = max(colours.values()) / sum(colours.values())
    assert len(colours) > 50 and background < 0.9, (len(colours), background)  # text and colour, not blank
    browser.execute_script("document.getElementById('explanation').scrollIntoView()")
    assert browser.save_screenshot(str(shot))
    reds = {
        p
        for p in read_png(shot.read_bytes(), max_rows=900).pixels()
        if p[0] > 200 and p[1] < 120 and p[2] < 120
    }
    assert reds  # the verdict's red badge is on screen
