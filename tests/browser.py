"""A real headless Chromium for the web tests, driven by Selenium through chromedriver.

Selenium's calls block, and the daemon under test runs in the test's
reactor, so every browser call runs in a thread (L{Browser.call}) while the
reactor keeps serving. Needs Debian's C{chromium} and C{chromium-driver} and
Python's C{selenium} (installed by C{.ci/run}); L{require} fails under CI
when they are missing and skips with the reason elsewhere.
"""

import os
import shutil

from twisted.internet import defer, reactor, threads
from twisted.internet.task import deferLater
from twisted.trial.unittest import FailTest, SkipTest

from tests.support import WAIT

CHROMEDRIVER = ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
AXE_VERSION = "4.14.1"       # as .ci/install-axe installs it


def axe_source():
    """axe-core's C{axe.min.js}, from the cache folder C{.ci/install-axe} fills (npm).

    Fails under CI when it is missing; skips with the reason elsewhere.
    """
    cache = os.environ.get("SENSELINK_TEST_CACHE",
                           os.path.join(os.path.expanduser("~"), ".cache", "senselink-tests"))
    path = os.path.join(cache, "node_modules", "axe-core", "axe.min.js")
    if not os.path.isfile(path):
        message = (f"the accessibility tests need axe-core {AXE_VERSION} in {path} "
                   f"(bash .ci/install-axe installs it with npm)")
        if os.environ.get("CI"):
            raise FailTest(message)
        raise SkipTest(message)
    with open(path, encoding="utf-8") as f:
        return f.read()


def _driver_path():
    for path in CHROMEDRIVER:
        if os.path.exists(path):
            return path
    return shutil.which("chromedriver")


def require():
    """Skip (or fail under CI) unless Chromium, chromedriver and selenium are installed."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("Python package selenium")
    if _driver_path() is None:
        missing.append("Debian packages chromium and chromium-driver")
    if missing:
        message = f"browser tests need {' and '.join(missing)} (.ci/run installs them)"
        if os.environ.get("CI"):
            raise FailTest(message)
        raise SkipTest(message)


class Browser:
    """One headless Chromium window; every method returns a Deferred."""

    def __init__(self, width=1280, height=900):
        self.width = width
        self.height = height
        self.driver = None

    def start(self):
        return threads.deferToThread(self._start)

    def _start(self):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
        options = webdriver.ChromeOptions()
        for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-default-apps", "--disable-sync",
                         f"--window-size={self.width},{self.height}"):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(_driver_path()), options=options)
        self.driver.set_window_size(self.width, self.height)

    def call(self, function, *args):
        """C{function(driver, *args)} in a thread."""
        return threads.deferToThread(function, self.driver, *args)

    def script(self, source, *args):
        return self.call(lambda driver: driver.execute_script(source, *args))

    def get(self, url):
        return self.call(lambda driver: driver.get(url))

    def resize(self, width, height):
        return self.call(lambda driver: driver.set_window_size(width, height))

    def screenshot(self, path):
        return self.call(lambda driver: driver.save_screenshot(path))

    def console_errors(self):
        """The browser console's SEVERE entries so far."""
        return self.call(lambda driver: [entry for entry in driver.get_log("browser")
                                         if entry.get("level") == "SEVERE"])

    @defer.inlineCallbacks
    def until(self, source, what, *args, timeout=WAIT):
        """Run C{source} (JavaScript returning a value) until it is truthy; its value.

        A bound, not a measurement: fails after C{timeout} seconds.
        """
        deadline = reactor.seconds() + timeout
        while True:
            value = yield self.script(source, *args)
            if value:
                return value
            if reactor.seconds() > deadline:
                raise FailTest(f"timed out after {timeout} s waiting for {what}")
            yield deferLater(reactor, 0.1, lambda: None)

    def color_scheme(self, scheme):
        """Emulate C{prefers-color-scheme: scheme} ("light" or "dark")."""
        return self.call(lambda driver: driver.execute_cdp_cmd(
            "Emulation.setEmulatedMedia",
            {"features": [{"name": "prefers-color-scheme", "value": scheme}]}))

    def quit(self):
        if self.driver is None:
            return None
        driver, self.driver = self.driver, None
        return threads.deferToThread(driver.quit)
