"""axe-core (the npm package, injected by the test; .ci/install-axe installs it) finds no
violations on the status page in light and dark mode: the page with the no-Sense banner
and the controls unlocked, and a plug's detail view open. Touch targets are 44 px."""

from twisted.internet import defer

from tests import browser
from tests.webpage import TOKEN, BrowserTestCase

RUN_AXE = """
var done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ["violations"]}).then(function (r) {
  done(r.violations.map(function (v) {
    return [v.id, v.impact, v.help, v.nodes.slice(0, 5).map(function (n) {
      return n.target.join(" ") + ": " + n.failureSummary; })];
  }));
}, function (e) { done([["axe failed", String(e)]]); });
"""


# Buttons, fields and the plugs' links smaller than 44 x 44 px (touch targets).
SMALL_TARGETS = """
return Array.prototype.filter.call(
  document.querySelectorAll("main button, main input, main .plug a.alias, dialog button"),
  function (e) { var r = e.getBoundingClientRect();
                 return r.width > 0 && (r.width < 44 || r.height < 44); })
  .map(function (e) { var r = e.getBoundingClientRect();
                      return e.outerHTML.slice(0, 80) + " " + r.width + "x" + r.height; });
"""


class AxeTests(BrowserTestCase):

    @defer.inlineCallbacks
    def violations(self):
        b = self.browser
        injected = yield b.script(self.axe + "\n;return typeof axe === 'object';")
        self.assertTrue(injected)
        found = yield b.call(lambda driver: driver.execute_async_script(RUN_AXE))
        return found

    @defer.inlineCallbacks
    def check(self, scheme):
        self.axe = browser.axe_source()
        b = self.browser
        yield b.color_scheme(scheme)
        yield self.open()
        yield b.until("return !document.getElementById('banner').hidden;", "the banner")
        yield b.script("sessionStorage.setItem('senselink-token', arguments[0]);"
                       "location.reload();", TOKEN)
        yield self.open()
        yield b.until("return !document.querySelector('#plug-lamp form.controls').hidden;",
                      "the controls")
        self.assertEqual((yield self.violations()), [], f"the page, {scheme}")
        small = yield b.script(SMALL_TARGETS)
        self.assertEqual(small, [])
        main = yield b.script("return document.querySelectorAll('main').length;")
        self.assertEqual(main, 1)
        yield b.script("location.hash = '#plug=lights';")
        yield b.until("return document.getElementById('detail').open && "
                      "document.getElementById('chart-day').childNodes.length;", "the detail")
        self.assertEqual((yield self.violations()), [], f"the detail view, {scheme}")

    def test_light(self):
        return self.check("light")

    def test_dark(self):
        return self.check("dark")
