"""The HTML report in a real browser: Debian's chromium, driven by Selenium through chromedriver (both installed
by `make test` where it may, like bubblewrap; skipped with the reason elsewhere). The report is built from two
real quick demos (Delethink, with a summary plot, and Webscale-RL, a pipeline check; 45 s together on an Intel
Xeon, 2 to 2.5 min on a Zen 3 VM); the screenshot stays beside the report (`report-screenshot.png`) and is copied
to $REASONLAB_ARTIFACTS when set."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

VIEWPORT = (1280, 800)
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> tuple[str, str]:
    """(browser binary, chromedriver), or skip with what is missing and how to install it."""
    pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")
    binary = next((path for name in CHROMIUM if (path := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no chromium/chromedriver on PATH: `make test` installs Debian's chromium and chromium-driver "
                    "when run as root with apt; elsewhere install them yourself")
    return binary, driver


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "reasonlab.cli", "demo", "--only", "delethink", "--only", "webscale",
                    "--out", str(out)], check=True, capture_output=True, text=True, timeout=900, env=env)
    return out / "report.html"


@pytest.fixture(scope="module")
def page(report):
    binary, driver_path = _browser()
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager look for a driver online
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        # the page's viewport itself is 1280 x 800 (a window of that size leaves less to the page)
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": VIEWPORT[0], "height": VIEWPORT[1], "deviceScaleFactor": 1, "mobile": False})
        driver.get(report.as_uri())
        yield driver
    finally:
        driver.quit()


def test_every_image_loads(page) -> None:
    from selenium.webdriver.common.by import By

    images = page.find_elements(By.TAG_NAME, "img")
    assert images, "the report shows no image (the Delethink demo has a summary plot)"
    for image in images:
        complete, width = page.execute_script("return [arguments[0].complete, arguments[0].naturalWidth]", image)
        assert complete and width > 0, image.get_attribute("alt")


def test_the_headline_table_is_visible_without_scrolling(page) -> None:
    from selenium.webdriver.common.by import By

    assert page.execute_script("return [window.innerWidth, window.innerHeight]") == list(VIEWPORT)
    assert page.execute_script("return window.scrollY") == 0
    table = page.find_elements(By.TAG_NAME, "table")[0]
    header, first_row = table.find_elements(By.TAG_NAME, "tr")[:2]
    assert "system" in header.text and first_row.text.startswith("delethink")
    for element in (header, first_row):
        top, bottom, right = page.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom, r.right]", element)
        assert top >= 0 and bottom <= VIEWPORT[1] and right <= VIEWPORT[0], (element.text[:40], top, bottom, right)


def test_no_console_errors(page) -> None:
    errors = [entry for entry in page.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_a_screenshot_is_kept_beside_the_report(page, report) -> None:
    path = report.parent / "report-screenshot.png"
    assert page.save_screenshot(str(path))
    width, height = struct.unpack(">II", path.read_bytes()[16:24])  # the PNG's IHDR
    assert (width, height) == VIEWPORT
    artifacts = os.environ.get("REASONLAB_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
