"""The publish section: typed, bounded settings shared with the mqtt source's broker keys."""

import os

from twisted.trial import unittest

from senselink import config
from senselink.config.broker import BrokerSettings, TlsSettings
from senselink.config.publish import PublishSettings
from senselink.config.settings import field_table
from senselink.sources.mqtt.settings import MqttSourceSettings

PLUGS = """\
sources:
- static:
    plugs:
    - heater: {max_watts: 1000}
    - lamp: {max_watts: 60}
- aggregate:
    plugs:
    - both: {elements: [heater, lamp]}
"""


def load(section):
    return config.load_text(PLUGS + section, "test.yml")


def problems(section):
    try:
        load(section)
    except config.ConfigError as e:
        return e.problems
    raise AssertionError(f"accepted: {section}")


class PublishSectionTests(unittest.TestCase):

    def test_absent(self):
        self.assertIsNone(load("").settings.publish)

    def test_defaults(self):
        settings = load("publish:\n  host: broker.lan\n").settings.publish
        self.assertEqual(settings, PublishSettings(host="broker.lan"))
        self.assertEqual((settings.topic_prefix, settings.discovery_prefix, settings.discovery),
                         ("senselink", "homeassistant", True))
        self.assertEqual((settings.min_interval, settings.max_interval,
                          settings.energy_interval), (1.0, 60.0, 60.0))
        self.assertIsNone(settings.plugs)            # every reported plug
        self.assertEqual(settings.broker_port, 1883)
        self.assertEqual(settings.keepalive, 60)

    def test_every_key(self):
        settings = load("""\
publish:
  host: 10.0.0.2
  port: 8884
  username: sense
  password: pässword
  client_id: my-senselink
  keepalive: 30
  tls: true
  topic_prefix: home/energy
  discovery: false
  discovery_prefix: ha
  plugs: [heater, both]
  min_interval: 0.5
  max_interval: 300
  energy_interval: 120
""").settings.publish
        self.assertEqual(settings.tls, TlsSettings())
        self.assertEqual((settings.username, settings.password, settings.client_id),
                         ("sense", "pässword", "my-senselink"))
        self.assertEqual(settings.plugs, ("heater", "both"))
        self.assertEqual((settings.topic_prefix, settings.discovery_prefix), ("home/energy", "ha"))
        self.assertEqual((settings.min_interval, settings.max_interval, settings.energy_interval),
                         (0.5, 300.0, 120.0))

    def test_broker_keys_are_the_mqtt_sources(self):
        """One declaration of the broker's keys, with the same bounds, for both."""
        broker = field_table(BrokerSettings)
        for cls in (PublishSettings, MqttSourceSettings):
            table = field_table(cls)
            for key, spec in broker.items():
                self.assertIs(table[key], spec, (cls, key))
        self.assertTrue(issubclass(PublishSettings, BrokerSettings))

    def test_problems_name_the_key_and_line(self):
        cases = {
            "publish:\n  host: h\n  prt: 1\n": "test.yml:11: publish.prt: unknown publish key",
            "publish:\n  host: h\n  port: 0\n": "test.yml:11: publish.port: expected a whole number "
                                                "from 1 to 65535",
            "publish:\n  port: 1\n": "publish: missing required key 'host'",
            "publish:\n  host: h\n  topic_prefix: a/+\n": "publish.topic_prefix: expected topic levels",
            "publish:\n  host: h\n  discovery_prefix: a//b\n": "publish.discovery_prefix:",
            "publish:\n  host: h\n  topic_prefix: $SYS\n": "publish.topic_prefix:",
            "publish:\n  host: h\n  topic_prefix: a/\n": "publish.topic_prefix:",
            "publish:\n  host: h\n  min_interval: 0.01\n": "publish.min_interval: expected a number "
                                                        "from 0.1 to 3600 s",
            "publish:\n  host: h\n  max_interval: 100000\n": "publish.max_interval:",
            "publish:\n  host: h\n  energy_interval: 0\n": "publish.energy_interval:",
            "publish:\n  host: h\n  min_interval: 30\n  max_interval: 10\n":
                "test.yml:12: publish.max_interval: max_interval (10 s) is below min_interval (30 s)",
            "publish:\n  host: h\n  keepalive: 70000\n": "publish.keepalive:",
            "publish:\n  host: h\n  plugs: []\n": "publish.plugs: expected a list of plug ids",
            "publish:\n  host: h\n  plugs: [heater, oven]\n":
                "test.yml:11: publish.plugs: 'oven' is not a plug of this config",
            "publish:\n  host: h\n  discovery: maybe\n": "publish.discovery: expected true or false",
            "publish:\n  host: h\n  tls: {ca_file: /nonexistent/ca.pem}\n": "publish.tls: cannot read "
                                                                           "ca_file",
            "publish: broker.lan\n": "publish: expected a mapping with host",
        }
        for section, expected in cases.items():
            found = problems(section)
            self.assertEqual(len(found), 1, (section, found))
            self.assertIn(expected, found[0], section)

    def test_password_never_in_a_message(self):
        (problem,) = problems("publish:\n  host: h\n  password: [s3cretWord]\n")
        self.assertIn("publish.password", problem)
        self.assertNotIn("s3cretWord", problem)

    def test_password_is_a_secret_of_the_file(self):
        loaded = load("publish:\n  host: h\n  password: s3cretWord\n")
        self.assertEqual(loaded.secrets, [(11, "publish.password")])
        os.environ["SENSELINK_TEST_PUBLISH_PW"] = "fromEnv"
        self.addCleanup(os.environ.pop, "SENSELINK_TEST_PUBLISH_PW")
        loaded = load("publish:\n  host: h\n  password: ${SENSELINK_TEST_PUBLISH_PW}\n")
        self.assertEqual((loaded.settings.publish.password, loaded.secrets), ("fromEnv", []))
