"""The head of an HTTP reply, read within declared bounds before Twisted's client sees it.

Twisted's HTTP client takes any number of interim (1xx) responses (one INFO
line each), any number of headers and header lines up to 16 KiB, and says
"Connection was closed cleanly." when a line is longer. L{BoundedHead} sits
between the connection and the client protocol: while a reply head is
awaited (from the moment a request is written until its final head has
ended) it reads the head line by line, drops interim responses (at most
L{MAX_INTERIM} per request), and refuses a head whose line, header count or
size passes its bound: the connection is aborted and the request fails with
L{HeadRefused}, whose message says which bound. A final head within the
bounds is handed on whole; the body passes through untouched.
"""

from zope.interface import implementer

from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.protocol import ClientFactory
from twisted.protocols.policies import ProtocolWrapper
from twisted.python.failure import Failure

MAX_INTERIM = 4             # interim (1xx) responses before the final one, per request
MAX_LINE = 8 * 1024         # bytes in the status line or one header line
MAX_HEADERS = 100           # header lines in one head
MAX_HEAD = 64 * 1024        # bytes in one head, status line and headers


class HeadRefused(Exception):
    """A reply head passed a bound; the message says which, and is safe to log."""


def _status_code(line: bytes):
    parts = line.split(None, 2)
    if len(parts) >= 2 and len(parts[1]) == 3 and parts[1].isdigit():
        return int(parts[1])
    return None


class BoundedHead(ProtocolWrapper):
    """The transport of the client protocol it wraps, and the reader of its reply heads."""

    def __init__(self, factory, wrappedProtocol):
        super().__init__(factory, wrappedProtocol)
        self.awaiting = False      # a request was written and its final head has not ended
        self.head = bytearray()    # the head read so far
        self.scanned = 0           # bytes of C{head} already split into lines
        self.headers = 0
        self.interim = 0
        self.refused = None        # the HeadRefused that ended the connection

    # -- the client protocol writes a request: its reply's head is awaited --

    def write(self, data):
        self._expect()
        super().write(data)

    def writeSequence(self, data):
        self._expect()
        super().writeSequence(data)

    def _expect(self):
        if not self.awaiting:
            self.awaiting = True
            self.head = bytearray()
            self.scanned = 0
            self.headers = 0
            self.interim = 0

    # -- the server's bytes --

    def dataReceived(self, data):
        if self.refused is not None:
            return
        if not self.awaiting:
            self.wrappedProtocol.dataReceived(data)
            return
        self.head += data
        while True:
            end = self.head.find(b"\n", self.scanned)
            if end < 0:
                break
            line = bytes(self.head[self.scanned:end]).rstrip(b"\r")
            start, self.scanned = self.scanned, end + 1
            if len(line) > MAX_LINE:
                return self._refuse(f"a reply header line is longer than {MAX_LINE} bytes")
            if self.scanned > MAX_HEAD:
                return self._refuse(f"the reply's head is larger than {MAX_HEAD} bytes")
            if start == 0:
                continue                       # the status line
            if line:
                self.headers += 1
                if self.headers > MAX_HEADERS:
                    return self._refuse(f"the reply has more than {MAX_HEADERS} headers")
                continue
            # The blank line: the head is complete.
            code = _status_code(bytes(self.head[:self.head.find(b"\n")]))
            if code is not None and 100 <= code < 200:
                self.interim += 1
                if self.interim > MAX_INTERIM:
                    return self._refuse(f"more than {MAX_INTERIM} interim (1xx) responses "
                                        f"before the reply")
                del self.head[:self.scanned]
                self.scanned = 0
                self.headers = 0
                continue
            self.awaiting = False
            head, self.head = bytes(self.head), bytearray()
            self.wrappedProtocol.dataReceived(head)
            return
        if len(self.head) - self.scanned > MAX_LINE:
            return self._refuse(f"a reply header line is longer than {MAX_LINE} bytes")

    def _refuse(self, reason):
        self.refused = HeadRefused(reason)
        self.head = bytearray()
        self.transport.abortConnection()

    def connectionLost(self, reason):
        if self.refused is not None:
            reason = Failure(self.refused)
        super().connectionLost(reason)


class BoundedHeadFactory(ClientFactory):
    """Wraps each protocol of C{wrapped} in L{BoundedHead}; quiet (no line per connection)."""

    noisy = False

    def __init__(self, wrapped):
        self.wrapped = wrapped

    def buildProtocol(self, addr):
        protocol = self.wrapped.buildProtocol(addr)
        return None if protocol is None else BoundedHead(self, protocol)

    def registerProtocol(self, protocol):
        pass

    def unregisterProtocol(self, protocol):
        pass


@implementer(IStreamClientEndpoint)
class BoundedHeadEndpoint:
    """An endpoint whose connections read reply heads through L{BoundedHead}."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def connect(self, factory):
        d = self.endpoint.connect(BoundedHeadFactory(factory))
        return d.addCallback(lambda wrapper: wrapper.wrappedProtocol)
