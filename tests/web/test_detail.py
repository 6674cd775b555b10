"""A plug's detail view in a real headless Chromium: a dialog in the viewport that takes
focus, keeps it while it updates, asks only for what is new, closes with Esc and its
button; an aggregate lists its parts with their watts."""

import os

from twisted.internet import defer

from tests.webpage import TOKEN, BrowserTestCase

IN_VIEW = ("var d = document.getElementById('detail'), r = d.getBoundingClientRect();"
           "return d.open && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight && "
           "r.right <= window.innerWidth && d.contains(document.activeElement) && "
           "document.activeElement.id;")
HISTORY_FETCHES = ("var path = '/api/plugs/' + arguments[0] + '/history';"
                   "return performance.getEntriesByType('resource').map(function (e) {"
                   "  return e.name; }).filter(function (n) { return n.indexOf(path) >= 0; });")


class DetailTests(BrowserTestCase):

    def press_escape(self):
        def escape(driver):
            from selenium.webdriver.common.action_chains import ActionChains
            from selenium.webdriver.common.keys import Keys
            ActionChains(driver).send_keys(Keys.ESCAPE).perform()
        return self.browser.call(escape)

    @defer.inlineCallbacks
    def test_last_plug_opens_in_view_with_focus_and_closes_with_escape(self):
        b = self.browser
        yield self.open()
        last = yield b.script("var all = document.querySelectorAll('article.plug');"
                              "var c = all[all.length - 1]; c.querySelector('.alias')"
                              ".scrollIntoView(); c.querySelector('.alias').click();"
                              "return c.getAttribute('data-id');")
        focused = yield b.until(IN_VIEW, "the detail view in the viewport, with focus")
        self.assertEqual(focused, "detail-close")
        yield b.until("return document.getElementById('chart-day').childNodes.length;",
                      "the charts")
        title = yield b.script("return document.getElementById('detail-title').textContent;")
        self.assertEqual(title, self.service.plugs[last].alias)
        yield b.screenshot(os.path.join(self.folder, "detail.png"))
        yield self.press_escape()
        yield b.until("return !document.getElementById('detail').open && location.hash === ''"
                      " && document.activeElement === document.querySelector("
                      "'#plug-' + CSS.escape(arguments[0]) + ' .alias');",
                      "the view closed, focus back on the plug", last)
        # The close button closes it too.
        yield b.script("location.hash = '#plug=ev';")
        yield b.until(IN_VIEW, "the detail view again")
        yield b.script("document.getElementById('detail-close').click();")
        yield b.until("return !document.getElementById('detail').open;", "closed by its button")
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_updates_keep_focus_and_fetch_nothing_new(self):
        b = self.browser
        yield self.open("#plug=ev")
        yield b.until(IN_VIEW, "the detail view")
        yield b.until("return Number(document.getElementById('chart-recent')"
                      ".getAttribute('data-points'));", "the history drawn")
        before = yield b.script("return Number(document.getElementById('chart-recent')"
                                ".getAttribute('data-points'));")
        for watts in (4321.0, 3000.0):
            code, _ = yield self.api.json("PUT", "/api/plugs/ev", {"power": watts}, token=TOKEN)
            self.assertEqual(code, 200)
            shown = f"{watts:,.1f} W"
            yield b.until("return document.querySelector('#detail .big').textContent === "
                          "arguments[0];", f"{shown} in the detail view", shown)
        points = yield b.script("return Number(document.getElementById('chart-recent')"
                                ".getAttribute('data-points'));")
        self.assertGreater(points, before)               # drawn from the stream
        focused = yield b.script(IN_VIEW)
        self.assertEqual(focused, "detail-close")        # focus stayed
        fetches = yield b.script(HISTORY_FETCHES, "ev")
        self.assertEqual(len(fetches), 1, fetches)       # the history once, no re-fetch
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_aggregate_lists_its_parts_with_watts(self):
        b = self.browser
        yield self.open("#plug=lights")
        yield b.until(IN_VIEW, "the aggregate's detail view")
        parts = yield b.until("var u = document.querySelector('#detail ul.parts');"
                              "return u && u.textContent;", "the parts")
        self.assertEqual(parts, "Lamp10.0 W")
        self.service.set_power("lamp", 42.0)
        yield b.until("return document.querySelector('#detail ul.parts').textContent === "
                      "'Lamp42.0 W';", "the part's new watts")
        yield self.assert_console_clean()
