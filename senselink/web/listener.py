"""The listening service of the web interface: L{make_service}, L{WebService} and
L{AnnouncingEndpoint}."""

from zope.interface import implementer

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.interfaces import IStreamServerEndpoint

from senselink.log import Logger
from senselink.web.interface import WebInterface

log = Logger()

MIN_TOKEN = 16               # a shorter web token is logged as a WARNING at start


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
        token = self.web.token
        log.info("Web interface on http://{host}:{port}/ (API {api})",
                 host=getattr(host, "host", host), port=self.port or "",
                 api="read-write with token" if token else "read-only: no token set")
        if token and len(token) < MIN_TOKEN:
            log.warn("The web token is {n} characters long: use at least {min} random "
                     "characters (for instance: openssl rand -hex 16), it guards changes "
                     "to mutable plugs", n=len(token), min=MIN_TOKEN)
        return listening


class WebService(MultiService):
    """The web interface's listening service (its child); stopping also ends the open
    connections and event streams.

    C{endpoint} is the L{AnnouncingEndpoint} (C{endpoint.port} once listening).
    """

    def __init__(self, listening, web: WebInterface):
        super().__init__()
        self.web = web
        self.endpoint = listening.endpoint
        listening.setServiceParent(self)

    def stopService(self):
        d = super().stopService()
        self.web.events.close()
        self.web.site.close_connections()
        return d


def make_service(daemon, options):
    """The listening service of the web interface of C{daemon}.

    C{options} is the config's C{web} section; only its C{listen} (a Twisted
    server endpoint string) is read here, the token is read from the running
    config at each request. A port that cannot be bound raises at start
    (C{CannotListenError}); C{service.endpoint.port} is the bound port.
    """
    web = WebInterface(daemon)
    listening = strports.service(options.listen, web.site, reactor=daemon.reactor)
    listening.endpoint = AnnouncingEndpoint(listening.endpoint, web)
    return WebService(listening, web)
