"""A real twisted.web server on 127.0.0.1, port 0, that tests can script and clean up."""

from twisted.internet import defer, reactor
from twisted.web.server import Site


class TrackingSite(Site):
    """A Site that remembers its connections so a test can close them all before it ends."""

    noisy = False

    def __init__(self, resource, **kwargs):
        super().__init__(resource, **kwargs)
        self.protocols = []
        self.lost = []

    def buildProtocol(self, addr):
        protocol = super().buildProtocol(addr)
        lost = defer.Deferred()
        original = protocol.connectionLost

        def connectionLost(reason):
            try:
                original(reason)
            finally:
                if not lost.called:
                    lost.callback(None)

        protocol.connectionLost = connectionLost
        self.protocols.append(protocol)
        self.lost.append(lost)
        return protocol


def serve(testcase, resource, with_site=False):
    """Listen on 127.0.0.1:0 with C{resource}; return the port number (and the site).

    The listener and every connection it accepted are closed when the test ends.
    """
    site = TrackingSite(resource)
    port = reactor.listenTCP(0, site, interface="127.0.0.1")

    def cleanup():
        stopped = defer.maybeDeferred(port.stopListening)
        for protocol in site.protocols:
            transport = getattr(protocol, "transport", None)
            if transport is not None and transport.connected:
                transport.abortConnection()
        waits = defer.gatherResults([stopped] + site.lost)
        return waits.addTimeout(5, reactor)

    testcase.addCleanup(cleanup)
    if with_site:
        return port.getHost().port, site
    return port.getHost().port
