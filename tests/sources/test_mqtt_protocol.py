"""One MQTT session of the mqtt source, byte for byte, on a StringTransport and a task.Clock.

The broker's side is written with the codec's encoders and what the client
sends is read with its CLIENT decoder; the broker tests cover the same code
over TCP against mosquitto.
"""

import json
import math

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase

from senselink.mqtt import encode
from senselink.mqtt.decode import CLIENT, Decoder
from senselink.mqtt.packets import ConnackCode, Connect, Disconnect, PingReq, Puback, Subscribe
from senselink.plugbuilder import build_plugs
from senselink.sources.mqtt import MqttService
from senselink.mqttsession import HANDSHAKE_TIMEOUT
from senselink.sources.mqtt.protocol import MqttClientFactory
from tests.sources.mqtt_support import capture_log, config_text, load, ours

PLUGS = """
    - small:
        power_topic: home/small
    - json:
        power_topic: home/json
        power_topic_keypath: a/power
    - heater:
        power_topic: home/heater
    - other:
        state_topic: home/+/state
        max_watts: 10
"""
TOPICS = ["home/small", "home/json", "home/heater", "home/+/state"]


class Session:
    """A service, one protocol of it on a StringTransport, and what the client sent."""

    def __init__(self, testcase, source="", plugs=PLUGS):
        config = load(config_text(1883, plugs, source))
        self.clock = task.Clock()
        self.plugs = build_plugs(config, self.clock)
        self.service = MqttService(config.sources[0], self.plugs, self.clock, reactor=self.clock)
        self.protocol = MqttClientFactory(self.service).buildProtocol(None)
        self.transport = StringTransport()
        self.protocol.makeConnection(self.transport)
        self.sent_decoder = Decoder(CLIENT)
        self.lost = False
        testcase.addCleanup(self.lose)

    def sent(self):
        """The packets the client sent since the last call."""
        data = self.transport.value()
        self.transport.clear()
        return self.sent_decoder.feed(data)

    def receive(self, *pieces):
        for piece in pieces:
            self.protocol.dataReceived(piece)

    def accept(self, codes=None):
        """CONNACK accepted, then the SUBACK of the SUBSCRIBE the client sent."""
        self.sent()
        self.receive(encode.connack())
        (subscribe,) = self.sent()
        self.receive(encode.suback(subscribe.packet_id, codes or [0] * len(subscribe.topics)))
        return subscribe

    def lose(self):
        if not self.lost:
            self.lost = True
            self.protocol.connectionLost(Failure(ConnectionError("test over")))

    def watts(self):
        return {plug.id: plug.watts for plug in self.plugs}


class HandshakeTests(TestCase):

    def test_connect_then_one_subscribe(self):
        session = Session(self, 'username: "m\u00e9"\npassword: "p\u00e4ss \u2603"\nkeepalive: 30')
        (connect,) = session.sent()
        self.assertEqual(connect, Connect(session.service.client_id, 30, "m\u00e9",
                                          "p\u00e4ss \u2603".encode("utf-8"), True))
        session.receive(encode.connack())
        self.assertFalse(session.service.connected)
        (subscribe,) = session.sent()
        self.assertEqual(subscribe, Subscribe(1, tuple((topic, 0) for topic in TOPICS)))
        session.receive(encode.suback(1, [0, 0, 0, 0]))
        self.assertTrue(session.service.connected)
        self.assertEqual(session.service.subscribed, TOPICS)
        self.assertEqual(session.sent(), [])

    def test_refused_subscription(self):
        events = capture_log(self)
        session = Session(self)
        session.accept([0, 0x80, 0, 0])
        self.assertTrue(session.service.connected)
        self.assertEqual(session.service.subscribed, ["home/small", "home/heater", "home/+/state"])
        (error,) = ours(events, LogLevel.error)
        self.assertIn("MQTT broker 127.0.0.1:1883 refused the subscription to home/json", error)
        self.assertIn("plugs on it keep their values: json", error)
        session.receive(encode.publish("home/small", b"5"))
        self.assertEqual(session.plugs["small"].watts, 5.0)

    def test_refused_connect_names_the_reason_never_the_password(self):
        reasons = {ConnackCode.UNACCEPTABLE_PROTOCOL_VERSION: "does not accept MQTT 3.1.1",
                   ConnackCode.IDENTIFIER_REJECTED: "rejected the client id",
                   ConnackCode.SERVER_UNAVAILABLE: "service is unavailable",
                   ConnackCode.BAD_USER_NAME_OR_PASSWORD: "bad user name or password",
                   ConnackCode.NOT_AUTHORIZED: "not authorised"}
        for code, reason in reasons.items():
            events = capture_log(self)
            session = Session(self, "username: me\npassword: s3cret-pw")
            session.receive(encode.connack(code))
            self.assertTrue(session.transport.disconnecting)
            (error,) = ours(events, LogLevel.error)
            self.assertIn("MQTT broker 127.0.0.1:1883 refused the connection for user 'me': ",
                          error)
            self.assertIn(reason, error)
            self.assertIn(f"(CONNACK return code {int(code)})", error)
            self.assertFalse(any("s3cret-pw" in repr(e) for e in events))
            session.lose()

    def test_no_connack(self):
        events = capture_log(self)
        session = Session(self)
        session.clock.advance(HANDSHAKE_TIMEOUT - 0.1)
        self.assertFalse(session.transport.disconnecting)
        session.clock.advance(0.1)
        self.assertTrue(session.transport.disconnecting)
        self.assertIn("did not answer the CONNECT within 10 s", ours(events, LogLevel.warn)[0])

    def test_no_suback(self):
        session = Session(self)
        session.sent()
        session.receive(encode.connack())
        session.clock.advance(HANDSHAKE_TIMEOUT)
        self.assertTrue(session.transport.disconnecting)

    def test_publish_before_connack(self):
        events = capture_log(self)
        session = Session(self)
        session.receive(encode.publish("home/small", b"5"))
        self.assertTrue(session.transport.disconnecting)
        self.assertEqual(session.plugs["small"].watts, 0.0)
        self.assertIn("a PUBLISH before its CONNACK", ours(events, LogLevel.error)[0])


class KeepaliveTests(TestCase):

    def test_pings_on_the_clock(self):
        session = Session(self, "keepalive: 10")
        session.accept()
        session.clock.advance(9.9)
        self.assertEqual(session.sent(), [])
        for _ in range(3):
            session.clock.advance(0.1)          # every 10 s: a PINGREQ
            self.assertEqual(session.sent(), [PingReq()])
            session.clock.advance(4)
            session.receive(encode.pingresp())
            session.clock.advance(5.9)
            self.assertEqual(session.sent(), [])
            self.assertFalse(session.transport.disconnecting)

    def test_silent_broker_noticed_within_one_and_a_half_keepalives(self):
        events = capture_log(self)
        session = Session(self, "keepalive: 10")
        session.accept()
        session.clock.advance(10)            # its last answer was at 0; a PINGREQ now
        self.assertEqual(session.sent(), [PingReq()])
        session.clock.advance(4.9)
        self.assertFalse(session.transport.disconnecting)
        session.receive(encode.publish("home/small", b"5"))   # messages are no PINGRESP
        session.clock.advance(0.1)
        self.assertTrue(session.transport.disconnecting)
        self.assertIn("did not answer a PINGREQ within 5 s; reconnecting",
                      ours(events, LogLevel.warn)[0])

    def test_timers_die_with_the_connection(self):
        session = Session(self, "keepalive: 10")
        session.accept()
        session.clock.advance(10)
        self.assertTrue(session.clock.getDelayedCalls())
        session.lose()
        self.assertEqual(session.clock.getDelayedCalls(), [])

    def test_no_keepalive(self):
        session = Session(self, "keepalive: 0")
        session.accept()
        self.assertEqual(session.clock.getDelayedCalls(), [])

    def test_disconnect_on_stop(self):
        session = Session(self)
        session.accept()
        session.service.stopService()
        self.assertEqual(session.sent(), [Disconnect()])
        self.assertTrue(session.transport.disconnecting)


def stream():
    document = json.dumps({"a": {"power": 42.5}, "padding": "x" * 20000}).encode()
    return [
        encode.publish("home/small", b"5"),
        encode.publish("home/json", document),                      # 3-byte remaining length
        encode.publish("home/heater", b" 1500 \n", qos=1, packet_id=0x1234),
        encode.pingresp(),
        encode.publish("home/small", b"7." + b"0" * 200),            # 2-byte remaining length
        encode.publish("home/other", b"ignored", retain=True),
        encode.publish("home/x/state", b"on"),
        encode.publish("home/heater", b"1600", qos=1, packet_id=0xBEEF),
    ]


EXPECTED = {"small": 7.0, "json": 42.5, "heater": 1600.0, "other": 10.0}


class MessageTests(TestCase):

    def check(self, pieces, what):
        session = Session(self, "qos: 1\nkeepalive: 5")
        session.accept()
        session.clock.advance(5)        # a PINGREQ: the PINGRESP of the stream answers it
        session.receive(*pieces)
        self.assertEqual(session.watts(), EXPECTED, what)
        self.assertEqual(session.service.messages, 7, what)
        self.assertEqual(session.service.last_update, 5, what)
        self.assertEqual(session.sent(), [PingReq(), Puback(0x1234), Puback(0xBEEF)], what)
        self.assertFalse(session.transport.disconnecting, what)
        session.lose()

    def test_split_anywhere(self):
        data = b"".join(stream())
        big = len(stream()[0])
        cuts = sorted(set(range(big + 40)) | set(range(big, len(data), 97))
                      | set(range(len(data) - 400, len(data) + 1)))
        for cut in cuts:
            self.check([data[:cut], data[cut:]], cut)

    def test_byte_by_byte(self):
        data = b"".join(stream())
        self.check([data[i:i + 1] for i in range(len(data))], "byte by byte")

    def test_malformed_closes_with_one_line(self):
        for bad in (b"\x30\x01\x00", b"\x30\x04\x00\x09ho", b"\x32\x05\x00\x01h\x00\x00",
                    b"\x36\x05\x00\x01h\x00\x01", b"\x30\x05\x00\x02\xff\xfe1",
                    b"\x30\xff\xff\xff\xff\x01", b"\x00\x00", b"\xf0\x00", b"\x10\x00",
                    b"\xe0\x00", b"\x20\x02\x00\x00"):
            events = capture_log(self)
            session = Session(self)
            session.accept()
            session.receive(encode.publish("home/small", b"3") + bad
                            + encode.publish("home/small", b"4"))
            self.assertEqual(session.plugs["small"].watts, 3.0, bad)
            self.assertTrue(session.transport.disconnecting, bad)
            errors = ours(events, LogLevel.error)
            self.assertEqual(len(errors), 1, (bad, errors))
            self.assertIn("MQTT broker 127.0.0.1:1883 sent what MQTT 3.1.1 does not allow here",
                          errors[0])
            session.lose()

    def test_puback_to_a_subscriber(self):
        """A subscriber publishes nothing: a PUBACK is for a packet it never sent."""
        events = capture_log(self)
        session = Session(self)
        session.accept()
        session.receive(encode.puback(5))
        self.assertTrue(session.transport.disconnecting)
        self.assertIn("a PUBACK for packet 5, which was not sent", ours(events, LogLevel.error)[0])

    def test_qos_1_message_on_a_qos_0_subscription(self):
        events = capture_log(self)
        session = Session(self)
        session.accept()
        session.receive(encode.publish("home/small", b"3", qos=1, packet_id=1))
        self.assertTrue(session.transport.disconnecting)
        self.assertIn("QoS 1 PUBLISH on a subscription of QoS 0", ours(events, LogLevel.error)[0])

    def test_oversized_payload(self):
        events = capture_log(self)
        session = Session(self, "qos: 1\nmax_payload_size: 1024")
        session.accept()
        big = encode.publish("home/small", b"9" * 5000, qos=1, packet_id=7)
        session.receive(encode.publish("home/small", b"5"), big[:3000])
        session.receive(big[3000:4000], big[4000:] + encode.publish("home/heater", b"12"))
        self.assertEqual(session.plugs["small"].watts, 5.0)
        self.assertEqual(session.plugs["heater"].watts, 12.0)
        self.assertEqual(session.sent(), [Puback(7)])
        (warning,) = ours(events, LogLevel.warn)
        self.assertIn("(5000 bytes) for the power of plug small: the payload is over "
                      "max_payload_size (1024 bytes)", warning)
        self.assertFalse(session.transport.disconnecting)


class GarbageProperties(TestCase):
    """Whatever the broker sends and however TCP cuts it, nothing escapes."""

    @settings(max_examples=150, deadline=None, derandomize=True)
    @given(st.binary(max_size=300), st.lists(st.integers(0, 300), max_size=4))
    def test_garbage_never_escapes(self, garbage, cuts):
        events = capture_log(self)
        session = Session(self)
        session.accept()
        before = session.watts()
        pieces = sorted({c % (len(garbage) + 1) for c in cuts})
        for start, end in zip([0] + pieces, pieces + [len(garbage)]):
            session.receive(garbage[start:end])          # must not raise
        if session.transport.disconnecting:
            errors = ours(events, LogLevel.error)
            self.assertEqual(len(errors), 1, errors)
        for plug in session.plugs:
            self.assertTrue(plug.watts == before[plug.id]
                            or (math.isfinite(plug.watts) and plug.watts >= 0))
        session.lose()
