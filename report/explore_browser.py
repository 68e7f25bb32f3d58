"""Debian's headless Chromium driven through its chromedriver by Selenium (all three installed by
./bazelw and the lock file), as the explorer's tests and //bench:explore open the site."""

from __future__ import annotations

import os
import shutil


def headless_chromium(home: str | None = None, log_requests: bool = False):
    """A Selenium Chrome driver of /usr/bin/chromium at 1400x1000. `home`: a writable folder for
    its HOME and profile (a Bazel test's own HOME may not be writable). `log_requests`: keep
    Chromium's network log (`driver.get_log("performance")`) and the browser console."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(a)
    env = None
    if home is not None:
        os.makedirs(home, exist_ok=True)
        opts.add_argument(f"--user-data-dir={os.path.join(home, 'chromium-profile')}")
        env = dict(os.environ, HOME=home)
    if log_requests:
        opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver",
                                                          env=env))
