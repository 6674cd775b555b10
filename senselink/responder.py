"""The Kasa responder (requests to replies) and the TCP stream protocol.

The UDP protocol is L{senselink.udp.KasaDatagramProtocol}. Both answer from
the plugs' current values and never pull from sources. Nothing that
arrives on the wire can raise out of a protocol callback: everything not
understood is dropped with a DEBUG line.
"""

from zope.interface import implementer

from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import TimeoutMixin

from senselink.log import Logger
from senselink.kasa import cipher, messages
from senselink.openconnections import OpenConnections

log = Logger()

MAX_DATAGRAM = 4096          # bytes; larger UDP datagrams are dropped
MAX_FRAME = 64 * 1024        # bytes; a larger TCP frame length drops the connection
MAX_CONNECTIONS = 64         # TCP connections open at once; more are closed at once
MAX_PER_ADDRESS = 8          # of those, held by one source address (loopback included)
IDLE_TIMEOUT = 120           # seconds a TCP connection may stay silent
FRAME_TIMEOUT = 5.0          # seconds from a frame's first byte to its last

KASA = "kasa"                # counter key of requests answered by the strip device
UNRESOLVED = "<unresolved>"  # a target host name that did not resolve: send nothing


class Counters:
    """What the responder saw and did, by request type (read by status pages and tests)."""

    __slots__ = ("requests", "replies", "ignored")

    def __init__(self):
        self.requests = {}   # request type -> count
        self.replies = {}    # request type -> datagrams/frames sent
        self.ignored = {}    # reason -> count

    def count(self, table, key, n=1):
        table[key] = table.get(key, 0) + n


class Responder:
    """Turns one request into replies; shared by the UDP and TCP protocols.

    C{respond=False} is quiet mode: requests are received and logged, never answered.

    The Sense request (recognised by its bytes, without parsing) gets one
    cached HS110 reply per reported plug, over UDP and TCP alike. With a
    C{device}, every other request gets exactly one reply from that device
    (Kasa clients: UDP discovery, TCP sessions); without one they are
    ignored, as the original did.
    """

    def __init__(self, replies, *, respond=True, device=None, guard=None, debug=False,
                 polling=None, delivery=None):
        self.replies = replies   # a senselink.replies.SenseReplyCache
        self.polling = polling   # a senselink.requesters.Polling told of each request, or None
        self.delivery = delivery  # a senselink.delivery.Delivery told of each Sense poll, or None
        self.debug = debug       # build DEBUG lines per request
        self.respond = respond
        self.device = device     # a kasa.device.HS300Strip answering Kasa clients, or None
        self.counters = Counters()
        self.guard = None
        self.set_guard(guard)

    def set_guard(self, guard):
        """Answer through C{guard} (a L{senselink.guard.Guard}), or everyone with None."""
        self.guard = guard
        if guard is not None:
            guard.count_drops_in(self.counters.ignored)   # its drops count as ignored

    def set_device(self, device):
        """Answer Kasa clients from C{device} (a L{senselink.kasa.device.HS300Strip}), or
        only the Sense request with None."""
        self.device = device

    def may_log(self, peer, reason):
        """Lines about bad traffic: at most once a minute per source with a guard."""
        guard = self.guard
        return self.debug and (guard is None or guard.may_log(peer, reason))

    def replied(self, request_type, sent):
        """The protocols' word after each classified request: C{sent} replies went out
        (0: none, whatever dropped them). A Sense poll is counted per plug it carried."""
        if sent:
            self.counters.count(self.counters.replies, request_type, sent)
        if request_type == messages.SENSE and self.delivery is not None:
            self.delivery.poll(self.replies.answered, sent)

    def handle(self, data: bytes, peer: str):
        """The encrypted replies to send for C{data}, or an empty list."""
        return self.handle_typed(data, peer)[1]

    def handle_typed(self, data: bytes, peer: str):
        """C{(request_type, replies)}: what C{data} was (L{messages.SENSE}, L{KASA}, ...) and the replies."""
        counters = self.counters
        request_type = None
        try:
            request_type, request = messages.classify_datagram(data)
            if request_type == messages.OTHER and self.device is not None:
                messages.check_modules(request)
        except messages.MalformedRequest as e:
            counters.count(counters.ignored, "malformed")
            if self.may_log(peer, "malformed"):
                log.debug("Dropped malformed request from {peer}: {reason} (such lines are "
                          "logged once a minute per source)", peer=peer, reason=str(e))
            return request_type, []
        if request_type == messages.OTHER and self.device is not None:
            if messages.is_reply(request):
                counters.count(counters.ignored, "echo")
                if self.may_log(peer, "echo"):
                    log.debug("Ignored a device reply from {peer}", peer=peer)
                return messages.ECHO, []
            return KASA, self._device_reply(request, peer)
        counters.count(counters.requests, request_type)
        if request_type == messages.SENSE:
            if self.polling is not None:
                self.polling.sense.seen(peer)
            replies = self.replies.sense_replies()
            if self.debug:
                log.debug("Sense request from {peer}: {n} replies", peer=peer, n=len(replies))
                for plug in self.replies.plugs.reported:
                    log.debug("Reply for plug {plug} ({alias}, {mac}): {watts} W",
                              plug=plug.id, alias=plug.alias, mac=plug.mac, watts=plug.watts)
        elif request_type == messages.ECHO:
            counters.count(counters.ignored, "echo")
            if self.may_log(peer, "echo"):
                log.debug("Ignored an echoed reply from {peer}", peer=peer)
            return request_type, []
        else:
            counters.count(counters.ignored, "unsupported")
            if self.may_log(peer, "unsupported"):
                log.debug("Ignored unsupported request from {peer}: {request}", peer=peer,
                          request=messages.describe(request))
            return request_type, []
        if not self.respond:
            if self.debug:
                log.debug("Quiet mode: not answering {peer} ({n} replies withheld)", peer=peer,
                          n=len(replies))
            return request_type, []
        return request_type, replies

    def _device_reply(self, request, peer):
        """One encrypted reply from the strip device to a Kasa client's request."""
        counters = self.counters
        counters.count(counters.requests, KASA)
        if self.polling is not None:
            self.polling.kasa.seen(peer)
        reply = self.device.handle(request)
        if self.debug:
            log.debug("Kasa request from {peer}: {request}", peer=peer,
                      request=messages.describe(request))
        refused = self.device.refused_in(reply)
        if refused and (self.guard is None or self.guard.may_log(peer, "refused")):
            log.info("Refused {requests} from Kasa client {peer}: SenseLink plugs are read-only",
                     requests=", ".join(refused), peer=peer)
        if not self.respond:
            if self.debug:
                log.debug("Quiet mode: not answering the Kasa request from {peer}", peer=peer)
            return []
        return [messages.encode(reply)]


@implementer(IPushProducer)
class _Backpressure:
    """Stops reading from a client that does not read its replies (bounded write buffer)."""

    def __init__(self, transport):
        self.transport = transport

    def pauseProducing(self):
        self.transport.pauseProducing()     # stop reading requests until replies drain

    def resumeProducing(self):
        self.transport.resumeProducing()

    def stopProducing(self):
        pass


@implementer(IHalfCloseableProtocol)
class KasaStreamProtocol(Protocol, TimeoutMixin):
    """Kasa over TCP: 4-byte big-endian length prefix, several requests per connection.

    Bounded: a frame over L{MAX_FRAME} closes the connection, so does a
    frame not whole L{FRAME_TIMEOUT} seconds after its first byte arrived
    (a trickle cannot hold a slot), a silent connection closes after the
    idle time-out, and a client that does not read its replies is not read
    from until it does. A client that shuts down its sending side after its
    requests (a half-close) gets its replies, then the connection closes.
    """

    def __init__(self, responder: Responder, idle_timeout=IDLE_TIMEOUT,
                 frame_timeout=FRAME_TIMEOUT):
        self.responder = responder
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.peer = None          # the client's address (host), once connected
        self._buffer = b""
        self._frame_deadline = None

    def connectionMade(self):
        self.peer = self._peer()
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.opened(self)
            self.callLater = factory.clock.callLater
        guard = self.responder.guard
        if guard is not None and not guard.admit(self.peer):
            self.transport.abortConnection()
            return
        self.transport.registerProducer(_Backpressure(self.transport), True)
        self.setTimeout(self.idle_timeout)

    def connectionLost(self, reason=None):
        self.setTimeout(None)
        self._buffer = b""
        self._end_frame_deadline()
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.closed(self)

    def readConnectionLost(self):
        """The client shut down its sending side: its replies are written, then we close."""
        self._end_frame_deadline()
        if self._buffer:
            self._buffer = b""
            self._count_ignored("truncated")
        self.transport.loseConnection()        # after what is written has been sent

    def writeConnectionLost(self):
        """Not used: this side never shuts down alone."""

    def timeoutConnection(self):
        log.debug("Closing idle TCP connection from {peer}", peer=self.peer)
        self.transport.abortConnection()

    def _frame_late(self):
        self._frame_deadline = None
        self._buffer = b""
        self._count_ignored("slow_frame")
        if self.responder.may_log(self.peer, "slow_frame"):
            log.debug("Closing TCP connection from {peer}: a frame was not whole {seconds} s "
                      "after its first byte (such lines are logged once a minute per source)",
                      peer=self.peer, seconds=self.frame_timeout)
        self.transport.abortConnection()

    def _watch_frame(self, completed):
        """After data arrived: a partial frame in the buffer has a deadline from its first
        byte (a new one when C{completed}, a frame before it having been whole)."""
        if completed or not self._buffer:
            self._end_frame_deadline()
        if self._buffer and self._frame_deadline is None:
            self._frame_deadline = self.callLater(self.frame_timeout, self._frame_late)

    def _end_frame_deadline(self):
        deadline, self._frame_deadline = self._frame_deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def _count_ignored(self, reason):
        counters = self.responder.counters
        counters.count(counters.ignored, reason)

    def dataReceived(self, data):
        try:
            self.resetTimeout()
            self._buffer += data
            buffer = self._buffer
            header = cipher.HEADER_SIZE
            responder = self.responder
            guard = responder.guard
            completed = False
            while len(buffer) >= header:
                length = cipher.frame_length(buffer[:header])
                if length > MAX_FRAME:
                    log.debug("Closing TCP connection from {peer}: frame of {length} bytes",
                              peer=self.peer, length=length)
                    self._count_ignored("oversized")
                    self._buffer = b""
                    self.transport.abortConnection()
                    return
                if len(buffer) < header + length:
                    break
                payload = buffer[header:header + length]
                buffer = buffer[header + length:]
                completed = True
                peer = self.peer
                if guard is not None and not guard.admit(peer):
                    continue
                request_type, replies = responder.handle_typed(payload, peer)
                sent = 0
                if replies and (guard is None or guard.replies_ok(peer, len(replies))):
                    self.transport.writeSequence([cipher.frame(reply) for reply in replies])
                    sent = len(replies)
                responder.replied(request_type, sent)
            self._buffer = buffer
            self._watch_frame(completed)
        except Exception:
            log.failure("Unexpected error on a TCP connection from {peer}", peer=self.peer)
            self.transport.abortConnection()

    def _peer(self):
        peer = self.transport.getPeer()
        return getattr(peer, "host", str(peer))


class KasaStreamFactory(Factory):
    """Kasa TCP connections: at most C{max_connections} open, C{max_per_address} of them
    from one source address (loopback is no exception: a local process could take every
    slot as well as a remote one, and a real Kasa client holds one or two)."""

    noisy = False

    def __init__(self, responder: Responder, *, clock=None, max_connections=MAX_CONNECTIONS,
                 max_per_address=MAX_PER_ADDRESS, idle_timeout=IDLE_TIMEOUT,
                 frame_timeout=FRAME_TIMEOUT):
        if clock is None:
            from twisted.internet import reactor as clock
        self.responder = responder
        self.clock = clock
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.idle_timeout = idle_timeout
        self.frame_timeout = frame_timeout
        self.connections = 0     # TCP connections accepted so far
        self.open = OpenConnections()     # protocols of the connections open now

    def opened(self, protocol):
        self.open.add(protocol, protocol.peer)

    def closed(self, protocol):
        self.open.discard(protocol, protocol.peer)

    def buildProtocol(self, addr):
        host = getattr(addr, "host", str(addr))
        if len(self.open) >= self.max_connections:
            return self._refuse(host, "connection_limit", "Refusing a TCP connection from "
                                "{peer}: {n} connections are open (the limit)", len(self.open))
        if self.open.held(host) >= self.max_per_address:
            return self._refuse(host, "address_limit", "Refusing a TCP connection from {peer}: "
                                "it holds {n} connections (the limit per address)",
                                self.open.held(host))
        self.connections += 1
        protocol = KasaStreamProtocol(self.responder, self.idle_timeout, self.frame_timeout)
        protocol.factory = self
        return protocol

    def _refuse(self, host, reason, message, n):
        counters = self.responder.counters
        counters.count(counters.ignored, reason)
        guard = self.responder.guard
        if guard is None or guard.may_log(host, "connections"):
            log.warn(message + " (such lines are logged once a minute per source)",
                     peer=host, n=n)
        return None
