"""Topics, values and Home Assistant discovery configs of a published plug (no I/O)."""

import json

from twisted.internet import task
from twisted.trial.unittest import TestCase

from senselink.config.publish import PublishSettings
from senselink.kasa.messages import realtime
from senselink.plugs import Plug
from senselink.publish.discovery import (PlugTopics, energy_text, mac_digits, plain_number,
                                         power_text, topic_id)


def plug(plug_id="heater", alias="Space Heater", mac="53:75:31:F6:4C:05", watts=0.0):
    return Plug(plug_id, alias=alias, mac=mac, device_id="A" * 40, kind="mutable",
                clock=task.Clock(), watts=watts)


class TopicTests(TestCase):

    def test_ids(self):
        self.assertEqual(mac_digits("53:75:31:F6:4C:05"), "537531f64c05")
        self.assertEqual(topic_id(plug("Heater-2_b")), "Heater-2_b")
        for awkward in ("living room", "a/b", "a+b", "caf\u00e9", "x" * 65, "a#"):
            self.assertEqual(topic_id(plug(awkward)), "537531f64c05", awkward)

    def test_topics(self):
        topics = PlugTopics(plug(), PublishSettings(host="h"))
        self.assertEqual(topics.status, "senselink/status")
        self.assertEqual((topics.power, topics.energy),
                         ("senselink/heater/power", "senselink/heater/energy"))
        self.assertEqual(sorted(topics.config.values()), [
            "homeassistant/sensor/senselink_537531f64c05/energy/config",
            "homeassistant/sensor/senselink_537531f64c05/power/config"])
        other = PlugTopics(plug(), PublishSettings(host="h", topic_prefix="home/sl",
                                                   discovery_prefix="ha"))
        self.assertEqual(other.power, "home/sl/heater/power")
        self.assertEqual(other.config["power"], "ha/sensor/senselink_537531f64c05/power/config")
        self.assertEqual(PlugTopics(plug(), PublishSettings(host="h", discovery=False)).config, {})

    def test_plain_numbers_as_sense_is_told(self):
        self.assertEqual(plain_number(1500.0, 3), b"1500.0")
        self.assertEqual(plain_number(0.000009, 6), b"0.000009")
        self.assertEqual(plain_number(0.0, 6), b"0.0")
        self.assertEqual(plain_number(12.3456789, 6), b"12.345679")
        for watts in (0.0, 0.25, 1500.0, 1234.56789, 1e-7, 99999.9999):
            text = power_text(plug(watts=watts))
            self.assertEqual(float(text), realtime(watts, 120.0)["power"], watts)
            self.assertNotIn(b"e", text)
        self.assertEqual(energy_text(12.345678), b"12.345678")


class DiscoveryConfigTests(TestCase):
    """The fields Home Assistant's MQTT sensor and discovery documentation name."""

    def configs(self, **settings):
        the_plug = plug()
        topics = PlugTopics(the_plug, PublishSettings(host="h", **settings))
        return {topic.split("/")[-2]: json.loads(payload)
                for topic, payload in topics.configs(the_plug).items()}

    def test_power_and_energy_sensors(self):
        configs = self.configs()
        device = {"identifiers": ["senselink_537531f64c05"], "name": "Space Heater",
                  "manufacturer": "SenseLink", "model": "SenseLink virtual HS110"}
        self.assertEqual(configs["power"], {
            "name": "Power", "unique_id": "senselink_537531f64c05_power",
            "state_topic": "senselink/heater/power", "unit_of_measurement": "W",
            "device_class": "power", "state_class": "measurement",
            "availability_topic": "senselink/status", "payload_available": "online",
            "payload_not_available": "offline", "device": device})
        self.assertEqual(configs["energy"], {
            "name": "Energy", "unique_id": "senselink_537531f64c05_energy",
            "state_topic": "senselink/heater/energy", "unit_of_measurement": "kWh",
            "device_class": "energy", "state_class": "total_increasing",
            "availability_topic": "senselink/status", "payload_available": "online",
            "payload_not_available": "offline", "device": device})

    def test_unique_id_follows_the_mac_not_the_alias_or_id(self):
        a, b = plug("one", "First"), plug("two", "Second")
        settings = PublishSettings(host="h")
        ids = [json.loads(p)["unique_id"] for p in PlugTopics(a, settings).configs(a).values()]
        ids_b = [json.loads(p)["unique_id"] for p in PlugTopics(b, settings).configs(b).values()]
        self.assertEqual(ids, ids_b)

    def test_alias_in_unicode(self):
        the_plug = plug(alias="K\u00fcche \u2615")
        (payload, _) = PlugTopics(the_plug, PublishSettings(host="h")).configs(the_plug).values()
        self.assertEqual(json.loads(payload.decode("utf-8"))["device"]["name"], "K\u00fcche \u2615")
