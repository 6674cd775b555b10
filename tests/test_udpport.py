"""ArrivalPort's packet information: what a reply carries to leave from the address asked."""

import socket
import struct

from twisted.internet import reactor
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.trial import unittest

from senselink import udpport
from senselink.udpport import (DECISIONS, IP_PKTINFO, IPPROTO_IPV6, IPV6_PKTINFO, RECHECK, SOL_IP,
                               ArrivalListener, ReplySources, ipv4_reply_info, ipv6_reply_info,
                               packet_info, reply_ancillary)

from tests.support import has_ipv6_loopback


def in_pktinfo(ifindex, spec_dst, addr):
    return struct.pack("=i4s4s", ifindex, socket.inet_aton(spec_dst), socket.inet_aton(addr))


def in6_pktinfo(addr, ifindex):
    return struct.pack("=16sI", socket.inet_pton(socket.AF_INET6, addr), ifindex)


class ReplyInfoTests(unittest.TestCase):

    def test_ipv4_unicast_answers_from_that_address(self):
        info = in_pktinfo(7, "192.168.1.3", "192.168.1.3")
        self.assertEqual(ipv4_reply_info(info), in_pktinfo(0, "192.168.1.3", "0.0.0.0"))

    def test_ipv4_broadcast_answers_through_the_arrival_interface(self):
        # The kernel's spec_dst for a broadcast is the routing table's choice, maybe
        # another interface's address: the reply names the interface instead.
        for destination in ("255.255.255.255", "192.168.1.255"):
            info = in_pktinfo(7, "192.168.1.2", destination)
            self.assertEqual(ipv4_reply_info(info), in_pktinfo(7, "0.0.0.0", "0.0.0.0"))

    def test_ipv6(self):
        self.assertEqual(ipv6_reply_info(in6_pktinfo("fd00::3", 4)), in6_pktinfo("fd00::3", 0))
        self.assertEqual(ipv6_reply_info(in6_pktinfo("2001:db8::3", 4)),
                         in6_pktinfo("2001:db8::3", 0))
        # Link-local: only meaningful on its interface.
        self.assertEqual(ipv6_reply_info(in6_pktinfo("fe80::3", 4)), in6_pktinfo("fe80::3", 4))
        # Multicast: any address of the arrival interface.
        self.assertEqual(ipv6_reply_info(in6_pktinfo("ff02::1", 4)), in6_pktinfo("::", 4))


class PacketInfoTests(unittest.TestCase):

    def test_ipv4(self):
        info = in_pktinfo(2, "10.0.0.3", "10.0.0.3")
        self.assertEqual(packet_info([(SOL_IP, IP_PKTINFO, info)]), info)
        self.assertEqual(reply_ancillary(info), [(SOL_IP, IP_PKTINFO, ipv4_reply_info(info))])

    def test_ipv4_on_a_dual_stack_socket(self):
        """Both kinds of information: the IPv4 one names the address to answer from."""
        v6 = in6_pktinfo("::ffff:255.255.255.255", 2)
        v4 = in_pktinfo(2, "10.0.0.2", "255.255.255.255")
        self.assertEqual(packet_info([(IPPROTO_IPV6, IPV6_PKTINFO, v6),
                                      (SOL_IP, IP_PKTINFO, v4)]), v4)
        self.assertEqual(reply_ancillary(v4), [(SOL_IP, IP_PKTINFO, in_pktinfo(2, "0.0.0.0",
                                                                               "0.0.0.0"))])
        # Without the IPv4 information, nothing to ask for: the kernel chooses.
        self.assertEqual(packet_info([(IPPROTO_IPV6, IPV6_PKTINFO, v6)]), v6)
        self.assertEqual(reply_ancillary(v6), [])

    def test_ipv6(self):
        info = in6_pktinfo("fe80::2", 3)
        self.assertEqual(packet_info([(IPPROTO_IPV6, IPV6_PKTINFO, info)]), info)
        self.assertEqual(reply_ancillary(info), [(IPPROTO_IPV6, IPV6_PKTINFO, info)])

    def test_no_information(self):
        self.assertIsNone(packet_info([]))
        self.assertIsNone(packet_info([(SOL_IP, IP_PKTINFO, b"short")]))


class ReplySourcesTests(unittest.TestCase):
    """Replies carry packet information only when the kernel's own choice is wrong."""

    def setUp(self):
        self.clock = Clock()
        self.sources = ReplySources(self.clock)

    def test_unicast_on_loopback(self):
        # 127.0.0.1 -> 127.0.0.1: the kernel answers from 127.0.0.1 anyway.
        info = in_pktinfo(1, "127.0.0.1", "127.0.0.1")
        self.assertIsNone(self.sources.ancillary(("127.0.0.1", 5000), info))
        # 127.0.0.1 -> 127.0.0.2: it would answer from 127.0.0.1.
        other = in_pktinfo(1, "127.0.0.2", "127.0.0.2")
        self.assertEqual(self.sources.ancillary(("127.0.0.1", 5000), other),
                         reply_ancillary(other))
        # The same for IPv4 on a dual-stack socket.
        self.assertEqual(self.sources.ancillary(("::ffff:127.0.0.1", 5000, 0, 0), other),
                         reply_ancillary(other))

    def test_broadcast_on_the_interface_of_the_default_source(self):
        lo = socket.if_nametoindex("lo")
        self.assertIsNone(self.sources.ancillary(
            ("127.0.0.1", 5000), in_pktinfo(lo, "127.0.0.1", "127.255.255.255")))
        # An interface without that address (or none at all): packet information.
        info = in_pktinfo(0x7FFFFFF0, "127.0.0.1", "127.255.255.255")
        self.assertEqual(self.sources.ancillary(("127.0.0.1", 5000), info),
                         reply_ancillary(info))

    def test_ipv6(self):
        if not has_ipv6_loopback():
            raise unittest.SkipTest("this machine has no IPv6 loopback (::1)")
        self.assertIsNone(self.sources.ancillary(("::1", 5000, 0, 0), in6_pktinfo("::1", 1)))
        multicast = in6_pktinfo("ff02::1", 1)
        self.assertEqual(self.sources.ancillary(("::1", 5000, 0, 0), multicast),
                         reply_ancillary(multicast))

    def test_kept_for_a_while_and_bounded(self):
        asked = []
        real = udpport.kernel_source
        self.patch(udpport, "kernel_source",
                   lambda family, sockaddr: asked.append(sockaddr) or real(family, sockaddr))
        info = in_pktinfo(1, "127.0.0.1", "127.0.0.1")
        for _ in range(3):
            self.sources.ancillary(("127.0.0.1", 5000), info)
        self.assertEqual(len(asked), 1)
        self.clock.advance(RECHECK + 0.001)
        self.sources.ancillary(("127.0.0.1", 5000), info)
        self.assertEqual(len(asked), 2)
        for i in range(DECISIONS * 2):
            self.sources.ancillary((f"127.0.1.{i % 250}", 5000 + i), in_pktinfo(i, "127.0.0.1",
                                                                                "127.0.0.1"))
            self.assertLessEqual(len(self.sources), DECISIONS)


class ListeningTests(unittest.TestCase):

    def listen(self, interface):
        port = ArrivalListener(reactor).listenUDP(0, DatagramProtocol(), interface=interface)
        self.addCleanup(port.stopListening)
        return port

    def test_only_wildcards_ask_for_information(self):
        self.assertTrue(self.listen("0.0.0.0").arrivals)
        self.assertTrue(self.listen("").arrivals)
        self.assertFalse(self.listen("127.0.0.1").arrivals)

    def test_addresses(self):
        self.assertEqual(self.listen("0.0.0.0").address("10.0.0.1", 9999), ("10.0.0.1", 9999))
        try:
            port = self.listen("::")
        except Exception as e:
            raise unittest.SkipTest(f"no IPv6 here: {e}")
        self.assertTrue(port.arrivals)
        self.assertEqual(port.address("10.0.0.1", 9999), ("::ffff:10.0.0.1", 9999))
        self.assertEqual(port.address("fd00::1", 9999), ("fd00::1", 9999))

    def test_without_packet_information(self):
        """Where the kernel offers none, the port is a plain UDP port, with a warning."""
        self.patch(udpport, "IP_PKTINFO", -1)
        logged = []
        from twisted.logger import globalLogPublisher
        globalLogPublisher.addObserver(logged.append)
        self.addCleanup(globalLogPublisher.removeObserver, logged.append)
        self.assertFalse(self.listen("0.0.0.0").arrivals)
        self.assertTrue(any("Cannot learn which address" in str(e.get("log_format"))
                            for e in logged))
