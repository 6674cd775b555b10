"""Watts stay finite and plausible on every path: config, MQTT, HTTP, Home Assistant, web API.

A reading above C{max_plug_watts} (default 100 000 W) is refused like an
unreadable value: the plug keeps its last good value. A config value above
it is a config error. Whatever a plug holds, the Kasa encoders write
in-range numbers.
"""

import json
import math

import treq
from twisted.internet import defer, reactor
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial import unittest
from twisted.web.client import Agent, HTTPConnectionPool

from senselink.config import ConfigError, load_text
from senselink.kasa import messages
from senselink.kasa.device import ChildState, HS300Strip
from tests.hass_server import FakeHomeAssistant
from tests.httpserver import Meter, serve
from tests.mosquitto import started_broker
from tests.support import start_service, wait_until

TOKEN = "bounds-ha-token"
WEB_TOKEN = "a-web-token-long-enough"


class ConfigTests(unittest.TestCase):
    def problems(self, text):
        with self.assertRaises(ConfigError) as caught:
            load_text(text, "w.yml")
        return str(caught.exception)

    def test_config_values_above_the_ceiling_are_errors(self):
        text = self.problems("sources:\n- static:\n    plugs:\n    - a:\n        max_watts: 1e308\n")
        self.assertIn("w.yml:5: sources[0].static.plugs[0].a.max_watts: expected a number "
                      "from 0 to 1000000000 W, got 1e+308", text)
        text = self.problems("sources:\n- static:\n    plugs:\n    - a:\n        max_watts: 2e5\n")
        self.assertIn("w.yml:5: sources[0].static.plugs[0].a.max_watts: 200000 W is above "
                      "max_plug_watts (100000 W)", text)
        text = self.problems("max_plug_watts: 5000\nsources:\n- mutable:\n    plugs:\n"
                             "    - a: {power: 6000}\n")
        self.assertIn("a.power: 6000 W is above max_plug_watts (5000 W)", text)
        text = self.problems("sources:\n- mqtt:\n    host: h\n    plugs:\n    - a:\n"
                             "        power_topic: t\n        power_curve: [[0, 0], [1, 2e5]]\n")
        self.assertIn("a.power_curve: 200000 W is above max_plug_watts", text)
        text = self.problems("max_plug_watts: .inf\nsources:\n- static:\n    plugs:\n"
                             "    - a: {max_watts: 1}\n")
        self.assertIn("w.yml:1: max_plug_watts: expected a number from 1 to 1000000000 W (a finite number)", text)

    def test_up_to_the_ceiling_is_fine(self):
        config = load_text("sources:\n- static:\n    plugs:\n    - a: {max_watts: 100000}\n",
                           "w.yml")
        self.assertEqual(config.options["max_plug_watts"], 100000)


class EncoderTests(unittest.TestCase):
    """Every Kasa encoder writes in-range numbers whatever it is given."""

    def test_sense_reply_and_realtime(self):
        for power in (math.inf, -math.inf, math.nan, 1e308, -5.0):
            encoder = messages.SenseReplyEncoder(alias="a", mac="53:75:31:00:00:01",
                                                 device_id="0" * 40, voltage=120)
            reply = json.loads(messages.decrypt(encoder.encode(power, True, math.inf)),
                               parse_constant=lambda name: self.fail(name))
            realtime = reply["emeter"]["get_realtime"]
            for key in ("current", "power", "total"):
                self.assertTrue(0 <= realtime[key] <= messages.MAX_READING, (power, realtime))
            self.assertEqual(reply, messages.sense_reply(
                alias="a", mac="53:75:31:00:00:01", device_id="0" * 40, power=power,
                voltage=120, on=True, total_kwh=math.inf))

    def test_strip_realtime(self):
        class Source:
            def children(self):
                return [ChildState("a", True, math.inf, 120.0, 5, math.nan),
                        ChildState("b", True, 1e308, 120.0, math.inf, 1e308)]

            def now(self):
                from datetime import datetime, timezone
                return datetime(2026, 11, 29, tzinfo=timezone.utc)
        device = HS300Strip(Source(), alias="s", mac="53:75:31:00:00:09", device_id="1" * 40)
        reply = device.handle({"emeter": {"get_realtime": {}}, "system": {"get_sysinfo": {}}})
        text = json.dumps(messages.encode and reply, allow_nan=False)   # raises on NaN/inf
        self.assertIn('"power_mw"', text)
        self.assertTrue(all(isinstance(v, int) for v in reply["emeter"]["get_realtime"].values()))


def daemon_config(broker_port, hass_url, meter_url):
    return f"""\
web:
  listen: tcp:0:interface=127.0.0.1
  token: {WEB_TOKEN}
sources:
- mutable:
    plugs:
    - heater: {{power: 10, mac: "53:75:31:00:0B:01"}}
- mqtt:
    host: 127.0.0.1
    port: {broker_port}
    plugs:
    - mqtt: {{power_topic: bounds/power, mac: "53:75:31:00:0B:02"}}
- hass:
    url: {hass_url}
    auth_token: {TOKEN}
    plugs:
    - hass: {{entity_id: sensor.power, mac: "53:75:31:00:0B:03"}}
- http:
    url: {meter_url}
    interval: 1
    plugs:
    - http: {{power_keypath: power, mac: "53:75:31:00:0B:04"}}
- aggregate:
    plugs:
    - all: {{elements: [mqtt, hass, http], mac: "53:75:31:00:0B:05"}}
"""


class SourceTests(unittest.TestCase):
    """One daemon with MQTT (a real mosquitto), HA (the Autobahn server) and HTTP plugs."""

    @defer.inlineCallbacks
    def setUp(self):
        self.broker = yield started_broker(self)
        self.home = FakeHomeAssistant(TOKEN)
        self.home.listen()
        self.addCleanup(self.home.stop)
        self.home.set_state("sensor.power", "200", {"unit_of_measurement": "W"})
        self.meter = Meter()
        self.meter.reply = (200, b'{"power": 300}')
        port = serve(self, self.meter)
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        yield self.broker.publish("bounds/power", "100", retain=True)
        self.daemon = start_service(self, daemon_config(self.broker.port, self.home.url,
                                                        f"http://127.0.0.1:{port}/m"))
        yield wait_until(lambda: [self.watts(p) for p in ("mqtt", "hass", "http")]
                         == [100, 200, 300], "the first good values")

    def watts(self, plug_id):
        return self.daemon.plugs[plug_id].watts

    def refusals(self):
        return [formatEvent(e) for e in self.events
                if "above max_plug_watts" in (formatEvent(e) or "")]

    @defer.inlineCallbacks
    def test_huge_readings_keep_the_last_good_values(self):
        yield self.broker.publish("bounds/power", "1e308")
        self.home.set_state("sensor.power", "1e308", {"unit_of_measurement": "W"})
        self.meter.reply = (200, b'{"power": 1e308}')
        yield wait_until(lambda: len(self.refusals()) >= 3, "each source to refuse its reading")
        for plug_id in ("mqtt", "hass", "http"):
            self.assertEqual(len([line for line in self.refusals() if plug_id in line]), 1,
                             self.refusals())
        self.assertEqual(self.watts("mqtt"), 100)
        self.assertEqual(self.watts("hass"), 200)
        self.assertEqual(self.watts("http"), 300)
        self.assertEqual(self.watts("all"), 600)
        self.assertTrue(math.isfinite(self.daemon.plugs["all"].watts))

    @defer.inlineCallbacks
    def test_web_api_refuses_a_huge_power(self):
        pool = HTTPConnectionPool(reactor, persistent=False)
        http = treq.client.HTTPClient(Agent(reactor, pool=pool))
        url = f"http://127.0.0.1:{self.daemon.web.endpoint.port}/api/plugs/heater"
        for body in (b'{"power": 1.7e308}', b'{"power": 100001}'):
            response = yield http.request("PUT", url, data=body, headers={
                b"Authorization": [b"Bearer " + WEB_TOKEN.encode()],
                b"Content-Type": [b"application/json"]})
            content = json.loads((yield treq.content(response)))
            self.assertEqual(response.code, 400, content)
            self.assertTrue("max_plug_watts" in content["error"] or "finite" in content["error"],
                            content)
        self.assertEqual(self.watts("heater"), 10)
