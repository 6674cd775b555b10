"""The listening service of the web interface: L{make_service} and L{AnnouncingEndpoint}."""

from zope.interface import implementer

from twisted.application import strports
from twisted.internet.interfaces import IStreamServerEndpoint

from senselink.log import Logger
from senselink.web.interface import WebInterface

log = Logger()


@implementer(IStreamServerEndpoint)
class AnnouncingEndpoint:
    """A server endpoint that logs where the web interface listens and keeps the port."""

    def __init__(self, endpoint, web: WebInterface):
        self.endpoint = endpoint
        self.web = web
        self.port = None        # the port number once listening

    def listen(self, factory):
        return self.endpoint.listen(factory).addCallback(self._listening)

    def _listening(self, listening):
        host = listening.getHost()
        self.port = getattr(host, "port", None)
        log.info("Web interface on http://{host}:{port}/ (API {api})",
                 host=getattr(host, "host", host), port=self.port or "",
                 api="read-write with token" if self.web.token else "read-only: no token set")
        return listening


def make_service(daemon, options):
    """The listening service of the web interface of C{daemon}.

    C{options} is the config's C{web} section; only its C{listen} (a Twisted
    server endpoint string) is read here, the token is read from the running
    config at each request. A port that cannot be bound raises at start
    (C{CannotListenError}); C{service.endpoint.port} is the bound port.
    """
    web = WebInterface(daemon)
    service = strports.service(options.listen, web.site, reactor=daemon.reactor)
    service.endpoint = AnnouncingEndpoint(service.endpoint, web)
    return service
