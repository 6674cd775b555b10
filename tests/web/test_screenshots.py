"""The README's screenshots of the status page: 390, 1280 and 1920 px wide, light and dark.

Written to the test's temp folder; with C{SENSELINK_WRITE_DOCS=1} also to C{docs/}
(C{docs/status-page-1280-light.png}, ...), which is how the README's pictures are remade:

    SENSELINK_WRITE_DOCS=1 python3 -m twisted.trial tests.web.test_screenshots
"""

import os
import shutil

from twisted.internet import defer
from twisted.trial import unittest

from senselink.kasa import messages
from tests import browser
from tests.support import free_port, start_service, udp_client
from tests.webpage import CARD, readme_config

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs")
SIZES = ((390, 844), (1280, 800), (1920, 1080))
PNG = b"\x89PNG\r\n\x1a\n"


class ScreenshotTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_screenshots(self):
        browser.require()
        web_port = free_port()
        service = start_service(self, readme_config(web_port).replace("STATE", self.mktemp()))
        b = browser.Browser(*SIZES[0])
        self.addCleanup(b.quit)
        yield b.start()
        yield b.get(f"http://127.0.0.1:{web_port}/")
        yield b.until("return document.querySelectorAll('article.plug').length === 7;", "plugs")
        for watts in (2400.0, 2950.0, 2100.0, 2600.0):      # some history to draw
            service.set_power("heat_pump", watts)
            service.set_power("dishwasher", 1900.0 - watts / 2)
            yield b.until(CARD + " && c.querySelector('.watts').textContent === arguments[1];",
                          "the change", "heat_pump", f"{watts:,.1f} W")
        client = udp_client(self)
        client.transport.write(messages.SENSE_REQUEST_ENCRYPTED, ("127.0.0.1", service.udp_port))
        yield b.until("var s = document.getElementById('sense');"
                      "return s.getAttribute('data-requests') === '1';", "the Sense request")
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        written = []
        for scheme in ("light", "dark"):
            yield b.color_scheme(scheme)
            for width, height in SIZES:
                yield b.resize(width, height)
                # Charts are drawn at their size: wait for the redraw after the resize.
                yield b.until("var s = document.getElementById('house-recent');"
                              "return Math.abs(Number(s.getAttribute('viewBox').split(' ')[2])"
                              " - s.getBoundingClientRect().width) < 2;", "charts redrawn")
                overflow = yield b.script("return document.documentElement.scrollWidth > "
                                          "window.innerWidth;")
                self.assertFalse(overflow, (width, scheme))
                path = os.path.join(folder, f"status-page-{width}-{scheme}.png")
                yield b.screenshot(path)
                with open(path, "rb") as f:
                    self.assertEqual(f.read(8), PNG)
                self.assertLess(os.path.getsize(path), 400 * 1024)
                written.append(path)
        self.assertEqual(len(written), 6)
        if os.environ.get("SENSELINK_WRITE_DOCS"):
            for path in written:
                shutil.copy(path, DOCS)
        self.assertEqual((yield b.console_errors()), [])
