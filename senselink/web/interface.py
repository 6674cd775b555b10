"""The web interface over the running daemon: its resource tree, site and auth.

L{WebInterface} is what the resources of L{senselink.web.api},
L{senselink.web.events}, L{senselink.web.metrics} and L{senselink.web.page}
read as C{web}.
"""

import hmac

from twisted.web.server import Site

from senselink.log import Logger
from senselink.web.api import Api, JsonResource, LimitedRequest, NotFound
from senselink.web.connections import BoundedChannel, ConnectionLimits
from senselink.web.events import EventHub, Events
from senselink.web.house import House
from senselink.web.metrics import Metrics
from senselink.web.page import Static, StatusPage

log = Logger()

IDLE_TIMEOUT = 120           # seconds an HTTP connection may stay idle (event streams never are)


class WebSite(Site):
    """The site: access lines go to our log at DEBUG (scrapes and page reloads are frequent).

    Its connections are L{BoundedChannel}s within C{limits} (a
    L{ConnectionLimits}): connections over the caps are closed at once, a
    slow request is cut off, connections idle for L{IDLE_TIMEOUT} seconds
    between requests are closed, and L{close_connections} ends them all
    when the interface stops. C{reactor} times all of it.
    """

    noisy = False
    protocol = BoundedChannel

    def __init__(self, resource, *, limits=None, reactor=None, **kwargs):
        kwargs.setdefault("timeout", IDLE_TIMEOUT)
        if reactor is None:
            from twisted.internet import reactor
        super().__init__(resource, reactor=reactor, **kwargs)
        self.limits = limits if limits is not None else ConnectionLimits(reactor)

    def buildProtocol(self, addr):
        if not self.limits.admit(getattr(addr, "host", str(addr))):
            return None                   # Twisted closes the accepted socket
        return super().buildProtocol(addr)

    def close_connections(self):
        self.limits.close_all()

    def log(self, request):
        log.debug("Web {method} {path} from {peer}: {code}",
                  method=request.method.decode("ascii", "replace"),
                  path=request.uri.decode("utf-8", "replace")[:200],
                  peer=getattr(request.getClientAddress(), "host", "?"), code=request.code)


class Root(JsonResource):
    """C{/}: the status page; C{api}, C{metrics} and C{static} below; JSON 404 for the rest."""

    def getChild(self, name, request):
        if name == b"":
            return StatusPage(self.web)
        return NotFound()


class WebInterface:
    """The web interface of the running daemon (L{senselink.daemon.Daemon}).

    Everything is read from the daemon at each request (its plugs, sources,
    counters and the running config's token), so a reload shows at once.
    The daemon is duck-typed: C{reactor}, C{plugs}, C{sources}, C{counters},
    C{meter}, C{history}, C{polling}, C{quiet}, C{target},
    C{config.settings.web.token}, C{set_power} and C{switch}. C{limits}: the
    site's L{ConnectionLimits} (default: L{senselink.web.connections}' caps).
    """

    def __init__(self, daemon, limits=None):
        self.daemon = daemon
        self.reactor = daemon.reactor
        self.events = EventHub(self, daemon.reactor)
        root = Root(self)
        api = Api(self)
        api.putChild(b"events", Events(self.events))
        api.putChild(b"house", House(self))
        root.putChild(b"api", api)
        root.putChild(b"metrics", Metrics(self))
        root.putChild(b"static", Static())
        self.root = root
        self.site = WebSite(root, requestFactory=LimitedRequest, reactor=daemon.reactor,
                            limits=limits)
        self.site.displayTracebacks = False

    @property
    def plugs(self):
        return self.daemon.plugs

    @property
    def sources(self):
        return self.daemon.sources

    @property
    def counters(self):
        return self.daemon.counters

    @property
    def token(self):
        web = self.daemon.config.settings.web
        return web.token if web is not None else None

    def now(self):
        return self.reactor.seconds()

    def authorized(self, request) -> bool:
        """Whether C{request} carries C{Authorization: Bearer <the configured token>}."""
        token = self.token
        if not token:
            return False
        header = request.getHeader(b"authorization") or b""
        scheme, _, presented = header.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(presented.strip(), token.encode("utf-8"))
