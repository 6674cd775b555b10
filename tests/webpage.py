"""Shared by the status page tests: a demo daemon (20 plugs, long aliases), 127.0.0.1,
and the base class of the tests in a real browser."""

import json
import os

import treq

from twisted.internet import defer, reactor
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from tests import browser
from tests.support import free_port, start_service, wait_until

TOKEN = "a-demo-token-of-32-characters-xx"
LONG = ("Garage EV charger on the north wall, the one behind the bikes and the freezer, "
        "wired on its own 40 A circuit by the previous owners of the house in 2019; "
        "this alias is as long as a name may be, for the phone test.")[:128]


def demo_config(web_port, dead_port, plugs=20):
    """A config with mutable, static and aggregate plugs, 128-character aliases (the longest a name may be), and an
    HTTP source whose endpoint is down (a source with an error to show)."""
    statics = "\n".join(
        f"    - appliance{i}:\n"
        f"        alias: \"{LONG[:120]} #{i:02d}\"\n"
        f"        max_watts: {20 + 37 * i}\n"
        f"        mac: 53:75:31:00:01:{i:02X}"
        for i in range(plugs - 5))
    return f"""\
web:
  listen: tcp:{web_port}:interface=127.0.0.1
  token: {TOKEN}
state_file: STATE
sources:
- mutable:
    plugs:
    - ev:
        alias: "{LONG}"
        power: 1500
        max_watts: 7200
        off_usage: 2
        mac: 53:75:31:00:00:02
    - lamp:
        alias: Lamp
        power: 10
        mac: 53:75:31:00:00:03
- static:
    plugs:
    - fridge:
        alias: Kitchen fridge
        max_watts: 120.5
        mac: 53:75:31:00:00:01
{statics}
- aggregate:
    plugs:
    - lights:
        alias: All lights
        elements: [lamp]
        mac: 53:75:31:00:00:05
- http:
    url: http://127.0.0.1:{dead_port}/meter
    interval: 1
    plugs:
    - meter:
        alias: Heat pump
        power_keypath: power
        mac: 53:75:31:00:00:04
"""


def start_demo(testcase, plugs=20, web_port=None):
    """The demo daemon, started; its web interface's base URL is C{service.base}."""
    web_port = web_port or free_port()
    state = testcase.mktemp()
    text = demo_config(web_port, free_port(), plugs).replace("STATE", state)
    service = start_service(testcase, text)
    service.base = f"http://127.0.0.1:{web_port}"
    return service


class Client:
    """treq over fresh connections (nothing left open when a test ends)."""

    def __init__(self, base):
        self.base = base
        self.http = treq.client.HTTPClient(Agent(reactor, pool=HTTPConnectionPool(
            reactor, persistent=False)))

    @defer.inlineCallbacks
    def json(self, method, path, body=None, token=None):
        headers = {b"Content-Type": [b"application/json"]}
        if token:
            headers[b"Authorization"] = [b"Bearer " + token.encode()]
        data = None if body is None else json.dumps(body).encode()
        response = yield self.http.request(method, self.base + path, headers=headers, data=data)
        content = yield treq.content(response)
        return response.code, json.loads(content)

    @defer.inlineCallbacks
    def raw(self, path):
        response = yield self.http.get(self.base + path)
        content = yield treq.content(response)
        return response, content


def readme_config(web_port):
    """The demo of the README's screenshot: a few plugs with everyday names."""
    return f"""\
web:
  listen: tcp:{web_port}:interface=127.0.0.1
  token: {TOKEN}
state_file: STATE
sources:
- mutable:
    plugs:
    - heat_pump: {{alias: Heat pump, power: 1850, max_watts: 3200, mac: "53:75:31:00:02:01"}}
    - ev: {{alias: EV charger, power: 7200, max_watts: 7200, mac: "53:75:31:00:02:02"}}
    - dishwasher: {{alias: Dishwasher, power: 0, max_watts: 1900, mac: "53:75:31:00:02:03"}}
    - desk_lamp: {{alias: Desk lamp, power: 9, mac: "53:75:31:00:02:04"}}
    - hall_lamp: {{alias: Hall lamp, power: 14, mac: "53:75:31:00:02:05"}}
- static:
    plugs:
    - fridge: {{alias: Kitchen fridge, max_watts: 95, mac: "53:75:31:00:02:06"}}
- aggregate:
    plugs:
    - lights: {{alias: All lamps, elements: [desk_lamp, hall_lamp], mac: "53:75:31:00:02:07"}}
"""


@defer.inlineCallbacks
def readme_page(testcase, width, height):
    """The README's demo daemon and a Chromium showing its page with some history and one
    Sense request: C{(service, browser)}, both ended when the test ends."""
    from senselink.kasa import messages
    from tests.support import udp_client
    browser.require()
    web_port = free_port()
    service = start_service(testcase, readme_config(web_port).replace("STATE",
                                                                      testcase.mktemp()))
    b = browser.Browser(width, height)
    testcase.addCleanup(b.quit)
    yield b.start()
    yield b.get(f"http://127.0.0.1:{web_port}/")
    yield b.until("return document.querySelectorAll('article.plug').length === 7;", "plugs")
    for watts in (2400.0, 2950.0, 2100.0, 2600.0):      # some history to draw
        service.set_power("heat_pump", watts)
        service.set_power("dishwasher", 1900.0 - watts / 2)
        yield b.until(CARD + " && c.querySelector('.watts').textContent === arguments[1];",
                      "the change", "heat_pump", f"{watts:,.1f} W")
    client = udp_client(testcase)
    client.transport.write(messages.SENSE_REQUEST_ENCRYPTED, ("127.0.0.1", service.udp_port))
    yield b.until("var s = document.getElementById('sense');"
                  "return s.getAttribute('data-requests') === '1';", "the Sense request")
    return service, b


# The text of a plug's card, by id; JavaScript run in the page.
CARD = "var c = document.getElementById('plug-' + arguments[0]); return c"
CARD_TEXT = CARD + " && c.textContent;"
NO_OVERFLOW = ("return document.documentElement.scrollWidth <= window.innerWidth && "
               "document.body.scrollWidth <= window.innerWidth;")


class BrowserTestCase(unittest.TestCase):
    """The demo daemon and a headless Chromium; C{open} loads the page."""

    width, height = 1280, 900

    @defer.inlineCallbacks
    def setUp(self):
        browser.require()
        self.service = start_demo(self)
        self.service.polling.silence = 1.0     # the "no Sense" banner after 1 s, not 60
        self.api = Client(self.service.base)
        [poller] = self.service.sources
        yield wait_until(lambda: poller.last_error is not None, "the dead HTTP source's error")
        self.browser = browser.Browser(self.width, self.height)
        self.addCleanup(self.browser.quit)
        yield self.browser.start()
        self.folder = os.path.abspath(self.mktemp())
        os.makedirs(self.folder)

    @defer.inlineCallbacks
    def open(self, fragment=""):
        yield self.browser.get(self.service.base + "/" + fragment)
        yield self.browser.until("return document.querySelectorAll('article.plug').length",
                                 "the plugs drawn from the event stream")

    @defer.inlineCallbacks
    def assert_console_clean(self, expected=()):
        """No console errors but those whose message contains one of C{expected}."""
        errors = yield self.browser.console_errors()
        self.assertEqual([e for e in errors
                          if not any(words in e["message"] for words in expected)], [])
