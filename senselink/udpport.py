"""A UDP port that knows where each datagram arrived, so that replies leave from there.

Bound to a wildcard address (C{0.0.0.0}, or C{::} for IPv4 and IPv6), a
plain UDP socket's replies leave from whichever address the routing table
prefers. On a host with several addresses (Wi-Fi and Ethernet, a secondary
IP, Docker networks) a request sent to one address is then answered from
another, and clients that match replies by source address (python-kasa,
Home Assistant's TP-Link integration) never see an answer.

L{ArrivalPort} asks the kernel for each datagram's packet information
(C{IP_PKTINFO}, C{IPV6_RECVPKTINFO}), reads with C{recvmsg} and gives the
protocol an L{Arrival}: where the datagram came in and the ancillary data
that makes a reply sent with C{sendmsg} leave from there:

- a request sent to one of our addresses is answered from that address;
- a request sent to a broadcast (or IPv6 multicast) address is answered from
  an address of the interface it arrived on.

One socket per local address was the alternative; it was not chosen because
addresses come and go while the daemon runs (DHCP, Docker networks), and a
socket bound to one address does not receive broadcasts.

Sending with ancillary data costs about a fifth more per datagram than a
plain C{sendto}, so L{ReplySources} first asks the kernel, once per sender
and way in (then again after L{RECHECK} seconds), whether its own choice of
source address is already the right one, as it is on most hosts; only when
it is not do the replies carry packet information.

Bound to one address, or where the kernel offers no packet information
(anything but Linux), the port is Twisted's C{udp.Port} unchanged: the
reply's source is the bound address anyway, and no L{Arrival} is made.

The protocol's C{datagramReceived} takes a third argument, the L{Arrival}
(None when there is none), as L{senselink.udp.KasaDatagramProtocol} does.
"""

import errno
import fcntl
import socket
import struct
import sys

from zope.interface import implementer

from twisted.internet import udp
from twisted.internet.interfaces import IReactorUDP

from senselink.log import Logger

log = Logger()

# IP_PKTINFO is 8 on Linux; the socket module names it from Python 3.12 on.
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
SOL_IP = getattr(socket, "SOL_IP", socket.IPPROTO_IP)
IPPROTO_IPV6 = socket.IPPROTO_IPV6
IPV6_PKTINFO = socket.IPV6_PKTINFO

SIOCGIFADDR = 0x8915          # Linux ioctl: an interface's (primary) IPv4 address

WILDCARDS = frozenset(["", "0.0.0.0", "::"])
RECHECK = 10.0     # seconds a decision about a sender's replies is kept (routes may change)
DECISIONS = 256    # senders (and ways in) whose decisions are kept at most
ANCILLARY_SIZE = socket.CMSG_SPACE(20) + socket.CMSG_SPACE(12)   # in6_pktinfo + in_pktinfo

_V4_NONE = bytes(4)
_V6_NONE = bytes(16)
_V4_MAPPED = bytes(10) + b"\xff\xff"   # ::ffff:0:0/96
_READ_AGAIN = frozenset([errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR])
_MAPPED_PREFIX = "::ffff:"


class Arrival:
    """Where one datagram arrived, and how to answer from there.

    - C{sockaddr}: the sender's full socket address (IPv6 flow and scope
      kept, so link-local senders are answered on their link);
    - C{path}: the interface and destination address the datagram came
      in by (its packet information, opaque bytes: equal for two datagrams
      that came the same way; empty when the kernel gave none);
    - L{ancillary}: what a reply needs to leave from there.
    """

    __slots__ = ("sockaddr", "path", "sources")

    def __init__(self, sockaddr, path, sources):
        self.sockaddr = sockaddr
        self.path = path
        self.sources = sources      # the port's ReplySources

    def ancillary(self):
        """The C{sendmsg} ancillary data for a reply from the address the datagram was sent
        to (a broadcast: from the interface's address), or None when a plain C{sendto}
        leaves from there anyway. Worked out only for datagrams that get a reply."""
        if not self.path:
            return None
        return self.sources.ancillary(self.sockaddr, self.path)

    def __repr__(self):
        return f"<Arrival from {self.sockaddr!r} by {self.path.hex()}>"


def ipv4_reply_info(info: bytes) -> bytes:
    """The C{in_pktinfo} of a reply to a datagram that arrived with C{info}.

    C{info} is C{(ifindex, spec_dst, addr)}. Sent to one of our addresses
    (C{addr} is C{spec_dst}): answer from that address, routed as usual.
    Sent to a broadcast address: answer through the arrival interface and
    let the kernel pick that interface's address (C{spec_dst} is the
    address the routing table prefers, which may belong to another
    interface on the same subnet).
    """
    if info[4:8] == info[8:12]:
        return _V4_NONE + info[4:8] + _V4_NONE
    return info[:4] + _V4_NONE + _V4_NONE


def ipv6_reply_info(info: bytes) -> bytes:
    """The C{in6_pktinfo} of a reply to a datagram that arrived with C{info} (address, ifindex).

    Multicast: no source address, the arrival interface (the kernel picks
    one of its addresses). Link-local: that address on the arrival
    interface. Otherwise: that address, routed as usual.
    """
    first = info[0]
    if first == 0xFF:
        return _V6_NONE + info[16:20]
    if first == 0xFE and info[1] & 0xC0 == 0x80:
        return info
    return info[:16] + _V4_NONE


def packet_info(ancdata):
    """The packet information in C{ancdata}: C{in_pktinfo} (12 bytes) or C{in6_pktinfo}
    (20 bytes), or None.

    An IPv4 datagram on a dual-stack socket carries both kinds; the IPv4 one
    names the local address to answer from (the IPv6 one holds the header's
    destination, a broadcast address for a broadcast), and is preferred.
    """
    v6 = None
    for level, kind, data in ancdata:
        if level == SOL_IP and kind == IP_PKTINFO and len(data) >= 12:
            return data[:12]
        if level == IPPROTO_IPV6 and kind == IPV6_PKTINFO and len(data) >= 20:
            v6 = data[:20]
    return v6


def reply_ancillary(info: bytes):
    """The C{sendmsg} ancillary data of a reply to a datagram that arrived with C{info}."""
    if len(info) == 12:
        return [(SOL_IP, IP_PKTINFO, ipv4_reply_info(info))]
    if info[:12] == _V4_MAPPED:
        # An IPv4 datagram without IPv4 information: no source to ask for.
        return []
    return [(IPPROTO_IPV6, IPV6_PKTINFO, ipv6_reply_info(info))]


def kernel_source(family, sockaddr) -> bytes:
    """The source address (packed) the kernel picks for sending to C{sockaddr} now.

    A C{connect} on a scratch UDP socket: a route lookup, no traffic.
    """
    with socket.socket(family, socket.SOCK_DGRAM) as scratch:
        scratch.connect(sockaddr)
        return socket.inet_pton(family, scratch.getsockname()[0].split("%", 1)[0])


def interface_ipv4(ifindex) -> bytes:
    """The (primary) IPv4 address of interface C{ifindex}, packed; OSError if none."""
    name = socket.if_indextoname(ifindex).encode()[:15]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as scratch:
        answer = fcntl.ioctl(scratch.fileno(), SIOCGIFADDR, struct.pack("256s", name))
    return answer[20:24]


class ReplySources:
    """Per sender and way in: does a plain reply leave from the right address already?

    Yes on most hosts (one address per interface), where replies are then
    sent without ancillary data. The kernel is asked once per sender and way
    in (L{kernel_source}) and again after C{recheck} seconds of C{clock};
    at most C{limit} decisions are kept. Unsure (an error, IPv6 multicast):
    the replies carry packet information, which is always right.
    """

    __slots__ = ("clock", "recheck", "limit", "_known")

    def __init__(self, clock, recheck=RECHECK, limit=DECISIONS):
        self.clock = clock
        self.recheck = recheck
        self.limit = limit
        self._known = {}       # (sender host, info) -> (until, ancillary or None)

    def __len__(self):
        return len(self._known)

    def ancillary(self, sockaddr, info):
        """The ancillary data replies to C{sockaddr} need, for a datagram with C{info}."""
        now = self.clock.seconds()
        key = (sockaddr[0], info)
        known = self._known.get(key)
        if known is not None and 0 <= known[0] - now <= self.recheck:
            return known[1]
        ancillary = None if self._plain_is_right(sockaddr, info) else reply_ancillary(info)
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known[key] = (now + self.recheck, ancillary)
        return ancillary

    @staticmethod
    def _plain_is_right(sockaddr, info) -> bool:
        host = sockaddr[0]
        try:
            if len(info) == 12:
                if host.startswith(_MAPPED_PREFIX):
                    host = host[7:]
                source = kernel_source(socket.AF_INET, (host, sockaddr[1]))
                if info[4:8] == info[8:12]:           # sent to one of our addresses
                    return source == info[4:8]
                # A broadcast: right when it leaves from the arrival interface's address.
                ifindex = struct.unpack("=i", info[:4])[0]
                return source == interface_ipv4(ifindex)
            if info[0] == 0xFF or info[:12] == _V4_MAPPED:
                return False
            return kernel_source(socket.AF_INET6, sockaddr) == info[:16]
        except (OSError, ValueError):
            return False


class ArrivalPort(udp.Port):
    """C{udp.Port} that, on a wildcard address, tells the protocol where each datagram arrived.

    C{arrivals} is True once listening with packet information.
    """

    arrivals = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.sources = ReplySources(self.reactor)

    def createInternetSocket(self):
        skt = super().createInternetSocket()
        self.arrivals = False
        if self.interface in WILDCARDS and sys.platform.startswith("linux"):
            try:
                if self.addressFamily == socket.AF_INET6:
                    skt.setsockopt(IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
                    try:    # IPv4 datagrams on the dual-stack socket
                        skt.setsockopt(SOL_IP, IP_PKTINFO, 1)
                    except OSError:
                        pass
                else:
                    skt.setsockopt(SOL_IP, IP_PKTINFO, 1)
                self.arrivals = True
            except OSError as e:
                log.warn("Cannot learn which address each request was sent to ({error}): on a "
                         "host with several addresses, replies may leave from another address "
                         "than the one asked", error=e.strerror or str(e))
        return skt

    def doRead(self):
        """Read what is waiting (up to C{maxThroughput} bytes), with its packet information."""
        if not self.arrivals:
            return super().doRead()
        recvmsg = self.socket.recvmsg
        received = self.protocol.datagramReceived
        arrival_of = self.arrival
        size = self.maxPacketSize
        dual_stack = self.addressFamily == socket.AF_INET6
        read = 0
        while read < self.maxThroughput:
            try:
                data, ancdata, _flags, sockaddr = recvmsg(size, ANCILLARY_SIZE)
            except OSError as e:
                if e.errno in _READ_AGAIN or e.errno == errno.ECONNREFUSED:
                    return
                raise
            read += len(data)
            try:
                addr = sockaddr
                if dual_stack:     # (host, port) without flow and scope; IPv4 as IPv4
                    host = sockaddr[0]
                    if host.startswith(_MAPPED_PREFIX) and "." in host:
                        host = host[7:]
                    addr = (host, sockaddr[1])
                received(data, addr, arrival_of(ancdata, sockaddr))
            except Exception:
                log.failure("Unexpected error handling a datagram from {peer}",
                            peer=sockaddr[0])

    def arrival(self, ancdata, sockaddr):
        """The L{Arrival} of a datagram from C{sockaddr} with C{ancdata}."""
        return Arrival(sockaddr, packet_info(ancdata) or b"", self.sources)

    def address(self, host: str, port: int):
        """The socket address of C{host:port} for this port (IPv4 mapped on an IPv6 socket)."""
        if self.addressFamily == socket.AF_INET6 and ":" not in host:
            return (_MAPPED_PREFIX + host, port)
        return (host, port)


@implementer(IReactorUDP)
class ArrivalListener:
    """C{listenUDP} with L{ArrivalPort}: the reactor to give Twisted's C{UDPServer}."""

    def __init__(self, reactor):
        self.reactor = reactor

    def listenUDP(self, port, protocol, interface="", maxPacketSize=8192):
        listening = ArrivalPort(port, protocol, interface, maxPacketSize, reactor=self.reactor)
        listening.startListening()
        return listening

    def listenMulticast(self, *args, **kwargs):
        return self.reactor.listenMulticast(*args, **kwargs)
