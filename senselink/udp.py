"""Kasa over UDP: one request per datagram, answered by the L{Responder}.

Listening through L{senselink.udpport.ArrivalPort} on a wildcard address,
replies leave from the address the request was sent to, and a request
that arrives twice (two interfaces on one LAN) is answered once
(L{senselink.requestcopies.RecentRequests}).
"""

import errno

from twisted.internet.protocol import DatagramProtocol

from senselink.requestcopies import RecentRequests
from senselink.log import Logger
from senselink.responder import KASA, MAX_DATAGRAM, UNRESOLVED, Responder

log = Logger()


class KasaDatagramProtocol(DatagramProtocol):
    """Kasa over UDP: one request per datagram, replies from the receiving socket.

    With C{target} set (an IP address), replies to the Sense request go to
    that host at the requester's port instead of to the requester; Kasa
    clients always get their reply themselves. C{clock} (default the
    reactor) times the window in which a copy of a request is not answered.
    """

    noisy = False

    def __init__(self, responder: Responder, target=None, clock=None):
        if clock is None:
            from twisted.internet import reactor as clock
        self.responder = responder
        self.target = target
        self.recent = RecentRequests(clock)

    def aim(self, target):
        """Send Sense replies to C{target} (an address) from now on; None: to the
        requester; L{UNRESOLVED}: nowhere (a target name that does not resolve)."""
        self.target = target

    def datagramReceived(self, data, addr, arrival=None):
        """Answer C{data} from C{addr}; C{arrival} (an L{senselink.udpport.Arrival}) says
        where it came in, or is None (bound to one address: nothing to choose)."""
        try:
            responder = self.responder
            guard = responder.guard
            host = addr[0]
            if guard is not None and not guard.admit(host):
                return
            if len(data) > MAX_DATAGRAM:
                responder.counters.count(responder.counters.ignored, "oversized")
                if responder.may_log(host, "oversized"):
                    log.debug("Dropped a {size}-byte datagram from {peer}", size=len(data),
                              peer=host)
                return
            if arrival is not None and self.recent.is_copy(data, arrival.sockaddr, arrival.path):
                responder.counters.count(responder.counters.ignored, "duplicate")
                if responder.may_log(host, "duplicate"):
                    log.debug("Not answering a copy of a request from {peer} that arrived on "
                              "another interface or address", peer=host)
                return
            request_type, replies = responder.handle_typed(data, host)
            sent = 0
            if replies and (guard is None or guard.replies_ok(host, len(replies))):
                sent = self._answer(request_type, replies, addr, arrival)
            responder.replied(request_type, sent)
        except Exception:
            log.failure("Unexpected error answering a datagram from {peer}", peer=addr[0])

    def _answer(self, request_type, replies, addr, arrival) -> int:
        """Send C{replies} where they go; the number of datagrams sent."""
        # The target receives what Sense asked for; a Kasa client gets its own reply.
        ancillary = None
        if self.target and request_type != KASA:
            if self.target is UNRESOLVED:
                counters = self.responder.counters
                counters.count(counters.ignored, "target_unresolved")
                return 0
            dest = (self.target, addr[1])
            if arrival is not None:
                dest = self.transport.address(*dest)
        elif arrival is not None:
            dest = arrival.sockaddr
            ancillary = arrival.ancillary()
        else:
            dest = addr
        return self._send(replies, dest, ancillary)

    def _send(self, replies, dest, ancillary=None) -> int:
        """Write the replies straight to the socket, with C{ancillary} data when given;
        the number of datagrams sent.

        udp.Port.write validates the address on every datagram, which costs
        about as much as the system call; C{dest} is either the address the
        kernel gave us or a resolved IP address, so that check is redundant.
        Errors are handled as udp.Port.write handles them: a full send buffer
        drops the rest of this answer, a refused port is ignored.
        """
        sock = getattr(self.transport, "socket", None)
        if sock is None:                       # not a real UDP port (tests with fakes)
            for reply in replies:
                self.transport.write(reply, dest)
            return len(replies)
        left = iter(replies)
        try:
            if ancillary is None:
                sendto = sock.sendto
                for reply in left:
                    sendto(reply, dest)
            else:
                sendmsg = sock.sendmsg
                for reply in left:
                    sendmsg((reply,), ancillary, 0, dest)
            return len(replies)
        except (BlockingIOError, InterruptedError):
            self.responder.counters.count(self.responder.counters.ignored, "send_buffer_full")
        except OSError as e:
            if e.errno == errno.ENOBUFS:
                self.responder.counters.count(self.responder.counters.ignored, "send_buffer_full")
            elif e.errno != errno.ECONNREFUSED:
                guard = self.responder.guard
                if guard is None or guard.may_log(dest[0], "send_error"):
                    log.warn("Cannot send replies to {peer}: {error}", peer=dest[0],
                             error=e.strerror)
        return len(replies) - 1 - sum(1 for _ in left)     # the ones before the failed one
