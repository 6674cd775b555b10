"""The responder's protections wired in: allow_from, rate limits, TCP bounds."""

from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from senselink.guard import Guard
from senselink.kasa import cipher, messages
from senselink.plugs import PlugSet
from senselink.replies import SenseReplyCache
from senselink.responder import KasaStreamFactory, Responder
from tests.support import sense, start_service, tcp_connect, udp_client, wait_until

PLUGS = """
sources:
- static:
    plugs:
    - a: {mac: "53:75:31:00:00:01", max_watts: 1}
    - b: {mac: "53:75:31:00:00:02", max_watts: 2}
"""


class AllowFromTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_requests_from_outside_allow_from_are_never_answered(self):
        service = start_service(self, PLUGS + "allow_from: [127.0.0.1/32]\n")
        outsider = udp_client(self, interface="127.0.0.2")
        insider = udp_client(self, interface="127.0.0.1")
        for _ in range(3):
            sense(outsider, service.udp_port)
        # Same path, answered: by then the outsider's requests were handled (and dropped).
        sense(insider, service.udp_port)
        yield insider.wait_for(2)
        sense(insider, service.udp_port)
        yield insider.wait_for(4)
        self.assertEqual(outsider.replies, [])
        self.assertEqual(service.responder.counters.ignored.get("not_allowed"), 3)

    @defer.inlineCallbacks
    def test_tcp_from_outside_allow_from_is_closed(self):
        service = start_service(self, PLUGS + "allow_from: [10.0.0.0/8]\n")
        client = yield tcp_connect(self, service.tcp_port)
        client.request(messages.SENSE_REQUEST)
        yield client.closed
        self.assertEqual(client.frames, [])


class RateLimitTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_over_limit_requests_are_dropped(self):
        # Loopback is exempt by default; here nothing is, and the bucket holds 2.
        service = start_service(
            self, PLUGS + "rate_limit: {requests_per_second: 0.001, burst: 2, exempt: []}\n")
        client = udp_client(self)
        for _ in range(5):
            sense(client, service.udp_port)
        yield client.wait_for(4)
        yield wait_until(lambda: service.responder.counters.ignored.get("rate_limited") == 3)
        # Any reply to the dropped three would be in the client's buffer before the marker's.
        loud = start_service(self, PLUGS.replace("53:75:31", "53:75:32"))
        sense(client, loud.udp_port)
        replies = yield client.wait_for(6)
        self.assertEqual([addr[1] for _, addr in replies[4:]], [loud.udp_port] * 2)
        self.assertEqual(service.responder.counters.ignored.get("rate_limited"), 3)


class TCPBoundsTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_connection_cap(self):
        service = start_service(self, PLUGS)
        service.tcp_factory.max_connections = 2
        first = yield tcp_connect(self, service.tcp_port)
        second = yield tcp_connect(self, service.tcp_port)
        first.request(messages.SENSE_REQUEST)
        second.request(messages.SENSE_REQUEST)
        yield first.wait_for(2)
        yield second.wait_for(2)
        third = yield tcp_connect(self, service.tcp_port)
        yield third.closed
        self.assertEqual(third.frames, [])
        self.assertEqual(service.responder.counters.ignored.get("connection_limit"), 1)

    def make_protocol(self):
        clock = Clock()
        factory = KasaStreamFactory(Responder(SenseReplyCache(PlugSet()), guard=Guard(clock)), clock=clock,
                                    idle_timeout=30)
        protocol = factory.buildProtocol(None)
        transport = StringTransport(peerAddress=None)
        transport.getPeer = lambda: type("A", (), {"host": "127.0.0.1"})()
        protocol.makeConnection(transport)
        return clock, factory, protocol, transport

    def test_idle_connections_close(self):
        clock, factory, protocol, transport = self.make_protocol()
        clock.advance(29)
        protocol.dataReceived(cipher.frame(messages.SENSE_REQUEST_ENCRYPTED))
        clock.advance(29)
        self.assertFalse(transport.disconnecting)
        clock.advance(2)
        self.assertTrue(transport.disconnecting or transport.disconnected)

    def test_client_that_does_not_read_is_not_read_from(self):
        clock, factory, protocol, transport = self.make_protocol()
        self.assertIsNotNone(transport.producer)
        self.assertTrue(transport.streaming)
        transport.producer.pauseProducing()        # what Twisted does when our buffer is full
        self.assertEqual(transport.producerState, "paused")
        transport.producer.resumeProducing()
        self.assertEqual(transport.producerState, "producing")
        protocol.connectionLost(None)
        self.assertEqual(clock.getDelayedCalls(), [])
