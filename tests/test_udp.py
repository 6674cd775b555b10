"""Kasa over UDP on a wildcard address: replies from the address asked, copies answered once.

Loopback has a whole network of local addresses (127.0.0.0/8), so a request
sent to 127.0.0.2 is a request to a secondary address: before, the reply
left from 127.0.0.1, the address the routing table prefers.
"""


from twisted.internet import defer, reactor
from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink.config import load_text
from senselink.plugbuilder import build_plugs
from senselink.replies import SenseReplyCache
from senselink.responder import Responder
from senselink.sources import default_kinds
from senselink.udp import KasaDatagramProtocol
from senselink.udpport import ArrivalListener
from tests.support import (UDPClient, has_ipv6_loopback, sense, start_service, tcp_connect,
                           udp_client, wait_until)

PLUGS = """
sources:
- static:
    plugs:
    - NAS: {alias: "NAS Server", mac: "53:75:31:00:00:01", max_watts: 15}
    - Fan: {alias: "Fan", mac: "53:75:31:00:00:02", max_watts: 5}
"""


def sources(replies):
    return {addr[0] for _, addr in replies}


class WildcardTests(unittest.TestCase):

    @defer.inlineCallbacks
    def test_ipv4_wildcard_answers_from_the_address_asked(self):
        service = start_service(self, PLUGS, interface="0.0.0.0")
        for address in ("127.0.0.2", "127.0.0.1", "127.0.0.3"):
            client = udp_client(self)
            sense(client, service.udp_port, host=address)
            replies = yield client.wait_for(2)
            self.assertEqual(sources(replies), {address})

    @defer.inlineCallbacks
    def test_dual_stack_udp_and_tcp(self):
        """Listening on :: answers IPv4 (from the address asked) and IPv6, over UDP and TCP."""
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this machine has no IPv6 loopback (::1)")
        service = start_service(self, PLUGS, interface="::")
        client = udp_client(self)
        sense(client, service.udp_port, host="127.0.0.2")
        replies = yield client.wait_for(2)
        self.assertEqual(sources(replies), {"127.0.0.2"})   # plain IPv4, not ::ffff:127.0.0.2
        client6 = udp_client(self, interface="::1")
        sense(client6, service.udp_port, host="::1")
        replies = yield client6.wait_for(2)
        self.assertEqual(sources(replies), {"::1"})
        tcp = yield tcp_connect(self, service.tcp_port)
        tcp.request({"system": {"get_sysinfo": {}}})
        frames = yield tcp.wait_for(1)
        self.assertEqual(frames[0]["system"]["get_sysinfo"]["model"], "HS300(US)")

    @defer.inlineCallbacks
    def test_dual_stack_target_is_ipv4(self):
        """On ::, an IPv4 target is reached (as an IPv4-mapped address)."""
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this machine has no IPv6 loopback (::1)")
        service = start_service(self, "target: 127.0.0.1\n" + PLUGS, interface="::")
        client = udp_client(self)
        sense(client, service.udp_port, host="127.0.0.2")
        replies = yield client.wait_for(2)
        self.assertEqual(len(replies), 2)
        self.assertEqual(service.counters.replies, {"sense": 2})


class CopiesTests(unittest.TestCase):
    """The same request from the same sender arriving another way within 200 ms: answered once."""

    def setUp(self):
        config = load_text(PLUGS, "copies.yml")
        kinds = default_kinds()
        plugs = build_plugs(config, reactor, kinds)
        self.responder = Responder(SenseReplyCache(plugs))
        self.clock = Clock()
        self.protocol = KasaDatagramProtocol(self.responder, clock=self.clock)
        port = ArrivalListener(reactor).listenUDP(0, self.protocol, interface="0.0.0.0")
        self.addCleanup(port.stopListening)
        self.assertTrue(port.arrivals)
        self.port = port.getHost().port
        self.client = udp_client(self)

    def sent(self):
        return self.responder.counters.replies.get("sense", 0)

    @defer.inlineCallbacks
    def test_copy_by_another_address_is_answered_once(self):
        counters = self.responder.counters
        sense(self.client, self.port, host="127.0.0.1")
        sense(self.client, self.port, host="127.0.0.2")     # the same bytes, another way
        yield wait_until(lambda: counters.ignored.get("duplicate") == 1, "the copy")
        self.assertEqual(self.sent(), 2)
        replies = yield self.client.wait_for(2)
        self.assertEqual(sources(replies), {"127.0.0.1"})
        # 200 ms later it is a new request.
        self.clock.advance(0.2)
        sense(self.client, self.port, host="127.0.0.2")
        replies = yield self.client.wait_for(4)
        self.assertEqual(sources(replies[2:]), {"127.0.0.2"})
        self.assertEqual(counters.ignored, {"duplicate": 1})

    @defer.inlineCallbacks
    def test_asking_again_the_same_way_is_answered(self):
        for _ in range(3):
            sense(self.client, self.port, host="127.0.0.1")
        replies = yield self.client.wait_for(6)
        self.assertEqual(len(replies), 6)
        self.assertEqual(self.responder.counters.ignored, {})

    @defer.inlineCallbacks
    def test_other_senders_are_not_copies(self):
        other = udp_client(self)
        sense(self.client, self.port, host="127.0.0.1")
        sense(other, self.port, host="127.0.0.2")
        yield self.client.wait_for(2)
        replies = yield other.wait_for(2)
        self.assertEqual(sources(replies), {"127.0.0.2"})
        self.assertEqual(self.responder.counters.ignored, {})

    @defer.inlineCallbacks
    def test_any_request(self):
        """Copies are found before requests are read: Kasa clients' requests too (a
        discovery broadcast arriving twice would show the strip twice)."""
        counters = self.responder.counters
        self.client.send({"system": {"get_sysinfo": {}}}, self.port, host="127.0.0.1")
        self.client.send({"system": {"get_sysinfo": {}}}, self.port, host="127.0.0.2")
        yield wait_until(lambda: counters.ignored.get("duplicate") == 1, "the copy")
        self.assertEqual(counters.ignored, {"duplicate": 1, "unsupported": 1})


class PlainPortTests(unittest.TestCase):
    """Bound to one address: no packet information, replies as before."""

    @defer.inlineCallbacks
    def test_bound_address(self):
        service = start_service(self, PLUGS, interface="127.0.0.1")
        self.assertFalse(service.udp_protocol.transport.arrivals)
        client = UDPClient()
        listening = reactor.listenUDP(0, client, interface="127.0.0.1")
        self.addCleanup(listening.stopListening)
        sense(client, service.udp_port)
        sense(client, service.udp_port)
        replies = yield client.wait_for(4)
        self.assertEqual(sources(replies), {"127.0.0.1"})


class SendTests(unittest.TestCase):
    """What reaches the socket is what the counters say was sent."""

    def test_a_full_send_buffer_cuts_the_answer_short_and_is_counted(self):
        plugs = build_plugs(load_text(PLUGS, "send.yml"), reactor, default_kinds())
        responder = Responder(SenseReplyCache(plugs))
        protocol = KasaDatagramProtocol(responder, clock=Clock())

        class Socket:
            sent = []

            def sendto(self, data, dest):
                if self.sent:
                    raise BlockingIOError()
                self.sent.append(data)

        class Transport:
            socket = Socket()

        protocol.transport = Transport()
        from senselink.kasa.messages import SENSE_REQUEST_ENCRYPTED
        protocol.datagramReceived(SENSE_REQUEST_ENCRYPTED, ("127.0.0.1", 40000))
        self.assertEqual(len(Transport.socket.sent), 1)
        self.assertEqual(responder.counters.replies, {"sense": 1})
        self.assertEqual(responder.counters.ignored, {"send_buffer_full": 1})
