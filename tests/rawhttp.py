"""A misbehaving HTTP server on 127.0.0.1: each request head is answered by a script's
chunks of raw bytes, written only as fast as the client reads them (a push producer),
so a flood is bounded by what the client takes, and every chunk sent is counted."""

from zope.interface import implementer

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol

MAX_REQUEST_HEAD = 64 * 1024


def parse_head(head: bytes):
    """C{(target, {lower-case name: [values]})} of a request head."""
    lines = head.split(b"\r\n")
    target = lines[0].split(b" ")[1] if len(lines[0].split(b" ")) > 1 else b""
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return target, headers


@implementer(IPushProducer)
class Scripted(Protocol):

    def __init__(self):
        self.buffer = b""
        self.chunks = None
        self.paused = False
        self.lost = False
        self.call = None
        self.ended = defer.Deferred()

    def dataReceived(self, data):
        self.buffer += data
        if len(self.buffer) > MAX_REQUEST_HEAD:
            self.transport.abortConnection()
            return
        while b"\r\n\r\n" in self.buffer and self.chunks is None:
            head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
            target, headers = parse_head(head)
            self.factory.requests.append((target, headers))
            self.send(self.factory.script(target, headers))

    def send(self, chunks):
        self.chunks = iter(chunks)
        self.transport.registerProducer(self, True)
        self._next()

    def _next(self):
        self.call = None
        for _ in range(16):       # a few chunks per turn of the reactor
            if self.lost or self.paused or self.chunks is None:
                return
            chunk = next(self.chunks, None)
            if chunk is None:
                self.chunks = None
                self.transport.unregisterProducer()
                return
            self.factory.sent += len(chunk)
            self.transport.write(chunk)
        self.call = reactor.callLater(0, self._next)

    def pauseProducing(self):
        self.paused = True

    def resumeProducing(self):
        self.paused = False
        if self.call is None:
            self._next()

    def stopProducing(self):
        self.lost = True

    def connectionLost(self, reason):
        self.lost = True
        if self.call is not None and self.call.active():
            self.call.cancel()
        self.call = None
        self.ended.callback(None)


class ScriptedServer(Factory):
    """C{script(target, headers)} -> an iterable of byte chunks, the whole reply."""

    noisy = False
    protocol = Scripted

    def __init__(self, script):
        self.script = script
        self.requests = []
        self.protocols = []
        self.sent = 0      # bytes written to clients

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        self.protocols.append(protocol)
        return protocol


def serve_script(testcase, script):
    """Listen on 127.0.0.1:0 with a L{ScriptedServer}; return C{(port number, server)}.
    The listener and its connections are closed when the test ends."""
    server = ScriptedServer(script)
    port = reactor.listenTCP(0, server, interface="127.0.0.1")

    def cleanup():
        waits = [defer.maybeDeferred(port.stopListening)]
        for protocol in server.protocols:
            if not protocol.lost:
                protocol.transport.abortConnection()
            waits.append(protocol.ended)
        return defer.gatherResults(waits).addTimeout(5, reactor)

    testcase.addCleanup(cleanup)
    return port.getHost().port, server


def reply(body, code=200, phrase=b"OK", headers=()):
    """The bytes of a whole reply with a Content-Length."""
    lines = [b"HTTP/1.1 %d %s" % (code, phrase), b"Content-Length: %d" % len(body)]
    lines += list(headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
