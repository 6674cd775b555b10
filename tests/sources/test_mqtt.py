"""The mqtt source without a broker: config, routing, payloads, the README's examples."""

import json
import math
import os
import re
import shutil
import tempfile

from dataclasses import FrozenInstanceError, replace

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor, task
from twisted.trial.unittest import FailTest, SkipTest, TestCase

from senselink.config import ConfigError
from senselink.mqtt.decode import DEFAULT_MAX_PAYLOAD
from senselink.plugbuilder import build_plugs
from senselink.sources import default_kinds
from senselink.sources.mqtt import MqttKind, MqttService, default_client_id, topic_matches
from senselink.sources.mqtt.settings import MqttPlugSettings, MqttSourceSettings, TlsSettings
from tests import mosquitto
from tests.mosquitto import make_certificates, require_mosquitto
from tests.processes import ROOT
from tests.sources.mqtt_support import config_text, load


class ConfigTests(TestCase):

    def problems(self, text):
        with self.assertRaises(ConfigError) as caught:
            load(text)
        return str(caught.exception)

    def test_registered(self):
        self.assertIsInstance(default_kinds()["mqtt"], MqttKind)

    def test_defaults(self):
        config = load(config_text(1883, """
            - lamp:
                power_topic: home/lamp/power
        """).replace("      port: 1883\n", ""))
        source = config.sources[0]
        self.assertEqual(source.settings.keepalive, 60)
        self.assertEqual(source.settings.qos, 0)
        self.assertIsNone(source.settings.tls)
        plug = config.plugs["lamp"]
        self.assertEqual(plug.settings.on_state_value, "on")
        self.assertEqual(plug.settings.off_state_value, "off")
        service = MqttService(source, build_plugs(config, task.Clock()), task.Clock(),
                              reactor=reactor)
        self.assertEqual(service.port, 1883)
        self.assertEqual(service.label, "127.0.0.1:1883")
        self.assertEqual(service.topics, ["home/lamp/power"])

    def test_settings_are_frozen_with_declared_defaults(self):
        config = load(config_text(1883, """
            - lamp:
                power_topic: p
        """).replace("      port: 1883\n", ""))
        source, plug = config.sources[0], config.plugs["lamp"]
        self.assertIsInstance(source.settings, MqttSourceSettings)
        self.assertIsInstance(plug.settings, MqttPlugSettings)
        self.assertEqual(source.settings, MqttSourceSettings(host="127.0.0.1"))
        self.assertEqual((source.settings.port, source.settings.broker_port,
                          source.settings.client_id, source.settings.max_payload_size),
                         (None, 1883, None, DEFAULT_MAX_PAYLOAD))
        declared = MqttPlugSettings(power_topic="p")
        self.assertEqual(replace(plug.settings, mac=None, device_id=None), declared)
        self.assertEqual((declared.on_state_value, declared.off_state_value, declared.voltage,
                          declared.power_keypaths, declared.timeout_duration),
                         ("on", "off", 120.0, None, None))
        with self.assertRaises(FrozenInstanceError):
            source.settings.qos = 1
        with self.assertRaises(FrozenInstanceError):
            plug.settings.power_topic = "q"

    def test_tls_settings(self):
        self.assertEqual(MqttSourceSettings(host="h", tls=TlsSettings()).broker_port, 8883)
        self.assertEqual(MqttSourceSettings(host="h", port=1, tls=TlsSettings()).broker_port, 1)
        config = load(config_text(1883, """
            - lamp:
                power_topic: p
        """, "tls: true"))
        self.assertEqual(config.sources[0].settings.tls, TlsSettings())
        with self.assertRaises(FrozenInstanceError):
            config.sources[0].settings.tls.ca_file = "x"

    def test_tls_default_port(self):
        config = load(config_text(1883, """
            - lamp:
                power_topic: p
        """, "tls: true").replace("      port: 1883\n", ""))
        service = MqttService(config.sources[0], build_plugs(config, task.Clock()), task.Clock(),
                              reactor=reactor)
        self.assertEqual(service.port, 8883)

    def test_client_id_stable(self):
        text = config_text(1883, """
            - lamp:
                power_topic: p
        """)
        first = default_client_id(load(text).sources[0])
        self.assertEqual(first, default_client_id(load(text).sources[0]))
        other = default_client_id(load(text.replace("127.0.0.1", "127.0.0.2")).sources[0])
        self.assertNotEqual(first, other)
        self.assertTrue(first.startswith("senselink-"))
        self.assertLessEqual(len(first), 23)   # the length every MQTT 3.1.1 broker accepts

    def test_no_topic(self):
        text = self.problems(config_text(1883, """
            - lamp:
                max_watts: 40
        """))
        self.assertIn("test.yml:6: sources[0].mqtt.plugs[0].lamp: an mqtt plug needs "
                      "power_topic, state_topic or attribute_topic", text)

    def test_power_and_attribute_topic(self):
        text = self.problems(config_text(1883, """
            - lamp:
                power_topic: a
                attribute_topic: b
                attribute_max: 255
        """))
        self.assertIn("test.yml:6:", text)
        self.assertIn("power_topic and attribute_topic cannot be used together", text)

    def test_attribute_needs_scale(self):
        text = self.problems(config_text(1883, """
            - lamp:
                attribute_topic: b
        """))
        self.assertIn("attribute_topic needs attribute_max", text)

    def test_keypath_without_topic(self):
        text = self.problems(config_text(1883, """
            - lamp:
                state_topic: s
                power_topic_keypath: ENERGY/Power
        """))
        self.assertIn("power_topic_keypath needs power_topic", text)

    def test_bad_source_keys(self):
        text = self.problems(config_text(1883, """
            - lamp:
                power_topic: a/#/b
        """, """
            qos: 2
            password: x
            keepalive: -1
        """))
        self.assertIn("qos: expected a whole number from 0 to 1, got 2", text)
        self.assertIn("keepalive: expected a whole number from 0 to 65535, got -1", text)
        self.assertIn("password: a password needs a username", text)
        self.assertIn("'#' must be a whole last level", text)

    def test_any_utf8_password(self):
        config = load(config_text(1883, """
            - lamp:
                power_topic: a
        """, """
            username: "mé"
            password: "pässword ☃"
            max_payload_size: 1024
        """))
        source = config.sources[0].settings
        self.assertEqual((source.username, source.password, source.max_payload_size),
                         ("mé", "pässword ☃", 1024))

    def test_nul_in_user_name(self):
        text = self.problems(config_text(1883, """
            - lamp:
                power_topic: a
        """, """
            username: "a\\0b"
            max_payload_size: 8
        """))
        self.assertIn("username: an MQTT user name must not contain NUL", text)
        self.assertIn("max_payload_size: expected a whole number from 16 to 16777216, got 8", text)

    def test_tls_mapping(self):
        text = self.problems(config_text(1883, """
            - lamp:
                power_topic: a
        """, """
            tls:
              ca_file: /nonexistent/ca.pem
        """))
        self.assertIn("tls: cannot read ca_file '/nonexistent/ca.pem': No such file or directory",
                      text)

    def test_tls_not_pem(self):
        with tempfile.NamedTemporaryFile(suffix=".pem") as junk:
            junk.write(b"not a certificate")
            junk.flush()
            text = self.problems(config_text(1883, """
                - lamp:
                    power_topic: a
            """, f"""
                tls:
                  ca_file: {junk.name}
                  cert_file: {junk.name}
                  key_file: {junk.name}
            """))
        self.assertIn(f"tls: ca_file {junk.name!r} holds no PEM certificate", text)

    def test_topic_matches(self):
        self.assertTrue(topic_matches("a/b", "a/b"))
        self.assertFalse(topic_matches("a/b", "a/c"))
        self.assertTrue(topic_matches("a/+/c", "a/b/c"))
        self.assertFalse(topic_matches("a/+/c", "a/b/d"))
        self.assertTrue(topic_matches("a/#", "a/b/c"))
        self.assertTrue(topic_matches("a/#", "a"))
        self.assertFalse(topic_matches("+/x", "$SYS/x"))
        self.assertFalse(topic_matches("a/+", "a/b/c"))


class PayloadPropertyTests(TestCase):
    """Whatever arrives, a plug ends up with finite, non-negative watts or unchanged."""

    def setUp(self):
        config = load(config_text(1883, """
            - plain:
                state_topic: t/plain
                max_watts: 50
            - json:
                power_topic: t/json
                power_topic_keypath: a/0/b
            - dimmer:
                attribute_topic: t/dim
                attribute_max: 255
                max_watts: 60
        """))
        self.clock = task.Clock()
        self.plugs = build_plugs(config, self.clock)
        self.service = MqttService(config.sources[0], self.plugs, self.clock, reactor=reactor)

    json_values = st.recursive(
        st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
        lambda inner: (st.lists(inner, max_size=3)
                       | st.dictionaries(st.sampled_from("ab0"), inner, max_size=3)),
        max_leaves=8)

    @given(topic=st.sampled_from(["t/plain", "t/json", "t/dim", "t/other"]),
           payload=st.one_of(st.binary(max_size=64),
                             st.text(max_size=32).map(lambda t: t.encode("utf-8")),
                             json_values.map(lambda v: json.dumps(v).encode("utf-8"))))
    @settings(max_examples=300, deadline=None)
    def test_any_payload(self, topic, payload):
        before = {plug.id: plug.watts for plug in self.plugs}
        self.service.router.message(topic, bytearray(payload))
        for plug in self.plugs:
            watts = plug.watts
            self.assertTrue(watts == before[plug.id] or (math.isfinite(watts) and watts >= 0),
                            (plug.id, payload, watts))
        if topic == "t/other":
            self.assertEqual(before, {plug.id: plug.watts for plug in self.plugs})


class HelperTests(TestCase):
    """The broker helper's skip / fail decision where mosquitto is missing."""

    def test_missing_broker_skips(self):
        self.patch(mosquitto, "MOSQUITTO", None)
        self.patch(os, "environ", {k: v for k, v in os.environ.items() if k != "CI"})
        with self.assertRaises(SkipTest) as caught:
            require_mosquitto()
        self.assertIn("apt-get install mosquitto", str(caught.exception))

    def test_missing_broker_fails_under_ci(self):
        self.patch(mosquitto, "MOSQUITTO", None)
        self.patch(os, "environ", dict(os.environ, CI="true"))
        with self.assertRaises(FailTest) as caught:
            require_mosquitto()
        self.assertIn("apt-get install mosquitto", str(caught.exception))


class ReadmeTests(TestCase):

    def test_examples_load(self):
        readme = os.path.join(ROOT,
                              "README.md")
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        section = text.split("## MQTT source", 1)[1].split("\n## ", 1)[0]
        blocks = re.findall(r"```yaml\n(.*?)```", section, re.S)
        self.assertGreaterEqual(len(blocks), 4)
        directory = tempfile.mkdtemp(prefix="senselink-tls-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        ca_file = make_certificates(directory)["ca_file"]
        self.patch(os, "environ", dict(os.environ, MQTT_PASSWORD="from-the-environment"))
        seen = set()
        for block in blocks:
            config = load(block.replace("/etc/senselink/mqtt-ca.pem", ca_file))
            for plug in config.plugs.values():
                seen.update(k for k in ("power_topic", "state_topic", "attribute_topic",
                                        "timeout_duration", "power_topic_keypath",
                                        "attribute_topic_keypath", "state_topic_keypath")
                            if getattr(plug.settings, k) is not None)
        self.assertEqual(seen, {"power_topic", "state_topic", "attribute_topic",
                                "power_topic_keypath", "attribute_topic_keypath",
                                "state_topic_keypath", "timeout_duration"})


class TopicRoutingTests(TestCase):
    """Exact topics and wildcard filters both reach their plugs (no broker needed)."""

    def test_exact_and_wildcard_topics(self):
        from twisted.internet.task import Clock
        from senselink.plugbuilder import build_plugs
        from tests.support import config_from_text
        config = config_from_text("""
sources:
- mqtt:
    host: 127.0.0.1
    plugs:
    - exact: {mac: "53:75:31:00:10:01", power_topic: home/dryer/power}
    - plus: {mac: "53:75:31:00:10:02", power_topic: home/+/power}
    - hash: {mac: "53:75:31:00:10:03", power_topic: "home/#"}
""")
        clock = Clock()
        plugs = build_plugs(config, clock)
        service = default_kinds()["mqtt"].make_service(config.sources[0], plugs, clock)
        service.router.message("home/dryer/power", b"100")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 100, 100])
        service.router.message("home/washer/power", b"50")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 50])
        service.router.message("home/washer/state", b"7")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 7])
        service.router.message("garden/power", b"9")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 7])


class PayloadTests(TestCase):
    """Values out of payloads, bounded whatever arrives."""

    def setUp(self):
        from twisted.logger import globalLogPublisher
        config = load(config_text(1883, """
            - washer:
                power_topic: tele/washer/SENSOR
                power_topic_keypath: ENERGY/Power
            - dryer:
                power_topic: tele/dryer/SENSOR
            - raw:
                power_topic: "raw/#"
        """))
        self.clock = task.Clock()
        self.plugs = build_plugs(config, self.clock)
        self.service = MqttService(config.sources[0], self.plugs, self.clock, reactor=reactor)
        self.router = self.service.router
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def warnings(self):
        from twisted.logger import LogLevel, formatEvent
        return [formatEvent(e) for e in self.events if e.get("log_level") == LogLevel.warn
                and str(e.get("log_namespace")).startswith("senselink.sources.mqtt")]

    def test_too_deep(self):
        from senselink.jsondepth import too_deep
        from senselink.sources.mqtt.payload import MAX_DEPTH
        self.assertFalse(too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH, MAX_DEPTH))
        self.assertTrue(too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), MAX_DEPTH))
        self.assertTrue(too_deep("[" * 100000, MAX_DEPTH))
        self.assertFalse(too_deep('["' + "[" * 1000 + '"]', MAX_DEPTH))     # brackets in a string
        self.assertFalse(too_deep('["\\"' + "[" * 1000 + '"]', MAX_DEPTH))  # after an escaped quote
        self.assertFalse(too_deep("[]" * 10000, MAX_DEPTH))                  # wide, not deep
        # An unclosed string with many escaped quotes stays linear (no regex backtracking).
        self.assertTrue(too_deep("[" * 100 + '"' + '\\"' * 30000, MAX_DEPTH))

    def test_deep_json_keeps_the_value(self):
        self.router.message("tele/washer/SENSOR", b'{"ENERGY": {"Power": 450}}')
        deep = b"[" * 100000 + b"]" * 100000
        for _ in range(3):
            self.assertFalse(self.router.message("tele/washer/SENSOR", deep))
        self.assertTrue(self.router.message("tele/dryer/SENSOR", b"12"))
        self.assertEqual((self.plugs["washer"].watts, self.plugs["dryer"].watts), (450.0, 12.0))
        (warning,) = self.warnings()
        self.assertIn("nested deeper than 64 levels", warning)
        self.assertIn("(200000 bytes)", warning)
        self.assertLess(len(warning), 600)
        # Good again, then bad again: logged again.
        self.router.message("tele/washer/SENSOR", b'{"ENERGY": {"Power": 460}}')
        self.router.message("tele/washer/SENSOR", b'{"ENERGY": 5}')
        self.assertEqual(len(self.warnings()), 2)
        self.assertIn("nothing at keypath 'ENERGY/Power'", self.warnings()[1])
        self.assertEqual(self.plugs["washer"].watts, 460.0)

    def test_long_text_payload_bounded_in_the_log(self):
        self.router.message("tele/dryer/SENSOR", b"x" * 60000)
        (warning,) = self.warnings()
        self.assertIn("(60000 bytes)", warning)
        self.assertLess(len(warning), 700)

    def test_oversized(self):
        self.router.oversized("tele/washer/SENSOR", b"\xff" * 200, 10 * 1024 * 1024)
        (warning,) = self.warnings()
        self.assertIn("(10485760 bytes)", warning)
        self.assertIn("over max_payload_size (65536 bytes)", warning)
        self.assertLess(len(warning), 500)

    def test_payloads_and_topics_in_the_log_are_excerpts(self):
        # As in every log line: at most 200 characters of what arrived, then its full size.
        self.router.message("tele/dryer/SENSOR", b"\xff" * 1000)
        self.router.message("raw/" + "\x07" * 500, b"nope")
        self.router.message("raw/" + "t" * 500, b"\xff")
        self.router.message("raw/short", b"nope")
        binary, bell, long, short = self.warnings()
        self.assertIn(f"cannot use {repr(bytes(200 * [255]))[:200]}… (1000 bytes) for the power",
                      binary)
        self.assertIn(f"MQTT {repr('raw/' + 500 * chr(7))[:200]}… (504 characters): cannot use b'nope' ",
                      bell)
        self.assertIn(f"MQTT raw/{196 * 't'}… (504 characters): cannot use b'\\xff' ", long)
        self.assertIn("MQTT raw/short: cannot use b'nope' for the power of plug raw: ", short)
