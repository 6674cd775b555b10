"""The responder's protections wired in: allow_from, rate limits, TCP bounds."""

import struct

from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from senselink.guard import Guard
from senselink.kasa import cipher, messages
from senselink.plugs import PlugSet
from senselink.replies import SenseReplyCache
from senselink.responder import (FRAME_TIMEOUT, MAX_CONNECTIONS, MAX_PER_ADDRESS,
                                  KasaStreamFactory, Responder)
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

    def test_a_trickled_frame_is_dropped_at_its_deadline(self):
        clock, factory, protocol, transport = self.make_protocol()
        protocol.dataReceived(struct.pack(">I", 60000))
        for _ in range(int(FRAME_TIMEOUT) - 1):
            clock.advance(1)
            protocol.dataReceived(b"\x00")          # each byte resets the idle time-out only
        self.assertFalse(transport.disconnecting or transport.disconnected)
        clock.advance(1)
        self.assertTrue(transport.disconnecting or transport.disconnected)
        self.assertEqual(factory.responder.counters.ignored.get("slow_frame"), 1)

    def test_each_frame_has_its_own_deadline(self):
        clock, factory, protocol, transport = self.make_protocol()
        frame = cipher.frame(messages.SENSE_REQUEST_ENCRYPTED)
        protocol.dataReceived(frame[:5])
        clock.advance(FRAME_TIMEOUT - 1)
        protocol.dataReceived(frame[5:] + frame[:5])   # the first whole, the second begun
        clock.advance(FRAME_TIMEOUT - 1)
        self.assertFalse(transport.disconnecting or transport.disconnected)
        protocol.dataReceived(frame[5:])
        [idle] = clock.getDelayedCalls()               # no frame deadline left, only the idle one
        self.assertEqual(idle.getTime(), clock.seconds() + 30)
        protocol.connectionLost(None)
        self.assertEqual(clock.getDelayedCalls(), [])


class HostileTCPClientTests(unittest.TestCase):
    """Kasa TCP against peers that hold connections open, over real sockets on 127.0.0.1;
    the deadlines run on a Clock."""

    def setUp(self):
        self.service = start_service(self, PLUGS)
        self.clock = Clock()
        self.factory = KasaStreamFactory(self.service.responder, clock=self.clock)
        listening = reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        self.port = listening.getHost().port

    @defer.inlineCallbacks
    def test_trickling_peer_cannot_take_every_slot(self):
        # 64 connections from one address, each announcing a 60000-byte frame, one byte sent.
        hostile = []
        for _ in range(MAX_CONNECTIONS):
            client = yield tcp_connect(self, self.port, source="127.0.0.2")
            client.transport.write(struct.pack(">I", 60000) + b"\x00")
            hostile.append(client)
        refused = MAX_CONNECTIONS - MAX_PER_ADDRESS
        yield wait_until(lambda: sum(c.closed.called for c in hostile) >= refused,
                         "the connections over the per-address cap closed")
        self.assertEqual(self.factory.open.by_peer, {"127.0.0.2": MAX_PER_ADDRESS})
        client = yield tcp_connect(self, self.port)          # a real client, another address
        client.request(messages.SENSE_REQUEST)
        frames = yield client.wait_for(2)
        self.assertEqual(len(frames), 2)
        self.clock.advance(FRAME_TIMEOUT)                   # the held frames are late
        yield wait_until(lambda: all(c.closed.called for c in hostile), "all hostile closed")
        ignored = self.service.responder.counters.ignored
        self.assertEqual((ignored.get("address_limit"), ignored.get("slow_frame")),
                         (refused, MAX_PER_ADDRESS))
        self.assertFalse(client.closed.called)
        self.assertEqual(self.factory.open.by_peer, {"127.0.0.1": 1})
        self.assertEqual([c.frames for c in hostile], [[]] * MAX_CONNECTIONS)

    @defer.inlineCallbacks
    def test_refusals_are_logged_once_a_minute(self):
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        clients = []
        for _ in range(MAX_PER_ADDRESS + 20):
            clients.append((yield tcp_connect(self, self.port, source="127.0.0.3")))
        yield wait_until(lambda: sum(c.closed.called for c in clients) >= 20)
        refusals = [e for e in events if "Refusing a TCP connection" in e.get("log_format", "")]
        self.assertEqual(len(refusals), 1)


class HalfCloseTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_a_client_that_shuts_down_its_sending_side_gets_its_replies(self):
        service = start_service(self, PLUGS)
        for _ in range(10):
            sense_client = yield tcp_connect(self, service.tcp_port)
            sense_client.request(messages.SENSE_REQUEST)
            sense_client.transport.loseWriteConnection()
            kasa_client = yield tcp_connect(self, service.tcp_port)
            kasa_client.request({"system": {"get_sysinfo": {}}})
            kasa_client.transport.loseWriteConnection()
            yield sense_client.closed
            yield kasa_client.closed
            self.assertEqual(len(sense_client.frames), 2)
            self.assertEqual(len(kasa_client.frames), 1)
            self.assertIn("system", kasa_client.frames[0])
        yield wait_until(lambda: not service.tcp_factory.open, "the server side closed")
