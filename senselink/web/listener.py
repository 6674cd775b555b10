"""The listening services of the web interface: L{make_service} (the config's C{web}
section) and L{make_listener} (one more listener, e.g. for Home Assistant's ingress)."""

import ipaddress

from zope.interface import implementer

from twisted.application import strports
from twisted.application.service import MultiService
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.protocol import Factory

from senselink.log import Logger
from senselink.web.connections import ConnectionLimits
from senselink.web.interface import WebInterface

log = Logger()

MIN_TOKEN = 16               # a shorter web token is logged as a WARNING (warn_if_short)


def warn_if_short(token):
    """Log a WARNING when C{token} is set and shorter than L{MIN_TOKEN} (never the token).

    The daemon calls this when a token takes effect: at start, and at a
    reload that changes it (the running listeners use the new one at once).
    """
    if token and len(token) < MIN_TOKEN:
        log.warn("The web token is {n} characters long: use at least {min} random "
                 "characters (for instance: openssl rand -hex 16), it guards changes "
                 "to mutable plugs", n=len(token), min=MIN_TOKEN)


@implementer(IStreamServerEndpoint)
class AnnouncingEndpoint:
    """A server endpoint that logs where the web interface listens and keeps the port."""

    def __init__(self, endpoint, web: WebInterface, note=""):
        self.endpoint = endpoint
        self.web = web
        self.note = note        # e.g. who may connect
        self.port = None        # the port number once listening

    def listen(self, factory):
        return self.endpoint.listen(factory).addCallback(self._listening)

    def _listening(self, listening):
        host = listening.getHost()
        self.port = getattr(host, "port", None)
        token = self.web.token
        log.info("Web interface on http://{host}:{port}/ (API {api}){note}",
                 host=getattr(host, "host", host), port=self.port or "",
                 api="read-write with token" if token else "read-only: no token set",
                 note=self.note)
        return listening


def _address(host):
    """C{host} as an address to compare (IPv4-mapped IPv6 as IPv4), or None."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AllowedPeers(Factory):
    """Wraps a server factory: connections from other addresses than C{allowed} are
    closed at once, never served. The first refusal is logged as a warning, later ones
    at DEBUG (anyone can knock)."""

    def __init__(self, factory, allowed):
        self.factory = factory
        self.allowed = frozenset(_address(a) for a in allowed)
        self.refused = 0

    def doStart(self):
        self.factory.doStart()

    def doStop(self):
        self.factory.doStop()

    def buildProtocol(self, addr):
        if _address(getattr(addr, "host", None)) in self.allowed:
            return self.factory.buildProtocol(addr)
        self.refused += 1
        emit = log.warn if self.refused == 1 else log.debug
        emit("Web interface: refused a connection from {peer} (only {allowed} may connect); "
             "{n} refused so far", peer=getattr(addr, "host", addr),
             allowed=", ".join(sorted(str(a) for a in self.allowed)), n=self.refused)
        return None


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


def make_listener(daemon, listen, allow=None, note=""):
    """A listening service of the web interface of C{daemon} on C{listen} (a Twisted
    server endpoint string), serving only peers in C{allow} (addresses) when given.

    A port that cannot be bound raises at start (C{CannotListenError});
    C{service.endpoint.port} is the bound port.
    """
    # Behind the ingress proxy every request comes from its one address: no cap per peer.
    limits = None if allow is None else ConnectionLimits(daemon.reactor, max_per_peer=None)
    web = WebInterface(daemon, limits)
    site = web.site if allow is None else AllowedPeers(web.site, allow)
    listening = strports.service(listen, site, reactor=daemon.reactor)
    listening.endpoint = AnnouncingEndpoint(listening.endpoint, web, note)
    return WebService(listening, web)


def make_service(daemon, options):
    """The listening service of the web interface of C{daemon}.

    C{options} is the config's C{web} section; only its C{listen} (a Twisted
    server endpoint string) is read here, the token is read from the running
    config at each request. A port that cannot be bound raises at start
    (C{CannotListenError}); C{service.endpoint.port} is the bound port.
    """
    return make_listener(daemon, options.listen)
