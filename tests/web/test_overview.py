"""The house overview in a real headless Chromium: the total's charts with time and value
ticks and a crosshair readout (mouse, touch, keyboard), the plugs' order by watts or as in
the config, their shares, sparklines on one scale, and the detail view's CSV downloads."""

import csv
import io

from twisted.internet import defer

from tests.webpage import BrowserTestCase

ORDER = ("return Array.prototype.map.call(document.querySelectorAll('article.plug'),"
         " function (c) { return c.getAttribute('data-id'); });")
TICKS = ("var s = document.getElementById(arguments[0]);"
         "return s && Number(s.getAttribute('data-points')) > 0 && ["
         "  Number(s.getAttribute('data-time-ticks')), Number(s.getAttribute('data-value-ticks')),"
         "  Array.prototype.map.call(s.querySelectorAll('text.tick'), function (t) {"
         "    return t.textContent; })];")
POINTER = ("var s = document.getElementById(arguments[0]), r = s.getBoundingClientRect();"
           "s.dispatchEvent(new PointerEvent(arguments[1], {clientX: r.left + r.width * 0.9,"
           "  clientY: r.top + 40, pointerType: arguments[2], bubbles: true}));"
           "return s.parentNode.querySelector('.readout').textContent;")


class OverviewTests(BrowserTestCase):

    def press(self, *keys):
        def send(driver):
            from selenium.webdriver.common.action_chains import ActionChains
            ActionChains(driver).send_keys(*keys).perform()
        return self.browser.call(send)

    @defer.inlineCallbacks
    def test_charts_carry_time_and_value_ticks_and_a_readout(self):
        b = self.browser
        yield self.open()
        self.service.set_power("ev", 3000.0)
        for chart in ("house-recent", "house-day"):
            times, values, labels = yield b.until(TICKS, chart, chart)
            self.assertGreaterEqual(times, 2, chart)
            self.assertGreaterEqual(values, 2, chart)
            self.assertTrue(any(label.endswith(" W") or label.endswith(" kW")
                                for label in labels), labels)
            self.assertTrue(any(":" in label for label in labels), labels)   # 17:30, 17:30:10
        # Mouse and touch move the crosshair; its readout names a time and watts.
        for kind, event in (("mouse", "pointermove"), ("touch", "pointerdown")):
            text = yield b.script(POINTER, "house-recent", event, kind)
            self.assertRegex(text, r"^from \d\d:\d\d:\d\d: [\d,.]+ k?W$", kind)
            self.assertTrue((yield b.script(
                "return !!document.querySelector('#house-recent .cursor');")))
        # Keyboard: the chart takes focus, arrows and Home/End move the readout.
        yield b.script("document.getElementById('house-day').focus();")
        from selenium.webdriver.common.keys import Keys
        yield self.press(Keys.HOME)
        first = yield b.script("return document.querySelector('#house-day + .readout')"
                               ".textContent;")
        self.assertRegex(first, r"^\d\d:\d\d: mean [\d,.]+ k?W$")
        # The detail view's charts: ticks on all three, dates under the daily bars.
        yield b.script("location.hash = '#plug=ev';")
        for chart in ("chart-recent", "chart-day", "chart-days"):
            times, values, labels = yield b.until(TICKS, chart, chart)
            self.assertGreaterEqual(times, 2, chart)
            self.assertGreaterEqual(values, 2, chart)
        _, _, labels = yield b.script(TICKS, "chart-days")
        self.assertTrue(any(label[:3] in ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                          "Sep", "Oct", "Nov", "Dec") for label in labels))
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_sorting_by_watts_and_config_order(self):
        b = self.browser
        yield self.open()
        code, listing = yield self.api.json("GET", "/api/plugs")
        config = [p["id"] for p in listing["plugs"]]
        watts = {p["id"]: p["watts"] for p in listing["plugs"]}
        largest = sorted(config, key=lambda i: (-watts[i], config.index(i)))
        self.assertNotEqual(largest, config)
        self.assertEqual((yield b.script(ORDER)), largest)             # the default
        yield b.script("document.getElementById('sort-config').click();")
        self.assertEqual((yield b.script(ORDER)), config)
        pressed = yield b.script("return [document.getElementById('sort-watts')"
                                 ".getAttribute('aria-pressed'), document.getElementById("
                                 "'sort-config').getAttribute('aria-pressed')];")
        self.assertEqual(pressed, ["false", "true"])
        yield b.script("document.getElementById('sort-watts').click();")
        self.assertEqual((yield b.script(ORDER)), largest)
        # A change reorders the list: the lamp becomes the largest.
        self.service.set_power("lamp", 90000.0)
        yield b.until("var o = (function () {" + ORDER + "})(); return o[0] === 'lamp';",
                      "the lamp first")
        # The choice is kept for the next visit.
        yield b.script("document.getElementById('sort-config').click();")
        yield self.open()
        self.assertEqual((yield b.script(ORDER)), config)
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_shares_and_one_scale_for_sparklines(self):
        b = self.browser
        yield self.open()
        code, listing = yield self.api.json("GET", "/api/plugs")
        total = sum(p["watts"] for p in listing["plugs"] if p["reported"])
        ev = next(p for p in listing["plugs"] if p["id"] == "ev")
        share = yield b.script("return document.querySelector('#plug-ev .share-text')"
                               ".textContent;")
        self.assertEqual(share, f"{ev['watts'] / total * 100:.0f} % of the total")
        width = yield b.script("return document.querySelector('#plug-ev .share-bar span')"
                               ".style.width;")
        self.assertAlmostEqual(float(width.rstrip("%")), ev["watts"] / total * 100, places=0)
        tops = "return Array.prototype.map.call(document.querySelectorAll('svg.spark'), " \
               "function (s) { return s.getAttribute('data-top'); });"
        shared = yield b.script(tops)
        self.assertEqual(len(set(shared)), 1)                 # one scale
        self.assertEqual(float(shared[0]), max(p["watts"] for p in listing["plugs"]))
        yield b.script("document.getElementById('shared-scale').click();")
        own = yield b.script(tops)
        self.assertGreater(len(set(own)), 1)                  # each its own
        yield self.assert_console_clean()

    @defer.inlineCallbacks
    def test_csv_downloads_from_the_detail_view_parse(self):
        b = self.browser
        yield self.open("#plug=ev")
        links = yield b.until("var a = document.querySelectorAll('#detail .downloads a');"
                              "return a.length === 2 && Array.prototype.map.call(a, "
                              "function (x) { return x.getAttribute('href'); });", "the links")
        self.assertEqual(links, ["api/plugs/ev/history.csv", "api/plugs/ev/days.csv"])
        fetched = yield b.call(lambda driver: driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "Promise.all(Array.prototype.map.call(document.querySelectorAll("
            "  '#detail .downloads a'), function (a) { return fetch(a.href).then("
            "  function (r) { return r.text().then(function (t) {"
            "    return [r.headers.get('content-type'), t]; }); }); })).then(done);"))
        (history_type, history), (days_type, days) = fetched
        self.assertTrue(history_type.startswith("text/csv"))
        self.assertTrue(days_type.startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(history)))
        self.assertEqual(float(rows[-1]["mean_watts"]), 1500.0)
        rows = list(csv.DictReader(io.StringIO(days)))
        self.assertEqual(list(rows[-1]), ["date", "kwh"])
        self.assertGreaterEqual(float(rows[-1]["kwh"]), 0.0)
        yield self.assert_console_clean()
