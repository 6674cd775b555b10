"""No log line carries more than about 200 characters of anything received.

Each source gets a huge value from a real server (HTTP: a twisted.web
server; Home Assistant: the Autobahn server speaking its protocol); the
lines logged about it stay short and give the full size.
"""

from twisted.internet import defer
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest

from tests.hass_server import FakeHomeAssistant
from tests.httpserver import Meter, serve
from tests.support import start_service, wait_until

TOKEN = "log-bounds-token"
LIMIT = 600      # characters in one whole line: the excerpt, its size, and our words


class LogBoundsTests(unittest.TestCase):
    @defer.inlineCallbacks
    def setUp(self):
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        self.addCleanup(self.home.stop)
        self.home.set_state("sensor.power", "200", {"unit_of_measurement": "W"})
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 300}')
        port = serve(self, self.meter)
        self.daemon = start_service(self, f"""\
sources:
- hass:
    url: {self.home.url}
    auth_token: {TOKEN}
    plugs:
    - hass: {{entity_id: sensor.power, mac: "53:75:31:00:0E:01"}}
- http:
    url: http://127.0.0.1:{port}/m
    interval: 1
    plugs:
    - http: {{power_keypath: power, mac: "53:75:31:00:0E:02"}}
""")
        yield wait_until(lambda: [self.daemon.plugs[p].watts for p in ("hass", "http")]
                         == [200, 300], "the first values")

    def lines(self, text):
        return [formatEvent(e) for e in self.events
                if e.get("log_namespace", "").startswith("senselink")
                and text in (formatEvent(e) or "")]

    @defer.inlineCallbacks
    def test_huge_values_give_short_lines(self):
        # (Within the source's 1 MiB body limit, so the value itself is read.)
        self.meter.reply = (200, b'{"power": "' + b"x" * 500_000 + b'"}')
        self.home.set_state("sensor.power", "y" * 100_000, {"unit_of_measurement": "W"})
        yield wait_until(lambda: self.lines("Cannot read Home Assistant entity")
                         and self.lines("cannot use the reply"), "both sources to complain")
        for line in self.lines("Cannot read Home Assistant entity") + self.lines(
                "cannot use the reply"):
            self.assertLess(len(line), LIMIT, line[:1000])
        self.assertIn("(100000 characters)", self.lines("Cannot read Home Assistant entity")[0])
        self.assertIn("(500000 characters)", self.lines("cannot use the reply")[0])
        self.assertEqual([self.daemon.plugs[p].watts for p in ("hass", "http")], [200, 300])

    @defer.inlineCallbacks
    def test_a_body_over_the_limit_is_one_short_line(self):
        self.meter.reply = (200, b"z" * 10_000_000)
        yield wait_until(lambda: self.lines("response body larger than"), "the refusal")
        (line,) = self.lines("Polling")[:1]
        self.assertLess(len(line), LIMIT)
        self.assertNotIn("zzz", line)
