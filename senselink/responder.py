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
    """

    def __init__(self, plugs, *, respond=True):
        self.plugs = plugs
        self.respond = respond
        self.counters = Counters()

    def sense_replies(self):
        """Encrypted replies to a Sense poll: one per reported plug due an answer."""
        return [plug.sense_datagram() for plug in self.plugs.reported if plug.should_answer()]

    def handle(self, data: bytes, peer: str):
        """The encrypted replies to send for C{data}, or an empty list."""
        counters = self.counters
        try:
            kind, request = messages.classify_datagram(data)
        except messages.MalformedRequest as e:
            counters.count(counters.ignored, "malformed")
            log.debug("Dropped malformed request from {peer}: {reason}", peer=peer, reason=str(e))
            return []
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
            return []
        else:
            counters.count(counters.ignored, "unsupported")
            log.debug("Ignored unsupported request from {peer}: {request}", peer=peer,
                      request=request)
            return []
        if not self.respond:
            log.debug("Quiet mode: not answering {peer} ({n} replies withheld)", peer=peer,
                      n=len(replies))
            return []
        counters.count(counters.replies, kind, len(replies))
        return replies


class KasaDatagramProtocol(DatagramProtocol):
    """Kasa over UDP: one request per datagram, replies from the receiving socket.

    With C{target} set (an IP address), replies go to that host at the
    requester's port instead of to the requester.
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
            replies = self.responder.handle(data, addr[0])
            if replies:
                dest = (self.target, addr[1]) if self.target else addr
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

    def buildProtocol(self, addr):
        protocol = KasaStreamProtocol(self.responder)
        protocol.factory = self
        return protocol
