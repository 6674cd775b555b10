"""The HTTP side of the http source: its TLS policy, its endpoints (reply heads read
within bounds, L{senselink.sources.httphead}), and a response body read up to a limit,
gzip decompressed piece by piece with bounded output (a larger one is a failed poll)."""

import zlib

from zope.interface import implementer

from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.web.client import BrowserLikePolicyForHTTPS, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IAgentEndpointFactory, IPolicyForHTTPS

from senselink.sources.httphead import BoundedHeadEndpoint
from senselink.sources.tls import UnverifiedTLS, load_ca_file

MAX_BODY = 1024 * 1024   # bytes (after decompression); a larger response body is a failed poll


@implementer(IPolicyForHTTPS)
class _UnverifiedPolicy:
    def creatorForNetloc(self, hostname, port):
        return UnverifiedTLS(hostname.decode("ascii"))


def tls_policy(settings):
    """The HTTPS policy for a source's C{verify_tls} / C{ca_file} (its typed settings)."""
    if not settings.verify_tls:
        return _UnverifiedPolicy()
    ca_file = settings.ca_file
    return BrowserLikePolicyForHTTPS(load_ca_file(ca_file) if ca_file else None)


@implementer(IAgentEndpointFactory)
class BoundedEndpoints:
    """TCP for C{http}, TLS with C{policy} for C{https}; every reply head read within bounds."""

    def __init__(self, reactor, policy):
        self.reactor = reactor
        self.policy = policy

    def endpointForURI(self, uri):
        endpoint = HostnameEndpoint(self.reactor, uri.host.decode("ascii"), uri.port)
        if uri.scheme == b"https":
            endpoint = wrapClientTLS(self.policy.creatorForNetloc(uri.host, uri.port), endpoint)
        return BoundedHeadEndpoint(endpoint)


class PollFailed(Exception):
    """A poll did not give a usable body; the message is safe to log."""


class _LimitedBody(Protocol):
    """Collects a response body up to C{limit} bytes (decompressed with C{gzip});
    drops the connection past that."""

    def __init__(self, finished, limit, gzip=False):
        self.finished = finished
        self.limit = limit
        self.parts = []
        self.size = 0
        self.decoder = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None

    def dataReceived(self, data):
        if self.finished is None:
            return
        if self.decoder is None:
            self._add(data)
            return
        try:
            while data and self.finished is not None:
                # At most one byte past the limit per piece: a bomb never inflates whole.
                self._add(self.decoder.decompress(data, self.limit - self.size + 1))
                data = self.decoder.unconsumed_tail
        except zlib.error as e:
            self._fail(PollFailed(f"the gzip body is corrupt ({e})"))

    def _add(self, data):
        self.size += len(data)
        if self.size > self.limit:
            self._fail(PollFailed(f"response body larger than {self.limit} bytes"))
            return
        self.parts.append(data)

    def _fail(self, problem):
        finished, self.finished = self.finished, None
        self.parts = []
        self.decoder = None
        self.transport.stopProducing()
        finished.errback(problem)

    def connectionLost(self, reason):
        finished = self.finished
        if finished is None:
            return
        if not reason.check(ResponseDone, PotentialDataLoss):
            self.finished = None
            finished.errback(PollFailed(f"connection lost while reading the body: "
                                        f"{reason.getErrorMessage()}"))
            return
        if self.decoder is not None:
            try:
                self._add(self.decoder.flush())
            except zlib.error as e:
                self.finished = None
                finished.errback(PollFailed(f"the gzip body is corrupt ({e})"))
                return
            if self.finished is None:
                return
        self.finished = None
        finished.callback(b"".join(self.parts))

    def abort(self):
        """Stop reading (the poll was cancelled)."""
        self.finished = None
        if self.transport is not None:
            self.transport.stopProducing()


def read_body(response, limit=MAX_BODY):
    """A Deferred firing with the body (bytes, gunzipped when the response says gzip),
    failing with L{PollFailed} past C{limit} bytes."""
    protocol = None

    def cancel(d):
        if protocol is not None:
            protocol.abort()

    encodings = response.headers.getRawHeaders(b"content-encoding") or []
    gzip = any(e.strip().lower() == b"gzip" for e in b",".join(encodings).split(b","))
    finished = defer.Deferred(cancel)
    protocol = _LimitedBody(finished, limit, gzip)
    response.deliverBody(protocol)
    return finished
