"""A real browser for the page's tests: Debian's chromium driven by its chromedriver (Selenium),
headless, skipped with how to install it when the packages are missing (``make browser``)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = {"width": 375, "height": 812}


@contextmanager
def chromium(*, phone_pixel_ratio: int | None = 2, javascript: bool = True,
             page_load_timeout: float = 60.0) -> Iterator[Any]:
    """A headless chromium: a 375x812 phone (at ``phone_pixel_ratio``; None: a desktop window),
    with JavaScript on or off; quit when the block ends."""
    if not (CHROMIUM.exists() and DRIVER.exists()):
        pytest.skip("Debian's chromium and chromium-driver are not installed: `make browser` installs them")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    if phone_pixel_ratio is not None:
        options.add_experimental_option("mobileEmulation",
                                        {"deviceMetrics": {**PHONE, "pixelRatio": phone_pixel_ratio}})
    if not javascript:
        options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(service=Service(str(DRIVER)), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()
