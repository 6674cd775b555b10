"""The README's screenshots of the status page: 390, 1280 and 1920 px wide, light and dark.

Written to the test's temp folder; with C{SENSELINK_WRITE_DOCS=1} also to C{docs/}
(C{docs/status-page-1280-light.png}, ...), which is how the README's pictures are remade:

    SENSELINK_WRITE_DOCS=1 python3 -m twisted.trial tests.web.test_screenshots
"""

import os
import shutil

from twisted.internet import defer
from twisted.trial import unittest

from tests.webpage import readme_page

DOCS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "docs")
SIZES = ((390, 844), (1280, 800), (1920, 1080))
PNG = b"\x89PNG\r\n\x1a\n"


class ScreenshotTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_screenshots(self):
        service, b = yield readme_page(self, *SIZES[0])
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
