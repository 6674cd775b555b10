"""The HTTP side of the http source: its TLS policy, a quiet client factory, and a
response body read up to a limit (a larger one is a failed poll)."""

from zope.interface import implementer

from twisted.internet import defer
from twisted.internet.protocol import Protocol
from twisted.web.client import BrowserLikePolicyForHTTPS, ResponseDone, _HTTP11ClientFactory
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import IPolicyForHTTPS

from senselink.sources.tls import UnverifiedTLS, load_ca_file

MAX_BODY = 1024 * 1024   # bytes; a larger response body is a failed poll


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


class QuietClientFactory(_HTTP11ClientFactory):
    noisy = False


class PollFailed(Exception):
    """A poll did not give a usable body; the message is safe to log."""


class _LimitedBody(Protocol):
    """Collects a response body up to C{limit} bytes; drops the connection past that."""

    def __init__(self, finished, limit):
        self.finished = finished
        self.limit = limit
        self.parts = []
        self.size = 0

    def dataReceived(self, data):
        if self.finished is None:
            return
        self.size += len(data)
        if self.size > self.limit:
            finished, self.finished = self.finished, None
            self.parts = []
            self.transport.stopProducing()
            finished.errback(PollFailed(f"response body larger than {self.limit} bytes"))
            return
        self.parts.append(data)

    def connectionLost(self, reason):
        finished, self.finished = self.finished, None
        if finished is None:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            finished.callback(b"".join(self.parts))
        else:
            finished.errback(PollFailed(f"connection lost while reading the body: "
                                        f"{reason.getErrorMessage()}"))

    def abort(self):
        """Stop reading (the poll was cancelled)."""
        self.finished = None
        if self.transport is not None:
            self.transport.stopProducing()


def read_body(response, limit=MAX_BODY):
    """A Deferred firing with the body (bytes), failing with L{PollFailed} past C{limit}."""
    protocol = None

    def cancel(d):
        if protocol is not None:
            protocol.abort()

    finished = defer.Deferred(cancel)
    protocol = _LimitedBody(finished, limit)
    response.deliverBody(protocol)
    return finished
