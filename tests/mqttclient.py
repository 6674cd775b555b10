"""A bare MQTT client for tests, on our own codec: it sends exactly the packets a test asks
for and keeps every packet the broker sends, so that a real mosquitto judges our bytes
and tests can watch what a publisher left on a broker (retained messages, wills)."""

import os

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol

from senselink.mqtt import encode
from senselink.mqtt.decode import BROKER, Decoder
from senselink.mqtt.packets import Connack, Malformed, Publish, Suback
from tests.support import with_timeout, wait_until


class RawClient(protocol.Protocol):
    """One connection: C{packets} holds what the broker sent, in order."""

    def __init__(self):
        self.decoder = Decoder(BROKER, max_payload=1 << 20)
        self.packets = []
        self.closed = defer.Deferred()
        self.lost = False

    def dataReceived(self, data):
        for packet in self.decoder.feed(data):
            self.packets.append(packet)
            if isinstance(packet, Publish) and packet.qos:
                self.transport.write(encode.puback(packet.packet_id))

    def connectionLost(self, reason):
        self.lost = True
        self.closed.callback(None)

    def send(self, data):
        self.transport.write(data)

    def of(self, kind):
        return [p for p in self.packets if isinstance(p, kind)]

    @property
    def messages(self):
        """C{{topic: payload}} of every PUBLISH received, the latest per topic."""
        return {p.topic: p.payload for p in self.of(Publish)}

    def history(self, topic):
        """Every payload received on C{topic}, in order."""
        return [p.payload for p in self.of(Publish) if p.topic == topic]

    def wait_for(self, predicate, what):
        def check():
            if self.of(Malformed):
                raise AssertionError(f"the broker sent malformed bytes: {self.of(Malformed)}")
            return predicate(self)
        return wait_until(check, what)

    @defer.inlineCallbacks
    def subscribe(self, *topics, packet_id=1):
        """SUBSCRIBE at QoS 1 and wait for the SUBACK."""
        self.send(encode.subscribe(packet_id, [(topic, 1) for topic in topics]))
        yield self.wait_for(lambda c: any(p.packet_id == packet_id for p in c.of(Suback)),
                            f"the SUBACK of {topics}")

    def abort(self):
        """End the TCP connection without a DISCONNECT (the broker then sends the will)."""
        self.transport.abortConnection()
        return self.closed


@defer.inlineCallbacks
def raw_client(testcase, port, client_id, **connect):
    """A L{RawClient} connected to 127.0.0.1:C{port} whose CONNECT was accepted."""
    client = yield with_timeout(connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port),
                                                RawClient()))
    testcase.addCleanup(lambda: None if client.lost else client.abort())
    client.send(encode.connect(client_id, **connect))
    yield client.wait_for(lambda c: c.of(Connack), f"the CONNACK of {client_id}")
    (connack,) = client.of(Connack)
    testcase.assertEqual(connack.return_code, 0)
    return client


@defer.inlineCallbacks
def retained(testcase, port, *topic_filters):
    """C{{topic: payload}} of the retained messages a new subscriber to C{topic_filters} gets
    (all of them: a marker published after the SUBACK arrives after them)."""
    marker = f"test/marker/{id(testcase)}"
    client = yield raw_client(testcase, port, f"watcher-{os.urandom(6).hex()}")
    yield client.subscribe(marker, *topic_filters)
    client.send(encode.publish(marker, b"end"))
    yield client.wait_for(lambda c: c.history(marker), "the marker after the retained messages")
    found = {p.topic: p.payload for p in client.of(Publish) if p.retain}
    client.send(encode.disconnect())
    return found
