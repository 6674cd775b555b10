"""Unlock, Lock and errors on the status page in a real headless Chromium: a wrong token
is refused at once, errors are plain words, red, in announced (role=alert) regions."""

from twisted.internet import defer

from tests.support import wait_until
from tests.webpage import TOKEN, BrowserTestCase

NOTE = ("var n = document.getElementById('unlock-note');"
        "return n.textContent && [n.textContent, n.getAttribute('role'),"
        "                         getComputedStyle(n).color, n.offsetHeight > 0];")


class UnlockTests(BrowserTestCase):

    def give(self, token):
        return self.browser.script("document.getElementById('token').value = arguments[0];"
                                   "document.querySelector('#unlock button').click();", token)

    def controls_hidden(self):
        return self.browser.script(
            "return document.querySelector('#plug-lamp form.controls').hidden;")

    @defer.inlineCallbacks
    def test_wrong_token_is_refused_at_once_then_unlock_and_lock(self):
        b = self.browser
        yield self.open()
        yield self.give("not-the-token")
        text, role, color, shown = yield b.until(NOTE, "the wrong token's error")
        self.assertIn("token is not the one in the config", text)
        self.assertEqual(role, "alert")
        self.assertEqual(color, "rgb(180, 35, 24)")             # --bad, red
        self.assertTrue(shown)
        self.assertTrue((yield self.controls_hidden()))
        self.assertIsNone((yield b.script("return sessionStorage.getItem('senselink-token');")))

        yield self.give(TOKEN)
        yield b.until("return !document.querySelector('#plug-lamp form.controls').hidden && "
                      "document.activeElement.id === 'lock';", "unlocked, focus on Lock")
        note = yield b.script("return document.getElementById('unlock-note').textContent;")
        self.assertEqual(note, "")
        names = yield b.script(
            "return Array.prototype.map.call(document.querySelectorAll("
            "'#plug-lamp form.controls button'), function (x) { return x.textContent; });")
        self.assertEqual(names, ["Set - Lamp", "On - Lamp", "Off - Lamp"])

        # A value above the daemon's limit: plain words, red, announced; nothing sent.
        yield b.script("var f = document.querySelector('#plug-lamp form.controls');"
                       "f.querySelector('input').value = '150000';"
                       "f.querySelector('.set').click();")
        text = yield b.until("var n = document.querySelector('#plug-lamp .error');"
                             "return n.getAttribute('role') === 'alert' && n.textContent;",
                             "the error")
        self.assertEqual(text, "Not changed: a plug can be set to at most 100,000.0 W.")
        self.assertEqual(self.service.plugs["lamp"].watts, 10.0)
        yield b.script("var f = document.querySelector('#plug-lamp form.controls');"
                       "f.querySelector('input').value = '42';"
                       "f.querySelector('.set').click();")
        yield wait_until(lambda: self.service.plugs["lamp"].watts == 42.0, "lamp at 42 W")
        yield b.until("return document.querySelector('#plug-lamp .error').textContent === '';",
                      "the error gone after a change that worked")

        yield b.script("document.getElementById('lock').click();")
        yield b.until("return document.querySelector('#plug-lamp form.controls').hidden && "
                      "!document.getElementById('unlock').hidden && "
                      "document.activeElement.id === 'token';", "locked again")
        self.assertIsNone((yield b.script("return sessionStorage.getItem('senselink-token');")))
        yield self.assert_console_clean(["/api/token - Failed to load resource: the server "
                                         "responded with a status of 401"])
