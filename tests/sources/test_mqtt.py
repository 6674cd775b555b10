"""The mqtt source against a real mosquitto broker started by each test."""

import json
import math
import os
import re
import shutil
import tempfile
import textwrap

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import FailTest, SkipTest, TestCase

from senselink import config as config_module
from senselink.config import ConfigError
from senselink.plugs import Plug
from senselink.plugbuilder import build_plugs
from senselink.service import makeService
from senselink.sources import KINDS
from senselink.sources.mqtt import (MAX_RETRY_DELAY, MqttKind, MqttService, default_client_id,
                                    topic_matches)
from tests import mosquitto
from tests.processes import ROOT
from tests.support import wait_until
from tests.mosquitto import Broker, make_certificates, require_mosquitto, started_broker

WAIT = 10.0   # seconds: bound for every wait on the broker
MARKER = "test/marker"   # topic of a plug every broker test has, see BrokerTestCase.flush


def config_text(port, plugs, source=""):
    plugs = textwrap.indent(textwrap.dedent(plugs).strip("\n"), " " * 8)
    source = textwrap.indent(textwrap.dedent(source).strip("\n"), " " * 6)
    return (f"sources:\n- mqtt:\n      host: 127.0.0.1\n      port: {port}\n"
            + (source + "\n" if source.strip() else "")
            + f"      plugs:\n{plugs}\n")


def load(text):
    return config_module.load_text(text, "test.yml")


def capture_log(testcase):
    events = []
    globalLogPublisher.addObserver(events.append)
    testcase.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def ours(events, level=None):
    """Formatted text of our mqtt source's events (optionally of one level)."""
    return [formatEvent(e) for e in events
            if e.get("log_namespace") == "senselink.sources.mqtt"
            and (level is None or e.get("log_level") == level)]


class CountingPlugs:
    """Counts Plug.set_power calls per plug id (the number of updates a plug got)."""

    def __init__(self, testcase):
        self.counts = {}
        original = Plug.set_power

        def counting(plug, watts, on=None):
            self.counts[plug.id] = self.counts.get(plug.id, 0) + 1
            return original(plug, watts, on)
        testcase.patch(Plug, "set_power", counting)

    def __getitem__(self, plug_id):
        return self.counts.get(plug_id, 0)


# ---------------------------------------------------------------- config, no broker


class ConfigTests(TestCase):

    def problems(self, text):
        with self.assertRaises(ConfigError) as caught:
            load(text)
        return str(caught.exception)

    def test_registered(self):
        self.assertIsInstance(KINDS["mqtt"], MqttKind)

    def test_defaults(self):
        config = load(config_text(1883, """
            - lamp:
                power_topic: home/lamp/power
        """).replace("      port: 1883\n", ""))
        source = config.sources[0]
        self.assertEqual(source.options["keepalive"], 60)
        self.assertEqual(source.options["qos"], 0)
        self.assertIsNone(source.options["tls"])
        plug = config.plugs["lamp"]
        self.assertEqual(plug.options["on_state_value"], "on")
        self.assertEqual(plug.options["off_state_value"], "off")
        service = MqttService(source, build_plugs(config, task.Clock()), task.Clock(),
                              reactor=reactor)
        self.assertEqual(service.port, 1883)
        self.assertEqual(service.label, "127.0.0.1:1883")
        self.assertEqual(service.topics, ["home/lamp/power"])

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
        self.assertIn("qos: expected a number <= 1, got 2", text)
        self.assertIn("keepalive: expected a number >= 0", text)
        self.assertIn("password: a password needs a username", text)
        self.assertIn("'#' must be a whole last level", text)

    def test_non_ascii_password(self):
        text = self.problems(config_text(1883, """
            - lamp:
                power_topic: a
        """, """
            username: me
            password: "pässword"
        """))
        self.assertIn("password: the MQTT client library can only send passwords made of "
                      "ASCII characters", text)
        self.assertNotIn("pässword", text)

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


# ---------------------------------------------------------------- against mosquitto


class BrokerTestCase(TestCase):
    timeout = 120

    def setUp(self):
        require_mosquitto()

    @defer.inlineCallbacks
    def start(self, plugs, source="", broker=None, clock=None, ready=True, **broker_args):
        """Start a broker (unless given) and an mqtt source service for C{plugs}."""
        if broker is None:
            broker = yield started_broker(self, **broker_args)
        self.broker = broker
        plugs = textwrap.dedent(plugs).strip("\n") + f"\n- marker:\n    power_topic: {MARKER}\n"
        config = load(config_text(broker.port, plugs, source))
        self.clock = clock if clock is not None else reactor
        self.plugs = build_plugs(config, self.clock)
        service = MqttService(config.sources[0], self.plugs, self.clock, reactor=reactor)
        self.service = service
        service.startService()
        self.addCleanup(service.stopService)
        if ready:
            yield service.when_ready().addTimeout(WAIT, reactor)
        return service

    def watts(self, plug_id):
        return self.plugs[plug_id].watts

    @defer.inlineCallbacks
    def publish_and_wait(self, topic, payload, plug_id, watts, retain=False):
        yield self.broker.publish(topic, payload, retain=retain)
        yield wait_until(lambda: self.watts(plug_id) == watts,
                         f"plug {plug_id} at {watts} W after {payload!r} on {topic} "
                         f"(it has {self.watts(plug_id)} W)")

    @defer.inlineCallbacks
    def flush(self):
        """Wait until every message published before now has been handled.

        The broker forwards messages in the order it received them, so once a
        marker published last has arrived, everything before it has too.
        """
        self.marks = getattr(self, "marks", 0) + 1
        mark = float(self.marks)
        yield self.broker.publish(MARKER, str(mark))
        yield wait_until(lambda: self.plugs["marker"].watts == mark, f"marker {mark} on {MARKER}")


class PowerTopicTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_plain_power(self):
        yield self.start("""
            - heater:
                power_topic: home/heater/power
                max_watts: 2000
        """)
        self.assertEqual(self.watts("heater"), 0.0)
        yield self.publish_and_wait("home/heater/power", "1234.5", "heater", 1234.5)
        self.assertTrue(self.plugs["heater"].on)
        yield self.publish_and_wait("home/heater/power", " 0 \n", "heater", 0.0)
        self.assertFalse(self.plugs["heater"].on)
        self.assertIsNotNone(self.service.last_update)

    @defer.inlineCallbacks
    def test_json_power_keypath(self):
        yield self.start("""
            - washer:
                power_topic: tele/washer/SENSOR
                power_topic_keypath: ENERGY/Power
            - dryer:
                power_topic: tele/dryer/STATUS
                power_topic_keypath: StatusSNS/ENERGY/1
        """)
        yield self.publish_and_wait(
            "tele/washer/SENSOR",
            '{"Time":"2024-01-01T00:00:00","ENERGY":{"Total":12.3,"Power":456,"Voltage":230}}',
            "washer", 456.0)
        yield self.publish_and_wait("tele/dryer/STATUS", '{"StatusSNS":{"ENERGY":[1, "78.5"]}}',
                                    "dryer", 78.5)

    @defer.inlineCallbacks
    def test_two_plugs_on_one_topic(self):
        service = yield self.start("""
            - left:
                power_topic: home/pair
                power_topic_keypath: left
            - right:
                power_topic: home/pair
                power_topic_keypath: right
            - both:
                state_topic: home/pair
                state_topic_keypath: state
                max_watts: 7
        """)
        self.assertEqual(service.topics, ["home/pair", MARKER])
        self.assertEqual(service.subscribed, ["home/pair", MARKER])
        self.assertEqual(self.broker.subscriptions(service.client_id), ["home/pair", MARKER])
        counts = CountingPlugs(self)
        yield self.broker.publish("home/pair", '{"left": 10, "right": 20.5, "state": "on"}')
        yield wait_until(lambda: self.watts("right") == 20.5, "right plug")
        self.assertEqual((self.watts("left"), self.watts("right"), self.watts("both")),
                         (10.0, 20.5, 7.0))
        yield self.flush()
        self.assertEqual((counts["left"], counts["right"], counts["both"]), (1, 1, 1))


    @defer.inlineCallbacks
    def test_qos_1(self):
        yield self.start("""
            - heater:
                power_topic: home/heater/power
        """, "qos: 1")
        yield self.broker.publish("home/heater/power", "1500", qos=1)
        yield wait_until(lambda: self.watts("heater") == 1500.0, "the heater at QoS 1")
        self.assertIn(f"{self.service.client_id} 1 home/heater/power",
                      self.broker.log())   # the broker granted QoS 1
        # and had its PUBACK (mosquitto logs "Received PUBACK from <client> (Mid: N, RC:0)")
        yield wait_until(lambda: f"Received PUBACK from {self.service.client_id}"
                         in self.broker.log(), "the PUBACK at the broker")


class StateTopicTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_plain_state(self):
        yield self.start("""
            - lamp:
                state_topic: home/lamp
                max_watts: 60
                off_usage: 0.5
        """)
        yield self.publish_and_wait("home/lamp", "on", "lamp", 60.0)
        self.assertTrue(self.plugs["lamp"].on)
        yield self.publish_and_wait("home/lamp", "off", "lamp", 0.5)
        self.assertFalse(self.plugs["lamp"].on)
        # A numeric state on a plug without power_topic is watts.
        yield self.publish_and_wait("home/lamp", "12.5", "lamp", 12.5)

    @defer.inlineCallbacks
    def test_custom_state_values_json(self):
        # Shelly Plus style: the switch status as JSON, output true/false.
        yield self.start("""
            - kettle:
                state_topic: shellyplus1pm/status/switch:0
                state_topic_keypath: output
                on_state_value: true
                off_state_value: false
                max_watts: 2200
            - fan:
                state_topic: stat/fan/POWER
                on_state_value: "ON"
                off_state_value: "OFF"
                max_watts: 35
        """)
        yield self.publish_and_wait("shellyplus1pm/status/switch:0",
                                    '{"id":0,"output":true,"apower":0}', "kettle", 2200.0)
        yield self.publish_and_wait("shellyplus1pm/status/switch:0",
                                    '{"id":0,"output":false}', "kettle", 0.0)
        yield self.publish_and_wait("stat/fan/POWER", "ON", "fan", 35.0)
        yield self.publish_and_wait("stat/fan/POWER", "OFF", "fan", 0.0)

    @defer.inlineCallbacks
    def test_state_and_power(self):
        yield self.start("""
            - tv:
                state_topic: home/tv/state
                power_topic: home/tv/power
                max_watts: 150
                off_usage: 2
        """)
        yield self.publish_and_wait("home/tv/power", "87", "tv", 87.0)
        yield self.publish_and_wait("home/tv/state", "off", "tv", 2.0)
        self.assertFalse(self.plugs["tv"].on)
        yield self.publish_and_wait("home/tv/state", "on", "tv", 150.0)
        yield self.publish_and_wait("home/tv/power", "91.5", "tv", 91.5)
        # With a power topic a numeric state is not watts: it changes nothing.
        yield self.broker.publish("home/tv/state", "42")
        yield self.flush()
        self.assertEqual(self.watts("tv"), 91.5)


class AttributeTopicTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_dimmer(self):
        yield self.start("""
            - dimmer:
                state_topic: home/dimmer/state
                attribute_topic: home/dimmer/brightness
                attribute_min: 0
                attribute_max: 255
                min_watts: 5
                max_watts: 65
                off_usage: 0
        """)
        yield self.publish_and_wait("home/dimmer/brightness", "255", "dimmer", 65.0)
        yield self.publish_and_wait("home/dimmer/brightness", "51", "dimmer", 17.0)
        yield self.publish_and_wait("home/dimmer/brightness", "9999", "dimmer", 65.0)  # clamped
        yield self.publish_and_wait("home/dimmer/state", "off", "dimmer", 0.0)
        # While off a new brightness is remembered, not applied.
        yield self.broker.publish("home/dimmer/brightness", "102")
        yield self.flush()
        self.assertEqual(self.watts("dimmer"), 0.0)
        # On again: the last attribute-derived watts stand, not max_watts.
        yield self.publish_and_wait("home/dimmer/state", "on", "dimmer", 29.0)

    @defer.inlineCallbacks
    def test_attribute_json_and_curve(self):
        yield self.start("""
            - bulb:
                attribute_topic: zigbee2mqtt/bulb
                attribute_topic_keypath: brightness
                power_curve: [[0, 0], [128, 4], [254, 10]]
        """)
        yield self.publish_and_wait("zigbee2mqtt/bulb", '{"state":"ON","brightness":191}',
                                    "bulb", 7.0)
        yield self.publish_and_wait("zigbee2mqtt/bulb", '{"state":"ON","brightness":254}',
                                    "bulb", 10.0)


class RetainedTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_retained_values_at_start(self):
        broker = yield started_broker(self)
        yield broker.publish("home/fridge/power", "95.5", retain=True)
        yield broker.publish("home/lamp", "on", retain=True)
        yield broker.publish("home/dimmer", '{"brightness": 128}', retain=True)
        yield self.start("""
            - fridge:
                power_topic: home/fridge/power
            - lamp:
                state_topic: home/lamp
                max_watts: 40
            - dimmer:
                attribute_topic: home/dimmer
                attribute_topic_keypath: brightness
                attribute_max: 256
                max_watts: 100
        """, broker=broker, ready=False)
        yield wait_until(lambda: (self.watts("fridge"), self.watts("lamp"),
                                  self.watts("dimmer")) == (95.5, 40.0, 50.0),
                         "retained values")


class BadPayloadTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_bad_payloads_change_nothing(self):
        events = capture_log(self)
        yield self.start("""
            - meter:
                power_topic: home/meter
                power_topic_keypath: power
            - plain:
                power_topic: home/plain
        """)
        yield self.publish_and_wait("home/meter", '{"power": 321}', "meter", 321.0)
        yield self.publish_and_wait("home/plain", "12", "plain", 12.0)
        counts = CountingPlugs(self)
        for payload in ['{"power": ', '{"watts": 5}', '{"power": "lots"}', b'\xff\xfe{"power": 1}',
                        '{"power": null}', '{"power": [1]}', '{"power": Infinity}']:
            yield self.broker.publish("home/meter", payload)
        for payload in ["unavailable", b"\xc3\x28", "", "nan", "-"]:
            yield self.broker.publish("home/plain", payload)
        yield self.flush()
        self.assertEqual(self.watts("meter"), 321.0)
        self.assertEqual(self.watts("plain"), 12.0)
        self.assertEqual(counts["meter"] + counts["plain"], 0)
        warnings = ours(events, LogLevel.warn)
        self.assertEqual(len(warnings), 2, warnings)
        self.assertIn("MQTT home/meter: cannot use b'{\"power\": ' for the power of plug meter: "
                      "the payload is not JSON; the plug keeps 321.0 W", warnings[0])
        self.assertIn("MQTT home/plain: cannot use b'unavailable' for the power of plug plain",
                      warnings[1])
        # Good again: logged as resolved; the next bad payload is logged again.
        yield self.publish_and_wait("home/meter", '{"power": 5}', "meter", 5.0)
        self.assertTrue(any("home/meter: the power of plug meter is readable again" in line
                            for line in ours(events, LogLevel.info)))
        yield self.broker.publish("home/meter", b"\xff")
        yield self.flush()
        warnings = ours(events, LogLevel.warn)
        self.assertEqual(len(warnings), 3, warnings)
        self.assertIn("the payload is not UTF-8 text", warnings[2])
        self.assertEqual(self.watts("meter"), 5.0)

    @defer.inlineCallbacks
    def test_unknown_state(self):
        events = capture_log(self)
        yield self.start("""
            - tv:
                state_topic: home/tv/state
                power_topic: home/tv/power
                max_watts: 100
        """)
        yield self.publish_and_wait("home/tv/state", "on", "tv", 100.0)
        yield self.broker.publish("home/tv/state", "standby")
        yield self.broker.publish("home/tv/state", "standby")
        yield self.flush()
        self.assertEqual(self.watts("tv"), 100.0)
        warnings = ours(events, LogLevel.warn)
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn("state 'standby' is neither 'on' nor 'off'", warnings[0])


class TimeoutTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_timeout_duration(self):
        clock = task.Clock()
        yield self.start("""
            - printer:
                power_topic: office/printer/power
                off_usage: 1.5
                timeout_duration: 300
        """, clock=clock)
        yield self.publish_and_wait("office/printer/power", "250", "printer", 250.0)
        clock.advance(299)
        self.assertEqual(self.watts("printer"), 250.0)
        yield self.publish_and_wait("office/printer/power", "260", "printer", 260.0)
        clock.advance(299)   # the new value restarted the timer
        self.assertEqual(self.watts("printer"), 260.0)
        clock.advance(2)
        self.assertEqual(self.watts("printer"), 1.5)
        self.assertFalse(self.plugs["printer"].on)
        yield self.publish_and_wait("office/printer/power", "240", "printer", 240.0)


class CredentialTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_password(self):
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, """
            username: senselink
            password: "s3cret-pw"
        """, users={"senselink": "s3cret-pw"})
        yield self.publish_and_wait("home/lamp", "7", "lamp", 7.0)

    @defer.inlineCallbacks
    def test_wrong_password(self):
        events = capture_log(self)
        clock = task.Clock()
        broker = yield started_broker(self, users={"senselink": "right-pw"})
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, """
            username: senselink
            password: "Wr0ng-pw"
        """, broker=broker, clock=clock, ready=False)
        service = self.service

        def refusals():
            return len([e for e in events if "refuse" in formatEvent(e)
                        and e.get("log_namespace") == "senselink.sources.mqtt"])

        delays = []
        for attempt in (1, 2, 3):
            yield wait_until(lambda: refusals() == attempt and clock.getDelayedCalls(),
                             f"refusal {attempt} and a scheduled retry")
            (retry,) = clock.getDelayedCalls()
            delays.append(retry.getTime() - clock.seconds())
            clock.advance(delays[-1])
        self.assertFalse(service.connected)
        self.assertLess(delays[0], delays[1])
        self.assertLess(delays[1], delays[2])
        self.assertTrue(all(1.0 <= d <= MAX_RETRY_DELAY for d in delays), delays)
        errors = ours(events, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{broker.port} refused the connection for user "
                      f"'senselink'", errors[0])
        self.assertIn("CONNACK code", errors[0])
        self.assertTrue(service.last_error.startswith(
            f"127.0.0.1:{broker.port} refused the connection for user 'senselink'"),
            service.last_error)
        self.assertNotIn("Wr0ng-pw", service.last_error)
        for event in events:
            self.assertNotIn("Wr0ng-pw", formatEvent(event))
            self.assertNotIn("Wr0ng-pw", repr(event))
        # The back-off is capped.
        for attempt in (20, 500):
            self.assertTrue(MAX_RETRY_DELAY - 1 <= service.retry_delay(attempt) <= MAX_RETRY_DELAY)


class ReconnectTests(BrokerTestCase):

    PLUGS = """
        - a:
            power_topic: home/a
        - b:
            power_topic: home/shared
            power_topic_keypath: b
        - c:
            power_topic: home/shared
            power_topic_keypath: c
        - d:
            state_topic: home/d
            max_watts: 10
    """

    @defer.inlineCallbacks
    def reconnect(self, clock):
        """Wait for the loss, let the retry timer run, wait for the new subscriptions."""
        yield wait_until(lambda: not self.service.connected and clock.getDelayedCalls(),
                         "the lost connection and a scheduled retry")
        ready = self.service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def test_broker_restarted_three_times(self):
        clock = task.Clock()
        service = yield self.start(self.PLUGS, clock=clock)
        topics = ["home/a", "home/shared", "home/d", MARKER]
        self.assertEqual(service.topics, topics)
        for restart in range(3):
            self.broker.kill()
            yield self.broker.start()
            yield self.reconnect(clock)
        self.assertEqual(self.broker.starts, 4)
        for start in range(1, 5):
            self.assertEqual(self.broker.subscriptions(service.client_id, start), topics,
                             f"broker start {start}")
        self.assertEqual(service.subscribed, topics)
        self.assertEqual(service.subscribe_requests, 4 * len(topics))
        counts = CountingPlugs(self)
        before = service.messages
        yield self.broker.publish("home/a", "11")
        yield self.broker.publish("home/shared", '{"b": 22, "c": 33}')
        yield self.broker.publish("home/d", "on")
        yield self.flush()
        self.assertEqual(service.messages - before, 4)   # three messages and the marker
        self.assertEqual([self.watts(p) for p in "abcd"], [11.0, 22.0, 33.0, 10.0])
        self.assertEqual([counts[p] for p in "abcd"], [1, 1, 1, 1])

    @defer.inlineCallbacks
    def test_reconnects_on_its_own(self):
        # The real reactor's clock: the first retry comes 1.5 to 2.5 s after the loss.
        service = yield self.start(self.PLUGS)
        yield self.publish_and_wait("home/a", "1", "a", 1.0)
        self.broker.kill()
        yield wait_until(lambda: not service.connected, "the lost connection")
        self.assertEqual(self.watts("a"), 1.0)
        yield self.broker.start()
        yield service.when_ready().addTimeout(WAIT, reactor)
        yield self.publish_and_wait("home/a", "2", "a", 2.0)
        self.assertEqual(self.broker.subscriptions(service.client_id),
                         ["home/a", "home/shared", "home/d", MARKER])

    @defer.inlineCallbacks
    def test_published_while_disconnected(self):
        events = capture_log(self)
        clock = task.Clock()
        yield self.start(self.PLUGS, clock=clock)
        yield self.publish_and_wait("home/a", "5", "a", 5.0)
        yield self.publish_and_wait("home/shared", '{"b": 6, "c": 7}', "c", 7.0)
        yield self.publish_and_wait("home/d", "on", "d", 10.0)
        self.broker.stop()
        yield wait_until(lambda: not self.service.connected, "the lost connection")
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 10.0])
        yield self.broker.start()
        # The broker is back but the client waits for its retry timer: these
        # are published while it is disconnected.
        yield self.broker.publish("home/a", "999")                      # lost: not retained
        yield self.broker.publish("home/shared", "garbage", retain=True)  # retained, unreadable
        yield self.broker.publish("home/d", "off", retain=True)         # retained, good
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 10.0])
        counts = CountingPlugs(self)
        yield self.reconnect(clock)
        yield self.flush()
        self.assertEqual([self.watts(p) for p in "abcd"], [5.0, 6.0, 7.0, 0.0])
        self.assertEqual([counts[p] for p in "abcd"], [0, 0, 0, 1])
        warnings = ours(events, LogLevel.warn)
        self.assertTrue(any("Lost the connection to MQTT broker" in w for w in warnings), warnings)
        self.assertEqual(len([w for w in warnings if "cannot use b'garbage'" in w]), 2, warnings)


class ServiceTreeTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_in_the_daemon(self):
        broker = yield started_broker(self)
        yield broker.publish("home/oven", "1800", retain=True)
        config = load(config_text(broker.port, """
            - oven:
                power_topic: home/oven
                mac: 53:75:31:00:00:01
        """) + "- static:\n    plugs:\n    - base:\n        max_watts: 3\n"
               "        mac: 53:75:31:00:00:02\n")
        daemon = makeService(config, port=0, interface="127.0.0.1", reactor=reactor)
        daemon.startService()
        self.addCleanup(daemon.stopService)
        (source,) = daemon.sources
        self.assertIsInstance(source, MqttService)
        self.assertEqual(source.kind, "mqtt")
        yield wait_until(lambda: daemon.plugs["oven"].watts == 1800.0, "the retained oven power")
        self.assertTrue(source.connected)


class ConnectionTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_broker_down_at_start(self):
        events = capture_log(self)
        clock = task.Clock()
        broker = Broker()
        self.addCleanup(broker.cleanup)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, broker=broker, clock=clock, ready=False)
        for attempt in range(3):
            yield wait_until(lambda: clock.getDelayedCalls(), "a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        yield wait_until(lambda: clock.getDelayedCalls(), "a scheduled retry")
        warnings = [w for w in ours(events, LogLevel.warn) if "Cannot connect" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"Cannot connect to MQTT broker 127.0.0.1:{broker.port}", warnings[0])
        self.assertFalse(self.service.connected)
        yield broker.start()
        yield broker.publish("home/lamp", "3", retain=True)
        ready = self.service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)
        yield wait_until(lambda: self.watts("lamp") == 3.0, "the retained lamp power")


class _NonsenseBroker(Protocol):
    """Answers CONNECT with a CONNACK return code MQTT 3.1.1 does not define."""

    def dataReceived(self, data):
        self.factory.connects += 1
        self.transport.write(b"\x20\x02\x00\x86")


class NonsenseTests(TestCase):

    @defer.inlineCallbacks
    def test_unknown_connack_code(self):
        events = capture_log(self)
        factory = Factory.forProtocol(_NonsenseBroker)
        factory.connects = 0
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        config = load(config_text(port.getHost().port, """
            - lamp:
                power_topic: home/lamp
        """))
        clock = task.Clock()
        plugs = build_plugs(config, clock)
        service = MqttService(config.sources[0], plugs, clock, reactor=reactor)
        service.startService()
        self.addCleanup(service.stopService)
        for attempt in (1, 2):
            yield wait_until(lambda: factory.connects == attempt and clock.getDelayedCalls(),
                             f"connection {attempt} and a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        errors = ours(events, LogLevel.error)
        self.assertTrue(errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{port.getHost().port} sent what the MQTT client "
                      f"cannot handle", errors[0])
        self.assertFalse(service.connected)
        self.assertEqual(plugs["lamp"].watts, 0.0)


class TLSTests(BrokerTestCase):

    @defer.inlineCallbacks
    def tls_broker(self, require_certificate=False):
        directory = tempfile.mkdtemp(prefix="senselink-tls-")
        self.addCleanup(shutil.rmtree, directory, ignore_errors=True)
        files = make_certificates(directory)
        broker = yield started_broker(self, tls={
            "ca_file": files["ca_file"], "cert_file": files["server_cert"],
            "key_file": files["server_key"], "require_certificate": require_certificate})
        return broker, files

    @defer.inlineCallbacks
    def test_tls_with_ca_file(self):
        broker, files = yield self.tls_broker()
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            tls:
              ca_file: {files["ca_file"]}
        """, broker=broker)
        yield broker.publish("home/lamp", "21", extra=["--cafile", files["ca_file"]])
        yield wait_until(lambda: self.watts("lamp") == 21.0, "the lamp power over TLS")

    @defer.inlineCallbacks
    def test_tls_client_certificate(self):
        broker, files = yield self.tls_broker(require_certificate=True)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            tls:
              ca_file: {files["ca_file"]}
              cert_file: {files["client_cert"]}
              key_file: {files["client_key"]}
        """, broker=broker)
        yield broker.publish("home/lamp", "22", extra=[
            "--cafile", files["ca_file"], "--cert", files["client_cert"],
            "--key", files["client_key"]])
        yield wait_until(lambda: self.watts("lamp") == 22.0, "the lamp power over TLS")

    @defer.inlineCallbacks
    def test_untrusted_broker(self):
        events = capture_log(self)
        clock = task.Clock()
        broker, files = yield self.tls_broker()
        # Trusting only the system's CAs, the test CA's server is refused.
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, "tls: true", broker=broker, clock=clock, ready=False)
        yield wait_until(lambda: clock.getDelayedCalls(), "a scheduled retry")
        self.assertFalse(self.service.connected)
        warnings = [w for w in ours(events, LogLevel.warn) if "MQTT broker" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"127.0.0.1:{broker.port}", warnings[0])
        self.assertIn("certificate verify failed", warnings[0])


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
        self.service._message(topic, bytearray(payload))
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
                seen.update(k for k in plug.options if k.endswith("_topic")
                            and plug.options[k] is not None)
                seen.update(k for k in ("timeout_duration", "power_topic_keypath",
                                        "attribute_topic_keypath", "state_topic_keypath")
                            if plug.options.get(k) is not None)
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
        service = KINDS["mqtt"].make_service(config.sources[0], plugs, clock)
        service._message("home/dryer/power", b"100")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 100, 100])
        service._message("home/washer/power", b"50")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 50])
        service._message("home/washer/state", b"7")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 7])
        service._message("garden/power", b"9")
        self.assertEqual([plugs[p].watts for p in ("exact", "plus", "hash")], [100, 50, 7])


def _packet(first, body):
    """An MQTT packet: first byte, remaining length (1-4 bytes), body."""
    length, encoded = len(body), b""
    while True:
        length, digit = divmod(length, 128)
        encoded += bytes([digit | (0x80 if length else 0)])
        if not length:
            return bytes([first]) + encoded + body


def _publish(topic, payload, qos=0, msg_id=0, retain=False):
    topic = topic.encode("utf-8")
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += msg_id.to_bytes(2, "big")
    return _packet(0x30 | (qos << 1) | int(retain), body + payload)


class _Framing:
    """The connection's own MQTT packet reader (PUBLISH is not left to the library).

    A StringTransport stands in for the socket so that the stream can be cut
    at every byte; the broker tests above cover the same code over TCP.
    """

    PLUGS = """
        - small:
            power_topic: home/small
        - json:
            power_topic: home/json
            power_topic_keypath: a/power
        - heater:
            power_topic: home/heater
    """

    def connection(self, source=""):
        from twisted.internet.testing import StringTransport

        from senselink.sources.mqtt import _ClientFactory
        config = load(config_text(1883, self.PLUGS, source))
        self.clock = task.Clock()
        self.plugs = build_plugs(config, self.clock)
        service = MqttService(config.sources[0], self.plugs, self.clock, reactor=self.clock)
        connection = _ClientFactory(service).buildProtocol(None)
        transport = StringTransport()
        connection.makeConnection(transport)
        # (stops the library's keepalive LoopingCall, which runs on the global reactor)
        self.addCleanup(connection.connectionLost, Failure(ConnectionError("test over")))
        self.assertEqual(transport.value()[:1], b"\x10")            # CONNECT
        transport.clear()
        connection.dataReceived(b"\x20\x02\x00\x00")                 # CONNACK: accepted
        sent = transport.value()
        self.assertEqual(sent[:2], b"\xc0\x00")                     # PINGREQ (keepalive)
        self.assertEqual(sent[2:3], b"\x82")                        # SUBSCRIBE, all topics
        transport.clear()
        connection.dataReceived(_packet(0x90, sent[4:6] + b"\x00\x00\x00"))  # SUBACK
        self.assertTrue(service.connected)
        return service, connection, transport



class FramingTests(_Framing, TestCase):

    def stream(self):
        document = json.dumps({"a": {"power": 42.5}, "padding": "x" * 20000}).encode()
        return [
            _publish("home/small", b"5"),
            _publish("home/json", document),                     # 3-byte remaining length
            _publish("home/heater", b" 1500 \n", qos=1, msg_id=0x1234),
            _packet(0xD0, b""),                                 # PINGRESP, to the library
            _publish("home/small", b"7" * 1 + b"." + b"0" * 200),  # 2-byte remaining length
            _publish("home/other", b"ignored", retain=True),
            _publish("home/heater", b"1600", qos=1, msg_id=0xBEEF),
        ]

    def check_received(self, service, transport, pieces, what):
        self.assertIsNone(service.last_update)
        self.clock.advance(5)
        for piece in pieces:
            service.connection_under_test.dataReceived(piece)
        watts = {p: self.plugs[p].watts for p in ("small", "json", "heater")}
        self.assertEqual(watts, {"small": 7.0, "json": 42.5, "heater": 1600.0}, what)
        self.assertEqual(service.messages, 6, what)
        self.assertEqual(service.last_update, self.clock.seconds(), what)
        self.assertEqual(transport.value(), b"\x40\x02\x12\x34\x40\x02\xbe\xef", what)  # PUBACKs
        self.assertFalse(transport.disconnecting, what)

    def test_split_anywhere(self):
        data = b"".join(self.stream())
        big = len(self.stream()[0])
        # Every cut in and around the packet headers; every 97th in the big payload.
        cuts = sorted(set(range(big + 40)) | set(range(big, len(data), 97))
                      | set(range(len(data) - 400, len(data) + 1)))
        for cut in cuts:
            service, connection, transport = self.connection("qos: 1")
            service.connection_under_test = connection
            self.check_received(service, transport, [data[:cut], data[cut:]], cut)

    def test_byte_by_byte(self):
        data = b"".join(self.stream())
        service, connection, transport = self.connection("qos: 1")
        service.connection_under_test = connection
        self.check_received(service, transport, [data[i:i + 1] for i in range(len(data))],
                            "byte by byte")

    def test_malformed_packets_close_the_connection(self):
        for bad in (_packet(0x30, b"\x00"),                       # no room for the topic length
                    _packet(0x30, b"\x00\x09home"),                # topic longer than the packet
                    _packet(0x32, b"\x00\x04home\x00"),            # QoS 1 without a message id
                    _packet(0x36, b"\x00\x04home1"),                # QoS 3
                    _packet(0x30, b"\x00\x02\xff\xfe1"),            # topic not UTF-8
                    b"\x30\xff\xff\xff\xff\x01",                      # remaining length > 4 bytes
                    b"\x00\x00", b"\xf0\x00", b"\x10\x00", b"\xe0\x00"):  # not from a broker
            events = capture_log(self)
            service, connection, transport = self.connection()
            connection.dataReceived(_publish("home/small", b"3") + bad + _publish("home/small",
                                                                                  b"4"))
            self.assertEqual(self.plugs["small"].watts, 3.0, bad)   # the last good value stays
            self.assertTrue(transport.disconnecting, bad)
            errors = ours(events, LogLevel.error)
            self.assertEqual(len(errors), 1, (bad, errors))
            self.assertIn("MQTT broker 127.0.0.1:1883 sent what the MQTT client cannot handle",
                          errors[0])


FRAMING = settings(max_examples=150, deadline=None, derandomize=True)
messages = st.lists(st.tuples(
    st.sampled_from(["home/small", "home/json", "home/heater", "home/other", "h\u00e9"]),
    st.one_of(st.binary(max_size=40), st.integers(0, 10 ** 6).map(lambda i: b"%d" % i),
              st.integers(0, 300).map(lambda n: json.dumps({"a": {"power": n},
                                                            "pad": "x" * n * 50}).encode())),
    st.sampled_from([0, 1]), st.booleans()), max_size=25)


class FramingProperties(_Framing, TestCase):
    """Whatever the broker sends and however TCP cuts it, the reader agrees with itself."""

    def deliver(self, packets, pieces):
        service, connection, transport = self.connection("qos: 1")
        data = b"".join(packets)
        for start, end in zip([0] + pieces, pieces + [len(data)]):
            connection.dataReceived(data[start:end])
        return ({p.id: p.watts for p in self.plugs}, service.messages, transport.value(),
                transport.disconnecting)

    @FRAMING
    @given(messages, st.lists(st.integers(0, 10 ** 5), max_size=6))
    def test_any_cuts_same_result(self, sent, cuts):
        packets = [_publish(topic, payload, qos, msg_id=i + 1, retain=retain)
                   for i, (topic, payload, qos, retain) in enumerate(sent)]
        size = len(b"".join(packets))
        pieces = sorted({c % (size + 1) for c in cuts})
        whole = self.deliver(packets, [])
        self.assertEqual(self.deliver(packets, pieces), whole)
        self.assertEqual(whole[1], len(sent))           # every message read
        self.assertFalse(whole[3])                      # nothing malformed
        acks = [i + 1 for i, message in enumerate(sent) if message[2] == 1]
        self.assertEqual(whole[2], b"".join(b"\x40\x02" + i.to_bytes(2, "big") for i in acks))

    @FRAMING
    @given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4))
    def test_garbage_never_escapes(self, garbage, cuts):
        """Bytes that are not MQTT close the connection with a log line, or wait for more."""
        events = capture_log(self)
        service, connection, transport = self.connection()
        before = {p.id: p.watts for p in self.plugs}
        pieces = sorted({c % (len(garbage) + 1) for c in cuts})
        for start, end in zip([0] + pieces, pieces + [len(garbage)]):
            connection.dataReceived(garbage[start:end])     # must not raise
        if transport.disconnecting:
            errors = ours(events, LogLevel.error)
            self.assertEqual(len(errors), 1, errors)
            self.assertIn("sent what the MQTT client cannot handle", errors[0])
        for plug in self.plugs:
            self.assertTrue(plug.watts == before[plug.id]
                            or (math.isfinite(plug.watts) and plug.watts >= 0))
