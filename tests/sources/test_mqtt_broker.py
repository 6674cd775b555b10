"""The mqtt source against a real mosquitto broker started by each test."""

import os
import shutil
import signal
import tempfile

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import LogLevel, formatEvent
from twisted.trial.unittest import TestCase

from senselink.plugbuilder import build_plugs
from senselink.service import makeService
from senselink.sources.mqtt import MAX_RETRY_DELAY, MqttService
from tests.mosquitto import Broker, make_certificates, started_broker
from tests.sources.mqtt_support import (MARKER, WAIT, BrokerTestCase, CountingPlugs, capture_log,
                                        config_text, load, ours, scheduled_retries)
from tests.support import wait_until


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
        self.assertIn("MQTT home/meter: cannot use b'{\"power\": ' (10 bytes) for the power of "
                      "plug meter: the payload is not JSON; the plug keeps 321.0 W", warnings[0])
        self.assertIn("MQTT home/plain: cannot use b'unavailable' (11 bytes) for the power of plug plain",
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
            return len([line for line in ours(events) if "refuse" in line])

        delays = []
        for attempt in (1, 2, 3):
            yield wait_until(lambda: refusals() == attempt and scheduled_retries(clock),
                             f"refusal {attempt} and a scheduled retry")
            (retry,) = scheduled_retries(clock)
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
        self.assertIn("(CONNACK return code 5)", errors[0])
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
        yield wait_until(lambda: not self.service.connected and scheduled_retries(clock),
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
        self.assertEqual(service.subscribe_requests, 4)
        for start in range(1, 5):
            # Exactly one SUBSCRIBE packet per connection, with every topic.
            log = self.broker.log(start)
            self.assertEqual(log.count(f"New client connected from 127.0.0.1"), 1, start)
            self.assertEqual(log.count(f"Received SUBSCRIBE from {service.client_id}"), 1, start)
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
            yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
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
            yield wait_until(lambda: factory.connects == attempt and scheduled_retries(clock),
                             f"connection {attempt} and a scheduled retry")
            clock.advance(MAX_RETRY_DELAY)
        errors = ours(events, LogLevel.error)
        self.assertTrue(errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{port.getHost().port} sent what MQTT 3.1.1 does "
                      f"not allow here: a CONNACK return code 134, which MQTT 3.1.1 does not "
                      f"define; reconnecting", errors[0])
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
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
        self.assertFalse(self.service.connected)
        warnings = [w for w in ours(events, LogLevel.warn) if "MQTT broker" in w]
        self.assertEqual(len(warnings), 1, warnings)
        self.assertIn(f"127.0.0.1:{broker.port}", warnings[0])
        self.assertIn("certificate verify failed", warnings[0])


class RefusalTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_acl_refuses_one_topic(self):
        events = capture_log(self)
        yield self.start("""
            - allowed:
                power_topic: home/allowed
            - secret:
                power_topic: home/secret
            - also_secret:
                state_topic: home/secret
                max_watts: 5
        """, """
            username: senselink
            password: pw
        """, users={"publisher": "pub", "senselink": "pw"},
            acl={"publisher": [("publishClientSend", "#", True)],
                 "senselink": [("subscribePattern", "home/allowed", True),
                               ("subscribePattern", MARKER, True),
                               ("subscribePattern", "home/secret", False)]})
        self.assertEqual(self.service.subscribed, ["home/allowed", MARKER])
        yield self.publish_and_wait("home/allowed", "17", "allowed", 17.0)
        yield self.broker.publish("home/secret", "99")
        yield self.flush()
        self.assertEqual((self.watts("secret"), self.watts("also_secret")), (0.0, 0.0))
        errors = ours(events, LogLevel.error)
        self.assertEqual(len(errors), 1, errors)
        self.assertIn(f"MQTT broker 127.0.0.1:{self.broker.port} refused the subscription to "
                      f"home/secret for user 'senselink'", errors[0])
        self.assertIn("plugs on it keep their values: secret, also_secret", errors[0])

    @defer.inlineCallbacks
    def test_non_ascii_password(self):
        password = "p\u00e4ssw\u00f6rd \u2603"
        events = capture_log(self)
        yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, f"""
            username: "m\u00e9"
            password: "{password}"
        """, users={"m\u00e9": password})
        yield self.publish_and_wait("home/lamp", "7", "lamp", 7.0)
        self.assertFalse(any(password in repr(e) for e in events))


class HostilePayloadTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_retained_deep_json(self):
        """The issue's retained deep JSON: the connection stays, the other plugs update."""
        events = capture_log(self)
        broker = yield started_broker(self)
        deep = b"[" * 100000 + b"]" * 100000 + b"\n"       # over the 64 KiB limit
        deep_small = b"[" * 30000 + b"]" * 30000            # under it: the depth check
        yield broker.publish("tele/washer/SENSOR", deep, retain=True)
        yield broker.publish("tele/dryer/SENSOR", deep_small, retain=True)
        yield self.start("""
            - washer:
                power_topic: tele/washer/SENSOR
                power_topic_keypath: ENERGY/Power
            - dryer:
                power_topic: tele/dryer/SENSOR
                power_topic_keypath: ENERGY/Power
            - fridge:
                power_topic: home/fridge
        """, broker=broker)
        yield self.publish_and_wait("home/fridge", "80", "fridge", 80.0)
        yield self.publish_and_wait("home/fridge", "81", "fridge", 81.0)
        self.assertEqual((self.watts("washer"), self.watts("dryer")), (0.0, 0.0))
        self.assertTrue(self.service.connected)
        self.assertEqual(broker.connections(self.service.client_id), 1)
        warnings = ours(events, LogLevel.warn)
        self.assertEqual(len(warnings), 2, warnings)
        self.assertIn("(200001 bytes) for the power of plug washer: the payload is over "
                      "max_payload_size (65536 bytes)", warnings[0])
        self.assertIn("(60000 bytes) for the power of plug dryer: the JSON is nested deeper "
                      "than 64 levels", warnings[1])
        self.assertTrue(all(len(w) < 600 for w in warnings), warnings)

    @defer.inlineCallbacks
    def test_ten_megabytes(self):
        events = capture_log(self)
        yield self.start("""
            - meter:
                power_topic: home/meter
        """)
        yield self.publish_and_wait("home/meter", "5", "meter", 5.0)
        yield self.broker.publish("home/meter", b"9" * (10 * 1024 * 1024))
        yield self.flush()
        self.assertEqual(self.watts("meter"), 5.0)
        lines = ours(events)
        about = [line for line in lines if "10485760" in line]
        self.assertEqual(len(about), 1, lines)
        self.assertIn("cannot use b'9999", about[0])
        self.assertLess(len(about[0]), 400)
        self.assertTrue(all(len(line) < 600 for line in lines))
        self.assertEqual(self.broker.connections(self.service.client_id), 1)


class FrozenBrokerTests(BrokerTestCase):

    @defer.inlineCallbacks
    def test_frozen_then_resumed(self):
        events = capture_log(self)
        clock = task.Clock()
        service = yield self.start("""
            - lamp:
                power_topic: home/lamp
        """, "keepalive: 10", clock=clock)
        yield self.publish_and_wait("home/lamp", "1", "lamp", 1.0)
        self.broker.freeze()
        clock.advance(10)                    # PINGREQ, not answered
        clock.advance(4.9)
        self.assertTrue(service.connected)
        clock.advance(0.1)                   # 1.5 keepalives after the last answer
        yield wait_until(lambda: not service.connected, "the frozen broker noticed")
        warnings = ours(events, LogLevel.warn)
        self.assertTrue(any("did not answer a PINGREQ within 5 s; reconnecting" in w
                            for w in warnings), warnings)
        self.assertEqual(self.watts("lamp"), 1.0)
        self.broker.thaw()
        yield wait_until(lambda: scheduled_retries(clock), "a scheduled retry")
        ready = service.when_ready()
        clock.advance(MAX_RETRY_DELAY)
        yield ready.addTimeout(WAIT, reactor)
        yield self.publish_and_wait("home/lamp", "2", "lamp", 2.0)
        self.assertEqual(self.broker.connections(service.client_id), 2)
