"""The web interface over the running daemon: its resource tree, site and auth.

L{WebInterface} is what the resources of L{senselink.web.api},
L{senselink.web.metrics} and L{senselink.web.page} read as C{web}.
"""

import hmac

from twisted.web.resource import Resource
from twisted.web.server import Site

from senselink.log import Logger
from senselink.web.api import Api, LimitedRequest, NotFound
from senselink.web.metrics import Metrics
from senselink.web.page import StatusPage

log = Logger()


class WebSite(Site):
    """The site: access lines go to our log at DEBUG (scrapes and page reloads are frequent)."""

    noisy = False

    def log(self, request):
        log.debug("Web {method} {path} from {peer}: {code}",
                  method=request.method.decode("ascii", "replace"),
                  path=request.uri.decode("utf-8", "replace")[:200],
                  peer=getattr(request.getClientAddress(), "host", "?"), code=request.code)


class Root(Resource):
    """C{/}: the status page; C{api} and C{metrics} below; JSON 404 for anything else."""

    def __init__(self, web):
        super().__init__()
        self.web = web

    def getChild(self, name, request):
        if name == b"":
            return StatusPage(self.web)
        return NotFound()


class WebInterface:
    """The web interface of the running daemon (L{senselink.daemon.Daemon}).

    Everything is read from the daemon at each request (its plugs, sources,
    counters and the running config's token), so a reload shows at once.
    The daemon is duck-typed: C{reactor}, C{plugs}, C{sources}, C{counters},
    C{config.options["web"].token}, C{set_power} and C{switch}.
    """

    def __init__(self, daemon):
        self.daemon = daemon
        self.reactor = daemon.reactor
        root = Root(self)
        root.putChild(b"api", Api(self))
        root.putChild(b"metrics", Metrics(self))
        self.root = root
        self.site = WebSite(root, requestFactory=LimitedRequest)
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
        options = self.daemon.config.options.get("web")
        return options.token if options is not None else None

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
