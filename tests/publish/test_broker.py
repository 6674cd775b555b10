"""The publisher in a running daemon against a real mosquitto: what Home Assistant and
any other subscriber find on the broker."""

import json
import os

import treq
from twisted.internet import defer
from twisted.trial.unittest import TestCase

from senselink import config as _config
from senselink.service import makeService
from tests.mosquitto import require_mosquitto, started_broker
from tests.mqttclient import raw_client, retained
from tests.support import sense, udp_client, wait_until

HEATER = "homeassistant/sensor/senselink_537531f64c05/{}/config"
LAMP = "homeassistant/sensor/senselink_537531f64c01/{}/config"

CONFIG = """\
state_file: false
sources:
- mutable:
    plugs:
    - heater: {{power: 1500, alias: "{heater_alias}", mac: "53:75:31:F6:4C:05"}}
{lamp}
- aggregate:
    plugs:
    - media: {{elements: [tv, radio], mac: "53:75:31:F6:4C:09"}}
- static:
    plugs:
    - tv: {{max_watts: 90, mac: "53:75:31:F6:4C:03"}}
    - radio: {{max_watts: 9.5, mac: "53:75:31:F6:4C:04"}}
publish:
  host: 127.0.0.1
  port: {port}
  min_interval: 0.1
web:
  listen: tcp:0:interface=127.0.0.1
"""
LAMP_PLUG = '    - lamp: {power: 60, alias: Lamp, mac: "53:75:31:F6:4C:01"}'
FILTERS = ("homeassistant/#", "senselink/#")


class PublisherTests(TestCase):
    timeout = 120

    def setUp(self):
        require_mosquitto()

    @defer.inlineCallbacks
    def start(self, heater_alias="Space Heater", lamp=True):
        self.broker = yield started_broker(self)
        yield self.watch()
        self.path = os.path.abspath(self.mktemp())
        self.write(heater_alias, lamp)
        self.daemon = makeService(_config.load(self.path), port=0, interface="127.0.0.1")
        self.daemon.privilegedStartService()
        self.daemon.startService()
        self.addCleanup(lambda: self.daemon.running and self.daemon.stopService())
        yield self.daemon.publisher.when_ready()

    def write(self, heater_alias="Space Heater", lamp=True):
        with open(self.path, "w") as f:
            f.write(CONFIG.format(heater_alias=heater_alias, lamp=LAMP_PLUG if lamp else "",
                                  port=self.broker.port))

    @defer.inlineCallbacks
    def watch(self):
        """A subscriber to everything the publisher says, from before it starts."""
        self.watcher = yield raw_client(self, self.broker.port, f"watch-{self.broker.starts}")
        yield self.watcher.subscribe(*FILTERS)

    def seen(self, predicate, what):
        """Until C{predicate} holds of the latest payload per topic the watcher saw."""
        return self.watcher.wait_for(lambda c: predicate(c.messages), what)

    def found(self):
        """What a newcomer (Home Assistant starting) finds retained on the broker."""
        return retained(self, self.broker.port, *FILTERS)

    @defer.inlineCallbacks
    def test_retained_configs_and_states_as_sense_is_told(self):
        yield self.start()
        yield self.seen(lambda m: m.get("senselink/media/power") == b"99.5", "every plug")
        found = yield self.found()
        self.assertEqual(found["senselink/status"], b"online")
        power, energy = json.loads(found[HEATER.format("power")]), json.loads(
            found[HEATER.format("energy")])
        self.assertEqual((power["device_class"], power["state_class"],
                          power["unit_of_measurement"]), ("power", "measurement", "W"))
        self.assertEqual((energy["device_class"], energy["state_class"],
                          energy["unit_of_measurement"]), ("energy", "total_increasing", "kWh"))
        for config in (power, energy):
            self.assertEqual(config["availability_topic"], "senselink/status")
            self.assertEqual(config["device"]["name"], "Space Heater")
            self.assertEqual(config["device"]["identifiers"], ["senselink_537531f64c05"])
        self.assertEqual(power["state_topic"], "senselink/heater/power")
        # Reported plugs and aggregates, not the aggregate's elements.
        published = {t.split("/")[1] for t in found if t.startswith("senselink/") and
                     t.count("/") == 2}
        self.assertEqual(published, {"heater", "lamp", "media"})
        self.assertNotIn(HEATER.replace("537531f64c05", "537531f64c03").format("power"), found)
        # The values are what Sense is told.
        self.daemon.set_power("heater", 1234.5678)
        yield self.seen(lambda m: m.get("senselink/heater/power") == b"1234.568", "new watts")
        found = yield self.found()
        client = udp_client(self)
        sense(client, self.daemon.udp_port)
        replies = yield client.wait_for(3)          # heater, lamp, media
        told = {r["system"]["get_sysinfo"]["alias"]: r["emeter"]["get_realtime"]
                for r, _ in replies}
        self.assertEqual(float(found["senselink/heater/power"]), told["Space Heater"]["power"])
        self.assertEqual(float(found["senselink/media/power"]), told["media"]["power"])
        self.daemon.publisher.energy()
        found = yield self.found()
        self.assertGreater(float(found["senselink/heater/energy"]), 0.0)
        self.assertAlmostEqual(float(found["senselink/heater/energy"]),
                               self.daemon.meter.total_kwh(self.daemon.plugs["heater"]), 3)

    @defer.inlineCallbacks
    def test_reload_clears_a_removed_plug_and_renames_a_device(self):
        yield self.start()
        yield self.seen(lambda m: m.get(LAMP.format("power")), "the lamp's config")
        self.write(heater_alias="Radiator", lamp=False)
        yield self.daemon.reloader.reload()
        yield self.seen(lambda m: m.get(LAMP.format("power")) == b"" and b"Radiator" in m.get(
            HEATER.format("energy")), "the reload's effect")
        found = yield self.found()
        for kind in ("power", "energy"):
            self.assertNotIn(LAMP.format(kind), found)
            self.assertNotIn(f"senselink/lamp/{kind}", found)
            self.assertEqual(json.loads(found[HEATER.format(kind)])["device"]["name"], "Radiator")
        self.assertEqual(found["senselink/status"], b"online")

    @defer.inlineCallbacks
    def web_status(self):
        """The publisher's part of the web interface's /api/status."""
        response = yield treq.get(f"http://127.0.0.1:{self.daemon.web.endpoint.port}/api/status",
                                  persistent=False)
        body = yield response.json()
        return body["publisher"]

    @defer.inlineCallbacks
    def test_broker_restart_then_everything_again(self):
        yield self.start()
        yield self.seen(lambda m: "senselink/media/power" in m, "the first publication")
        status = yield self.web_status()
        self.assertEqual(status, {"kind": "publish", "label": f"127.0.0.1:{self.broker.port}",
                                  "connected": True, "plugs": 3, "waiting": 0,
                                  "last_error": None})
        self.broker.stop()          # without persistence: every retained message is gone
        yield wait_until(lambda: not self.daemon.publisher.connected, "the lost connection")
        status = yield self.web_status()
        self.assertFalse(status["connected"])
        self.assertIn("lost the connection", status["last_error"])
        self.daemon.set_power("heater", 10.0)       # waits in the outbox
        self.daemon.set_power("heater", 20.0)       # and replaces it there
        self.assertLessEqual(len(self.daemon.publisher.outbox), 1 + 4 * 3)   # one per topic
        self.daemon.publisher._backoff = lambda attempt: 0.2
        yield self.broker.start()
        yield self.watch()
        yield self.seen(lambda m: len(m) == 1 + 4 * 3, "a full republish")
        found = yield self.found()
        self.assertEqual(len([t for t in found if t.startswith("homeassistant/")]), 6)
        self.assertEqual(found["senselink/status"], b"online")
        self.assertEqual(found["senselink/heater/power"], b"20.0")
        self.assertEqual(found["senselink/media/power"], b"99.5")
        self.assertIn("senselink/lamp/energy", found)

    @defer.inlineCallbacks
    def test_stop_says_offline_with_the_last_kwh(self):
        yield self.start()
        watcher = yield raw_client(self, self.broker.port, "watch")
        yield watcher.subscribe("senselink/status", "senselink/heater/energy")
        yield watcher.wait_for(lambda c: c.history("senselink/status"), "the status")
        heater = self.daemon.plugs["heater"]
        before = self.daemon.meter.total_kwh(heater)
        yield self.daemon.stopService()
        yield watcher.wait_for(lambda c: c.history("senselink/status")[-1] == b"offline",
                               "offline")
        # The kWh counted up to the stop, as Sense would be told them (6 decimals).
        last = float(watcher.history("senselink/heater/energy")[-1])
        self.assertGreaterEqual(last, round(before, 6))
        self.assertLessEqual(last, round(self.daemon.meter.total_kwh(heater), 6))
