"""The Kasa-clients card in a real headless Chromium: one short line until a Kasa client
asks, then the full card (last request, from, polls/min, requests, replies)."""

import os

from twisted.internet import defer

from senselink.kasa.cipher import encrypt
from tests.support import udp_client
from tests.webpage import BrowserTestCase

SYSINFO = encrypt(b'{"system":{"get_sysinfo":{}}}')     # what the Kasa app asks

BOXES = """
return ['sense', 'kasa'].map(function (id) {
  var r = document.getElementById(id).getBoundingClientRect();
  return [r.height, getComputedStyle(document.getElementById(id)).borderTopWidth];
});"""


class KasaCardTests(BrowserTestCase):

    @defer.inlineCallbacks
    def test_one_line_until_a_kasa_client_asks(self):
        b = self.browser
        yield self.open()
        text = yield b.until("var k = document.getElementById('kasa');"
                             "return k.classList.contains('idle') && k.innerText;",
                             "the Kasa clients as one line")
        self.assertEqual(text.strip(),
                         "No Kasa client (the Kasa app, Home Assistant) has asked yet.")
        (sense_height, _), (kasa_height, kasa_border) = yield b.script(BOXES)
        self.assertEqual(kasa_border, "0px")                # no card around it
        self.assertLess(kasa_height, 30)                     # one line ...
        self.assertLess(kasa_height * 3, sense_height)       # ... not a card of five rows
        yield b.script("document.getElementById('overview').scrollIntoView();")
        yield b.screenshot(os.path.join(self.folder, "kasa-idle.png"))

        # A Kasa client asks: the full card, with where the request came from.
        client = udp_client(self)
        client.transport.write(SYSINFO, ("127.0.0.1", self.service.udp_port))
        text = yield b.until("var k = document.getElementById('kasa');"
                             "return !k.classList.contains('idle') && k.innerText;",
                             "the full Kasa clients card")
        self.assertIn("Kasa clients", text)
        self.assertIn("127.0.0.1", text)
        self.assertNotIn("has asked yet", text)
        (_, _), (kasa_height, kasa_border) = yield b.script(BOXES)
        self.assertEqual(kasa_border, "1px")
        self.assertGreater(kasa_height, 80)
        yield b.script("document.getElementById('overview').scrollIntoView();")
        yield b.screenshot(os.path.join(self.folder, "kasa-asked.png"))
