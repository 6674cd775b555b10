"""The Kasa responder: a UDP C{DatagramProtocol} and a TCP stream protocol.

They answer from the plugs' current values and never pull from sources.
Nothing that arrives on the wire can raise out of a protocol callback:
everything not understood is dropped with a DEBUG line.
"""

from twisted.internet.protocol import DatagramProtocol, Factory, Protocol

from senselink import log as _log
from senselink.kasa import cipher, messages

log = _log.Logger()

MAX_DATAGRAM = 4096          # bytes; larger UDP datagrams are dropped
MAX_FRAME = 64 * 1024        # bytes; a larger TCP frame length drops the connection

KASA = "kasa"                # counter key of requests answered by the strip device


class Counters:
    """What the responder saw and did, by kind (read by status pages and tests)."""

    __slots__ = ("requests", "replies", "ignored")

    def __init__(self):
        self.requests = {}   # kind -> count
        self.replies = {}    # kind -> datagrams/frames sent
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

    def __init__(self, plugs, *, respond=True, device=None):
        self.plugs = plugs
        self.respond = respond
        self.device = device     # a kasa.device.StripDevice answering Kasa clients, or None
        self.counters = Counters()

    def sense_replies(self):
        """Encrypted replies to a Sense poll: one per reported plug due an answer."""
        return [plug.sense_datagram() for plug in self.plugs.reported if plug.should_answer()]

    def handle(self, data: bytes, peer: str):
        """The encrypted replies to send for C{data}, or an empty list."""
        return self.handle_kind(data, peer)[1]

    def handle_kind(self, data: bytes, peer: str):
        """C{(kind, replies)}: what C{data} was (L{messages.SENSE}, L{KASA}, ...) and the replies."""
        counters = self.counters
        kind = None
        try:
            kind, request = messages.classify_datagram(data)
            if kind == messages.OTHER and self.device is not None:
                messages.check_modules(request)
        except messages.MalformedRequest as e:
            counters.count(counters.ignored, "malformed")
            log.debug("Dropped malformed request from {peer}: {reason}", peer=peer, reason=str(e))
            return kind, []
        if kind == messages.OTHER and self.device is not None:
            if messages.is_reply(request):
                counters.count(counters.ignored, "echo")
                log.debug("Ignored a device reply from {peer}", peer=peer)
                return messages.ECHO, []
            return KASA, self._device_reply(request, peer)
        counters.count(counters.requests, kind)
        if kind == messages.SENSE:
            replies = self.sense_replies()
            if _log.debug_enabled():
                log.debug("Sense request from {peer}: {n} replies", peer=peer, n=len(replies))
                for plug in self.plugs.reported:
                    log.debug("Reply for plug {plug} ({alias}, {mac}): {watts} W",
                              plug=plug.id, alias=plug.alias, mac=plug.mac, watts=plug.watts)
        elif kind == messages.ECHO:
            counters.count(counters.ignored, "echo")
            log.debug("Ignored an echoed reply from {peer}", peer=peer)
            return kind, []
        else:
            counters.count(counters.ignored, "unsupported")
            log.debug("Ignored unsupported request from {peer}: {request}", peer=peer,
                      request=messages.describe(request))
            return kind, []
        if not self.respond:
            log.debug("Quiet mode: not answering {peer} ({n} replies withheld)", peer=peer,
                      n=len(replies))
            return kind, []
        counters.count(counters.replies, kind, len(replies))
        return kind, replies

    def _device_reply(self, request, peer):
        """One encrypted reply from the strip device to a Kasa client's request."""
        counters = self.counters
        counters.count(counters.requests, KASA)
        reply = self.device.handle(request)
        if _log.debug_enabled():
            log.debug("Kasa request from {peer}: {request}", peer=peer,
                      request=messages.describe(request))
        refused = self.device.refused_in(reply)
        if refused:
            log.info("Refused {requests} from Kasa client {peer}: SenseLink plugs are read-only",
                     requests=", ".join(refused), peer=peer)
        if not self.respond:
            log.debug("Quiet mode: not answering the Kasa request from {peer}", peer=peer)
            return []
        counters.count(counters.replies, KASA)
        return [messages.encode(reply)]


class KasaDatagramProtocol(DatagramProtocol):
    """Kasa over UDP: one request per datagram, replies from the receiving socket.

    With C{target} set (an IP address), replies to the Sense request go to
    that host at the requester's port instead of to the requester; Kasa
    clients always get their reply themselves.
    """

    noisy = False

    def __init__(self, responder: Responder, target=None):
        self.responder = responder
        self.target = target

    def datagramReceived(self, data, addr):
        try:
            if len(data) > MAX_DATAGRAM:
                self.responder.counters.count(self.responder.counters.ignored, "oversized")
                log.debug("Dropped a {size}-byte datagram from {peer}", size=len(data), peer=addr[0])
                return
            kind, replies = self.responder.handle_kind(data, addr[0])
            if replies:
                # The target receives what Sense asked for; a Kasa client gets its own reply.
                dest = (self.target, addr[1]) if self.target and kind != KASA else addr
                write = self.transport.write
                for reply in replies:
                    write(reply, dest)
        except Exception:
            log.failure("Unexpected error answering a datagram from {peer}", peer=addr[0])


class KasaStreamProtocol(Protocol):
    """Kasa over TCP: 4-byte big-endian length prefix, several requests per connection."""

    def __init__(self, responder: Responder):
        self.responder = responder
        self._buffer = b""

    def connectionMade(self):
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.open.add(self)

    def connectionLost(self, reason=None):
        factory = getattr(self, "factory", None)
        if factory is not None:
            factory.open.discard(self)

    def dataReceived(self, data):
        try:
            self._buffer += data
            buffer = self._buffer
            header = cipher.HEADER_SIZE
            while len(buffer) >= header:
                length = cipher.frame_length(buffer[:header])
                if length > MAX_FRAME:
                    log.debug("Closing TCP connection from {peer}: frame of {length} bytes",
                              peer=self._peer(), length=length)
                    self.responder.counters.count(self.responder.counters.ignored, "oversized")
                    self._buffer = b""
                    self.transport.abortConnection()
                    return
                if len(buffer) < header + length:
                    break
                payload = buffer[header:header + length]
                buffer = buffer[header + length:]
                for reply in self.responder.handle(payload, self._peer()):
                    self.transport.write(cipher.frame(reply))
            self._buffer = buffer
        except Exception:
            log.failure("Unexpected error on a TCP connection from {peer}", peer=self._peer())
            self.transport.abortConnection()

    def _peer(self):
        peer = self.transport.getPeer()
        return getattr(peer, "host", str(peer))


class KasaStreamFactory(Factory):
    noisy = False

    def __init__(self, responder: Responder):
        self.responder = responder
        self.connections = 0     # TCP connections accepted so far
        self.open = set()        # protocols of the connections open now

    def buildProtocol(self, addr):
        self.connections += 1
        protocol = KasaStreamProtocol(self.responder)
        protocol.factory = self
        return protocol
