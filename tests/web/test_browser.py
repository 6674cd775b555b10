"""The status page in a real headless Chromium (Selenium + chromedriver) against the daemon.

Screenshots (desktop and 390x844) are written to each test's temp folder.
"""

import os

from twisted.internet import defer
from twisted.trial import unittest

from senselink.kasa import messages
from tests.support import udp_client, wait_until
from tests.webpage import (CARD, CARD_TEXT, LONG, NO_OVERFLOW, TOKEN, BrowserTestCase,
                           readme_page, start_demo)


class LivePageTests(BrowserTestCase):

    @defer.inlineCallbacks
    def test_live_updates_banner_energy_and_charts(self):
        b = self.browser
        yield self.open()
        yield b.script("window.notReloaded = true;")

        # No Sense request yet: the banner says so, with the usual causes.
        banner = yield b.until("var b = document.getElementById('banner');"
                               "return !b.hidden && b.textContent;", "the no-Sense banner")
        for words in ("No Sense request", "same subnet", "Docker",
                      f"UDP port {self.service.udp_port},", "Quiet mode", "target"):
            self.assertIn(words, banner)

        # Energy figures on the page are those of /api (3 decimals shown).
        code, listing = yield self.api.json("GET", "/api/plugs")
        for plug in listing["plugs"]:
            text = yield b.script(CARD_TEXT, plug["id"])
            shown = text.split("total ")[1].split(" kWh")[0]
            self.assertLess(abs(float(shown) - plug["energy"]["total_kwh"]), 0.0015)
            for key, label in (("today_kwh", "today "), ("month_kwh", "this month ")):
                value = float(text.split(label)[1].split(" kWh")[0])
                self.assertLess(abs(value - plug["energy"][key]), 0.0015)

        # A PUT shows on the open page within 2 s, without navigation.
        for watts in (4321.0, 3000.0, 5555.5):
            code, body = yield self.api.json("PUT", "/api/plugs/ev", {"power": watts},
                                             token=TOKEN)
            self.assertEqual(code, 200)
            shown = f"{watts:,.1f} W"
            yield b.until(CARD + " && c.querySelector('.watts').textContent === "
                          "arguments[1];", f"{shown} on the page", "ev", shown, timeout=2)
        self.assertTrue((yield b.script("return window.notReloaded === true;")))

        # The sparkline holds the points: the start value and the three changes.
        points = yield b.script(
            "var s = document.querySelector('#plug-ev svg.spark');"
            "return [Number(s.getAttribute('data-points')),"
            "        s.querySelector('polyline').getAttribute('points').split(' ').length];")
        self.assertGreaterEqual(points[0], 4)
        self.assertEqual(points[1], 2 * points[0])      # a step per point, and now

        # The detail view: 10 minutes, 24 hours and 30 days, as /api has them. A minute
        # may end while the page draws: the counts lie between /api's before and after.
        code, before = yield self.api.json("GET", "/api/plugs/ev/history")
        yield b.script("location.hash = '#plug=ev';")
        drawn = yield b.until(
            "var r = document.getElementById('chart-recent'),"
            "    d = document.getElementById('chart-day'),"
            "    y = document.getElementById('chart-days');"
            "return r && d && y && [r, d, y].map(function (c) {"
            "  return Number(c.getAttribute('data-points')); });", "the detail charts")
        code, history = yield self.api.json("GET", "/api/plugs/ev/history")
        for index, key in enumerate(("recent", "minutes", "days")):
            self.assertTrue(len(before[key]) <= drawn[index] <= len(history[key]),
                            (key, len(before[key]), drawn[index], len(history[key])))
        self.assertEqual(drawn[2], 30)
        self.assertEqual(history["recent"][-1][1], 5555.5)   # (changes within 1 s merge there)
        band = yield b.script("return document.querySelector('#chart-day polygon.band')"
                              ".getAttribute('points').split(' ').length;")
        self.assertEqual(band, 2 * drawn[1])
        yield b.screenshot(os.path.join(self.folder, "desktop-detail.png"))

        # A Sense request: the banner goes, the Sense card shows where it came from.
        # Silence is 60 s again, counted from an hour ago, so that the banner stays until
        # the request and then stays gone while the page waits for its next status event
        # (with a 1 s silence it would be back a second after the one request).
        polling = self.service.polling
        polling.started -= 3600.0
        polling.silence = 60.0
        client = udp_client(self)
        client.transport.write(messages.SENSE_REQUEST_ENCRYPTED,
                               ("127.0.0.1", self.service.udp_port))
        yield b.until("return document.getElementById('banner').hidden;",
                      "the banner to go after a Sense request")
        sense = yield b.until("var s = document.getElementById('sense');"
                              "return s.getAttribute('data-requests') === '1' && s.textContent;",
                              "the Sense request on the page")
        self.assertIn("127.0.0.1", sense)
        kasa = yield b.script("return document.getElementById('kasa').textContent;")
        self.assertNotIn("127.0.0.1", kasa)          # Kasa clients are shown apart

        # The dead HTTP source's error, in words.
        sources = yield b.script("return document.getElementById('sources').textContent;")
        self.assertIn("not connected", sources)
        self.assertIn("last error: polling http://127.0.0.1:", sources)
        yield b.script("location.hash = '';")
        yield b.screenshot(os.path.join(self.folder, "desktop.png"))
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_controls_need_the_token_once(self):
        b = self.browser
        yield self.open()
        hidden = yield b.script("return document.querySelector('#plug-lamp form.controls').hidden"
                                " && !document.getElementById('unlock').hidden;")
        self.assertTrue(hidden)                     # read-only until the token is given
        yield b.script("document.getElementById('token').value = arguments[0];"
                       "document.querySelector('#unlock button').click();", TOKEN)
        yield b.until("return !document.querySelector('#plug-lamp form.controls').hidden;",
                      "the controls once unlocked")
        stored = yield b.script("return sessionStorage.getItem('senselink-token');")
        self.assertEqual(stored, TOKEN)
        yield b.script("document.querySelector('#plug-ev form.controls .turn-off').click();")
        yield wait_until(lambda: self.service.plugs["ev"].watts == 2.0, "ev switched off")
        yield b.until(CARD + " && c.querySelector('.state').textContent.indexOf('off') "
                      "=== 0;", "ev shown off", "ev")
        yield b.script("var f = document.querySelector('#plug-lamp form.controls');"
                       "f.querySelector('input').value = '42.5';"
                       "f.querySelector('.set').click();")
        yield wait_until(lambda: self.service.plugs["lamp"].watts == 42.5, "lamp at 42.5 W")
        # The page reloaded keeps the token for the session: not asked again.
        yield self.open()
        unlocked = yield b.script("return document.getElementById('unlock').hidden;")
        self.assertTrue(unlocked)
        yield self.assert_console_clean()


class PhoneTests(BrowserTestCase):

    width, height = 390, 844

    @defer.inlineCallbacks
    def test_no_horizontal_scrolling_at_390(self):
        b = self.browser
        yield b.resize(390, 844)
        yield self.open()
        count = yield b.script("return document.querySelectorAll('article.plug').length;")
        self.assertEqual(count, 20)
        text = yield b.script(CARD_TEXT, "ev")
        self.assertIn(LONG, text)
        self.assertTrue((yield b.script(NO_OVERFLOW)))
        yield b.screenshot(os.path.join(self.folder, "phone.png"))
        yield b.script("location.hash = '#plug=ev';")
        yield b.until("return document.getElementById('chart-day');", "the detail view")
        self.assertTrue((yield b.script(NO_OVERFLOW)))
        yield b.screenshot(os.path.join(self.folder, "phone-detail.png"))
        yield self.assert_console_clean()


class ReconnectTests(BrowserTestCase):

    @defer.inlineCallbacks
    def test_reconnects_after_a_restart(self):
        b = self.browser
        yield self.open()
        yield b.script("window.notReloaded = true;")
        port = int(self.service.base.rsplit(":", 1)[1])
        yield self.service.stopService()
        yield b.until("return document.getElementById('live').textContent === "
                      "'disconnected';", "the page to notice the daemon is gone")
        # Values dim, the page and the tab's title say for how long.
        outage = yield b.until("var o = document.getElementById('outage').textContent;"
                               "return /^\\d+ s ago$/.test(o) && document.title.indexOf("
                               "'Disconnected ' + o) === 0 && o;", "the outage's age")
        self.assertRegex(outage, r"^\d+ s ago$")
        opacity = yield b.script("return getComputedStyle(document.querySelector("
                                 "'#plug-ev .watts')).opacity;")
        self.assertLess(float(opacity), 0.6)
        yield b.screenshot(os.path.join(self.folder, "outage.png"))
        restarted = start_demo(self, web_port=port)
        restarted.set_power("ev", 1234.0)
        yield b.until(CARD + " && c.querySelector('.watts').textContent === '1,234.0 W';",
                      "the restarted daemon's value", "ev", timeout=15)
        live = yield b.until("return document.getElementById('live').textContent === 'live'"
                             " && document.title === 'SenseLink' && "
                             "!document.body.classList.contains('offline');", "live again")
        self.assertTrue((yield b.script("return window.notReloaded === true;")))


class ReadmeScreenshotTests(unittest.TestCase):
    """The README's picture of the page: status-page.png in the test's temp folder."""

    @defer.inlineCallbacks
    def test_readme_screenshot(self):
        service, b = yield readme_page(self, 1000, 1250)
        folder = os.path.abspath(self.mktemp())
        os.makedirs(folder)
        path = os.path.join(folder, "status-page.png")
        yield b.screenshot(path)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")
        self.assertLess(os.path.getsize(path), 300 * 1024)
        yield self.assert_console_clean(b)

    @defer.inlineCallbacks
    def assert_console_clean(self, b):
        self.assertEqual((yield b.console_errors()), [])
