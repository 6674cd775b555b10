"""Our codec's PUBLISH, PUBACK and will through a real mosquitto: the broker judges the bytes."""

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from senselink.mqtt import encode
from senselink.mqtt.packets import Puback, Publish, Will
from tests.mosquitto import require_mosquitto, started_broker
from tests.mqttclient import raw_client


class RoundTripTests(TestCase):
    timeout = 60

    def setUp(self):
        require_mosquitto()

    @defer.inlineCallbacks
    def test_publish_qos_0_and_1_retained(self):
        broker = yield started_broker(self)
        publisher = yield raw_client(self, broker.port, "pub")
        publisher.send(encode.publish("rt/plain", b"1500"))
        publisher.send(encode.publish("rt/kept", b"0.25", qos=1, retain=True, packet_id=7))
        yield publisher.wait_for(lambda c: Puback(7) in c.packets, "the PUBACK of packet 7")
        # A subscriber that comes later gets the retained message only, with RETAIN set.
        watcher = yield raw_client(self, broker.port, "watch")
        yield watcher.subscribe("rt/#")
        yield watcher.wait_for(lambda c: c.of(Publish), "the retained message")
        (message,) = watcher.of(Publish)
        self.assertEqual((message.topic, message.payload, message.retain, message.qos),
                         ("rt/kept", b"0.25", True, 1))
        # Live messages reach it without RETAIN; an empty retained one clears the topic.
        publisher.send(encode.publish("rt/plain", b"20", qos=1, packet_id=8))
        publisher.send(encode.publish("rt/kept", b"", retain=True))
        yield watcher.wait_for(lambda c: len(c.of(Publish)) == 3, "two live messages")
        self.assertEqual([(p.topic, p.payload) for p in watcher.of(Publish)[1:]],
                         [("rt/plain", b"20"), ("rt/kept", b"")])
        late = yield raw_client(self, broker.port, "late")
        yield late.subscribe("rt/#", "marker")
        publisher.send(encode.publish("marker", b"x"))
        yield late.wait_for(lambda c: c.of(Publish), "the marker")
        self.assertEqual([p.topic for p in late.of(Publish)], ["marker"])  # nothing retained

    @defer.inlineCallbacks
    def test_will_on_a_lost_connection_only(self):
        broker = yield started_broker(self)
        watcher = yield raw_client(self, broker.port, "watch")
        yield watcher.subscribe("dev/+/status")
        will = Will("dev/a/status", b"offline", 1, True)
        first = yield raw_client(self, broker.port, "dev-a", keepalive=30, will=will)
        first.send(encode.publish("dev/a/status", b"online", qos=1, retain=True, packet_id=1))
        yield first.wait_for(lambda c: Puback(1) in c.packets, "the PUBACK")
        yield first.abort()
        yield watcher.wait_for(lambda c: c.history("dev/a/status") == [b"online", b"offline"],
                               "the will")
        # The will was retained: a newcomer sees offline. A DISCONNECT discards the will.
        newcomer = yield raw_client(self, broker.port, "new")
        yield newcomer.subscribe("dev/a/status")
        yield newcomer.wait_for(lambda c: c.of(Publish), "the retained will")
        self.assertEqual(newcomer.messages, {"dev/a/status": b"offline"})
        second = yield raw_client(self, broker.port, "dev-b",
                                  will=Will("dev/b/status", b"offline", 0, True))
        second.send(encode.publish("dev/b/status", b"online", retain=True))
        second.send(encode.disconnect())
        yield second.closed
        marker = yield raw_client(self, broker.port, "marker")
        marker.send(encode.publish("dev/z/status", b"end"))
        yield watcher.wait_for(lambda c: c.history("dev/z/status"), "the marker")
        self.assertEqual(watcher.history("dev/b/status"), [b"online"])
