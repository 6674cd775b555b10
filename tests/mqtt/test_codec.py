"""The sans-IO MQTT 3.1.1 codec: byte-exact packets, strict decoding, and properties over streams."""

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import TestCase

from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, CLIENT, HEAD, Decoder
from senselink.mqtt.packets import (SUBSCRIPTION_FAILURE, Connack, ConnackCode, Connect,
                                    Disconnect, Malformed, OversizedPublish, PingReq, PingResp,
                                    Puback, Publish, Suback, Subscribe, Will)
from senselink.mqtt.topics import filter_problem, matches

PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True)


def decode_all(data, sender=BROKER, pieces=(), **kwargs):
    """Every packet of C{data} fed in the pieces cut at C{pieces}, in list mode."""
    decoder = Decoder(sender, **kwargs)
    out = []
    cuts = sorted(set(pieces))
    for start, end in zip([0] + cuts, cuts + [len(data)]):
        out += decoder.feed(data[start:end])
    return out


def decode_fast(data, pieces=(), **kwargs):
    """The same through the fast way (C{on_publish}), as the client reads."""
    decoder = Decoder(BROKER, **kwargs)
    out = []

    def on_publish(*fields):
        out.append(Publish(*fields))
    cuts = sorted(set(pieces))
    for start, end in zip([0] + cuts, cuts + [len(data)]):
        packets = decoder.feed(data[start:end], on_publish)
        while packets:
            out += packets
            packets = decoder.feed(b"", on_publish)
    return out


class EncoderTests(TestCase):
    """Bytes as MQTT 3.1.1 spells them."""

    def test_connect(self):
        self.assertEqual(encode.connect("abc", 60),
                         b"\x10\x0f\x00\x04MQTT\x04\x02\x00\x3c\x00\x03abc")
        packet = encode.connect("id", 30, "me", "pässword")
        self.assertEqual(packet[9], 0x02 | 0x80 | 0x40)   # clean session, user name, password
        self.assertTrue(packet.endswith(b"\x00\x02me\x00\x09p\xc3\xa4ssword"))

    def test_connect_with_a_will(self):
        """Will flag 0x04, will QoS in bits 3-4, will retain 0x20 (3.1.2.5-3.1.2.7); the will
        topic and message right after the client id, before user name and password (3.1.3)."""
        self.assertEqual(encode.connect("pub", 30, will=Will("s/avail", b"offline", 1, True)),
                         b"\x10\x21\x00\x04MQTT\x04\x2e\x00\x1e\x00\x03pub"
                         b"\x00\x07s/avail\x00\x07offline")
        packet = encode.connect("c", 60, "u", "p", will=Will("w", b"", 0, False))
        self.assertEqual(packet, b"\x10\x18\x00\x04MQTT\x04\xc6\x00\x3c\x00\x01c"
                                 b"\x00\x01w\x00\x00\x00\x01u\x00\x01p")
        self.assertEqual(encode.connect("c", 60, will=Will("w", b"x", 2))[9], 0x02 | 0x04 | 0x10)
        self.assertRaises(ValueError, encode.connect, "c", 60, will=Will("w/#", b"x"))
        self.assertRaises(ValueError, encode.connect, "c", 60, will=Will("", b"x"))
        self.assertRaises(ValueError, encode.connect, "c", 60, will=Will("w", b"x", 3))
        self.assertRaises(ValueError, encode.connect, "c", 60, will=Will("w", b"x" * 65536))

    def test_publish(self):
        """First byte 0x30 | DUP 0x08 | QoS << 1 | RETAIN 0x01; the packet identifier after
        the topic at QoS 1 only (3.3.1, 3.3.2)."""
        self.assertEqual(encode.publish("a/b", b"on"), b"\x30\x07\x00\x03a/bon")
        self.assertEqual(encode.publish("a/b", b"", retain=True), b"\x31\x05\x00\x03a/b")
        self.assertEqual(encode.publish("a/b", b"on", qos=1, retain=True, packet_id=10),
                         b"\x33\x09\x00\x03a/b\x00\x0aon")
        self.assertEqual(encode.publish("a/b", b"on", qos=1, packet_id=0xABCD, dup=True),
                         b"\x3a\x09\x00\x03a/b\xab\xcdon")
        self.assertEqual(encode.publish("t", b"x" * 200)[:4], b"\x30\xcb\x01\x00")  # 203 = 0x4b | 0x80, 1
        self.assertRaises(ValueError, encode.publish, "a/b", b"", 1)            # no packet id
        self.assertRaises(ValueError, encode.publish, "a/b", b"", 0, False, 1)  # id at QoS 0
        self.assertRaises(ValueError, encode.publish, "a/+", b"")
        self.assertRaises(ValueError, encode.publish, "", b"")
        self.assertRaises(ValueError, encode.publish, "a", b"", 0, False, None, True)  # DUP

    def test_connect_checks(self):
        self.assertRaises(ValueError, encode.connect, "id", 60, None, "pw")
        self.assertRaises(ValueError, encode.connect, "i\0d", 60)
        self.assertRaises(ValueError, encode.connect, "id", 70000)

    def test_subscribe_several_topics(self):
        self.assertEqual(encode.subscribe(1, [("a/b", 0), ("c/#", 1)]),
                         b"\x82\x0e\x00\x01\x00\x03a/b\x00\x00\x03c/#\x01")
        self.assertRaises(ValueError, encode.subscribe, 1, [])
        self.assertRaises(ValueError, encode.subscribe, 0, [("a", 0)])
        self.assertRaises(ValueError, encode.subscribe, 1, [("a", 3)])

    def test_small_packets(self):
        self.assertEqual(encode.pingreq(), b"\xc0\x00")
        self.assertEqual(encode.disconnect(), b"\xe0\x00")
        self.assertEqual(encode.puback(0x1234), b"\x40\x02\x12\x34")
        self.assertEqual(encode.pingresp(), b"\xd0\x00")
        self.assertEqual(encode.connack(ConnackCode.NOT_AUTHORIZED), b"\x20\x02\x00\x05")

    def test_remaining_length(self):
        for length, encoded in ((0, b"\x00"), (127, b"\x7f"), (128, b"\x80\x01"),
                                (16383, b"\xff\x7f"), (16384, b"\x80\x80\x01"),
                                (268_435_455, b"\xff\xff\xff\x7f")):
            self.assertEqual(encode.remaining_length(length), encoded)
        self.assertRaises(ValueError, encode.remaining_length, 268_435_456)


class DecoderTests(TestCase):

    def test_every_connack_code_named(self):
        for code in range(6):
            (packet,) = decode_all(encode.connack(code))
            self.assertEqual(packet, Connack(False, ConnackCode(code)))
            self.assertTrue(packet.return_code.reason)
        self.assertEqual(ConnackCode(4).reason, "bad user name or password")
        self.assertEqual(ConnackCode(5).reason, "not authorised")
        self.assertEqual(ConnackCode(2).reason, "the broker rejected the client id")

    def test_puback_from_the_broker(self):
        self.assertEqual(decode_all(b"\x40\x02\x00\x01" + encode.puback(0xFFFF)),
                         [Puback(1), Puback(0xFFFF)])
        for data, reason in ((b"\x40\x02\x00\x00", "packet identifier 0"),
                             (b"\x40\x03\x00\x01\x00", "PUBACK of 3 bytes"),
                             (b"\x42\x02\x00\x01", "flags")):
            (packet,) = decode_all(data)
            self.assertIsInstance(packet, Malformed)
            self.assertIn(reason, packet.reason)

    def test_suback_failure_code(self):
        (packet,) = decode_all(encode.suback(7, [0, SUBSCRIPTION_FAILURE, 1]))
        self.assertEqual(packet, Suback(7, (0, 0x80, 1)))

    def test_publish_qos_0_and_1(self):
        stream = (encode.publish("a/b", b"12") + encode.publish("a/b", b"", retain=True)
                  + encode.publish("caf\u00e9", b"x" * 300, qos=1, packet_id=9, dup=True))
        self.assertEqual(decode_all(stream), [
            Publish("a/b", b"12"), Publish("a/b", b"", retain=True),
            Publish("caf\u00e9", b"x" * 300, 1, False, 9, True)])
        self.assertEqual(decode_fast(stream), decode_all(stream))

    def test_oversized_payload_skipped(self):
        big = bytes(range(256)) * 400       # 102400 bytes
        stream = (encode.publish("big", big, qos=1, packet_id=3) + encode.publish("a", b"1")
                  + encode.pingresp())
        expected = [OversizedPublish("big", big[:HEAD], len(big), 1, False, 3, False),
                    Publish("a", b"1"), PingResp()]
        for cuts in ((), (1,), (10,), (300,), (5000, 70000), tuple(range(0, len(stream), 1000))):
            decoder = Decoder(BROKER, max_payload=65536)
            out = []
            for start, end in zip((0,) + cuts, cuts + (len(stream),)):
                out += decoder.feed(stream[start:end])
                # Never the whole payload in memory: what waits is bounded.
                self.assertLessEqual(decoder._pending_size, 65536 + 70000)
            self.assertEqual(out, expected, cuts)

    def test_payload_at_the_limit(self):
        for size, kind in ((64, Publish), (65, OversizedPublish)):
            (packet,) = decode_all(encode.publish("a/b/c", b"p" * size), max_payload=64)
            self.assertIs(type(packet), kind)

    def test_malformed(self):
        cases = {
            b"\x20\x02\x00\x06": "CONNACK return code 6",
            b"\x20\x02\x02\x00": "reserved flags",
            b"\x20\x02\x01\x05": "session present",
            b"\x20\x03\x00\x00\x00": "CONNACK of 3 bytes",
            b"\x21\x02\x00\x00": "flags",
            b"\x30\x80\x00": "shortest form",
            b"\x30\xff\xff\xff\xff\x01": "more than four bytes",
            b"\x36\x05\x00\x01a\x00\x01": "QoS 3",
            b"\x38\x04\x00\x01a1": "DUP",
            b"\x32\x05\x00\x01a\x00\x00": "packet identifier 0",
            b"\x30\x03\x00\x00x": "empty topic",
            b"\x30\x04\x00\x02\xff\xfe": "not UTF-8",
            b"\x30\x04\x00\x02a#": "wildcard",
            b"\x30\x04\x00\x02a\x00": "NUL",
            b"\x30\x03\x00\x05a": "shorter than its topic",
            b"\x90\x03\x00\x01\x03": "SUBACK return code 0x3",
            b"\x90\x03\x00\x00\x00": "packet identifier 0",
            b"\x10\x00": "CONNECT packet",
            b"\x82\x00": "SUBSCRIBE packet",
            b"\xf0\x00": "reserved type 15",
            b"\x00\x00": "reserved type 0",
        }
        for data, reason in cases.items():
            out = decode_all(data + encode.publish("a", b"after"))
            self.assertEqual(len(out), 1, (data, out))
            self.assertIsInstance(out[0], Malformed, data)
            self.assertIn(reason, out[0].reason, data)

    def test_nothing_after_malformed(self):
        decoder = Decoder()
        self.assertEqual(decoder.feed(encode.publish("a", b"1") + b"\xf0\x00"),
                         [Publish("a", b"1"), Malformed(
                             "a reserved type 15 packet, which the broker does not send here")])
        self.assertEqual(decoder.feed(encode.publish("a", b"2")), [])
        self.assertTrue(decoder.ended)

    def test_qos_above_the_subscription(self):
        (packet,) = decode_all(encode.publish("a", b"1", qos=1, packet_id=1), max_qos=0)
        self.assertIsInstance(packet, Malformed)
        self.assertIn("QoS 1 PUBLISH on a subscription of QoS 0", packet.reason)

    def test_client_packets(self):
        stream = (encode.connect("c", 10, "u\u00fc", "p\u00e4ss") + encode.subscribe(1, [("a/+", 1)])
                  + encode.pingreq() + encode.puback(4) + encode.disconnect())
        self.assertEqual(decode_all(stream, CLIENT), [
            Connect("c", 10, "u\u00fc", "p\u00e4ss".encode(), True), Subscribe(1, (("a/+", 1),)),
            PingReq(), Puback(4), Disconnect()])
        self.assertIsInstance(decode_all(encode.connack(), CLIENT)[0], Malformed)

    def test_client_publish_and_will(self):
        stream = (encode.connect("p", 30, will=Will("x/avail", b"offline", 1, True))
                  + encode.publish("x/a", b"", retain=True)
                  + encode.publish("x/b", b"12.5", qos=1, retain=True, packet_id=2))
        self.assertEqual(decode_all(stream, CLIENT), [
            Connect("p", 30, will=Will("x/avail", b"offline", 1, True)),
            Publish("x/a", b"", 0, True), Publish("x/b", b"12.5", 1, True, 2)])
        connect = encode.connect("p", 30)
        for flags, reason in ((0x22, "will retain but no will"), (0x0A, "will QoS"),
                              (0x1E, "will QoS 3")):
            (packet,) = decode_all(connect[:9] + bytes((flags,)) + connect[10:], CLIENT)
            self.assertIsInstance(packet, Malformed)
            self.assertIn(reason, packet.reason)

    def test_topics(self):
        self.assertIsNone(filter_problem("home/+/power"))
        self.assertIn("'#' must be a whole last level", filter_problem("a/#/b"))
        self.assertIn("'+' must be a whole level", filter_problem("a/b+"))
        self.assertTrue(matches("a/+/c", "a/b/c"))
        self.assertTrue(matches("a/#", "a"))
        self.assertFalse(matches("+/x", "$SYS/x"))
        self.assertFalse(matches("a/+", "a/b/c"))


# -- properties ------------------------------------------------------------------

text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"),
               max_size=12)
topic_names = text.filter(lambda t: t and "+" not in t and "#" not in t)
packet_ids = st.integers(1, 0xFFFF)

publishes = st.one_of(
    st.builds(Publish, topic_names, st.binary(max_size=300), st.just(0), st.booleans(),
              st.none(), st.just(False)),
    st.builds(Publish, topic_names, st.binary(max_size=300), st.sampled_from([1, 2]),
              st.booleans(), packet_ids, st.booleans()))
broker_packets = st.one_of(
    publishes,
    st.builds(Connack, st.just(False), st.sampled_from(list(ConnackCode))),
    st.builds(Connack, st.just(True), st.just(ConnackCode.ACCEPTED)),
    st.builds(Suback, packet_ids, st.lists(st.sampled_from([0, 1, 2, 0x80]), min_size=1,
                                           max_size=5).map(tuple)),
    st.builds(Puback, packet_ids),
    st.just(PingResp()))
wills = st.none() | st.builds(Will, topic_names, st.binary(max_size=20), st.sampled_from([0, 1, 2]),
                              st.booleans())
topic_filters = text.filter(lambda t: filter_problem(t) is None) | st.sampled_from(
    ["#", "+", "a/+/b", "a/#"])
client_packets = st.one_of(
    st.builds(Connect, text, st.integers(0, 0xFFFF), st.none(), st.none(), st.booleans(), wills),
    st.builds(Connect, text, st.integers(0, 0xFFFF), text, st.none() | st.binary(max_size=20),
              st.booleans(), wills),
    publishes,
    st.builds(Subscribe, packet_ids, st.lists(st.tuples(topic_filters, st.sampled_from([0, 1, 2])),
                                              min_size=1, max_size=4).map(tuple)),
    st.builds(Puback, packet_ids), st.just(PingReq()), st.just(Disconnect()))


class RoundTripProperties(TestCase):

    @PROPERTIES
    @given(st.lists(broker_packets, max_size=8), st.lists(st.integers(0, 4000), max_size=5))
    def test_broker_packets(self, packets, cuts):
        data = b"".join(encode.encode(p) for p in packets)
        self.assertEqual(decode_all(data), packets)
        self.assertEqual(decode_all(data, pieces=[c % (len(data) + 1) for c in cuts]), packets)
        self.assertEqual(decode_fast(data, pieces=[c % (len(data) + 1) for c in cuts]), packets)

    @PROPERTIES
    @given(st.lists(client_packets, max_size=8), st.lists(st.integers(0, 4000), max_size=5))
    def test_client_packets(self, packets, cuts):
        data = b"".join(encode.encode(p) for p in packets)
        self.assertEqual(decode_all(data, CLIENT), packets)
        self.assertEqual(decode_all(data, CLIENT, pieces=[c % (len(data) + 1) for c in cuts]),
                         packets)


class StreamProperties(TestCase):

    def test_every_cut(self):
        """A valid stream cut in two anywhere, and fed byte by byte, decodes the same."""
        packets = [Connack(False, ConnackCode.ACCEPTED), Suback(1, (0, 0x80)),
                   Publish("a/b", b"1"), Publish("a/b", b"x" * 200, 1, True, 5),
                   Publish("t", b"y" * 20000), PingResp(), Publish("\u00e9t\u00e9", b"", 1, False, 6)]
        data = b"".join(encode.encode(p) for p in packets)
        for cut in range(len(data) + 1):
            self.assertEqual(decode_all(data, pieces=[cut]), packets, cut)
            self.assertEqual(decode_fast(data, pieces=[cut]), packets, cut)
        self.assertEqual(decode_all(data, pieces=range(len(data))), packets)
        self.assertEqual(decode_fast(data, pieces=range(len(data))), packets)

    @PROPERTIES
    @given(st.binary(max_size=400), st.lists(st.integers(0, 400), max_size=4))
    def test_random_bytes(self, data, cuts):
        """Anything: packets, then at most one Malformed at the end; cuts change nothing."""
        whole = decode_all(data)
        self.assertEqual(decode_all(data, pieces=[c % (len(data) + 1) for c in cuts]), whole)
        for packet in whole[:-1]:
            self.assertNotIsInstance(packet, Malformed)
        self.assertEqual(decode_fast(data, pieces=[c % (len(data) + 1) for c in cuts]), whole)

    @PROPERTIES
    @given(st.lists(broker_packets, min_size=1, max_size=6), st.data())
    def test_mutated_streams(self, packets, data):
        """A valid stream with bytes changed, inserted or removed never raises; cuts agree."""
        stream = bytearray(b"".join(encode.encode(p) for p in packets))
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(stream)))
            action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
            if action == "insert" or at == len(stream):
                stream[at:at] = bytes([data.draw(st.integers(0, 255))])
            elif action == "flip":
                stream[at] ^= 1 << data.draw(st.integers(0, 7))
            else:
                del stream[at]
        stream = bytes(stream)
        whole = decode_all(stream)
        cut = data.draw(st.integers(0, len(stream)))
        self.assertEqual(decode_all(stream, pieces=[cut]), whole)
        self.assertEqual(decode_fast(stream, pieces=[cut]), whole)
        self.assertFalse(any(isinstance(p, Malformed) for p in whole[:-1]))
