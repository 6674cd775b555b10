"""The mqtt source's messages against a real mosquitto broker started by each test."""

from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel

from senselink.service import makeService
from senselink.sources.mqtt import MqttService
from tests.mosquitto import started_broker
from tests.sources.mqtt_support import (MARKER, BrokerTestCase, CountingPlugs, capture_log,
                                        config_text, load, ours)
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
        self.assertIn("MQTT home/meter: cannot use b'{\"power\": ' for the power of "
                      "plug meter: the payload is not JSON; the plug keeps 321.0 W", warnings[0])
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
