"""The web interface's connections: how many, from whom, and how long a request may take.

Each listener of the web interface (its own site) holds at most
L{connection_limit} connections, L{MAX_PER_PEER} of them from one address;
more are closed as soon as they are accepted. The limit is chosen against
the process's descriptor limit (C{RLIMIT_NOFILE}) so that
L{RESERVED_DESCRIPTORS} stay free, whatever the web peers do, for what the
daemon exists for: the Kasa TCP connections (at most 64), the state file and
its temporary copy, the listening sockets, the sources' connections and the
log. With the usual soft limit of 1024: 128 connections per listener, at
most 3 listeners (C{web:}, C{--web-port}, C{--ingress-port}), 384 in all.

Time: a request's head must arrive whole within L{HEADERS_TIMEOUT} seconds
of its first byte (for the first request of a connection: of the
connection), its body within L{BODY_TIMEOUT} seconds of its head; between
requests a connection may stay idle for the site's C{timeout}. An event
stream (C{/api/events}) is a request being answered, so none of these
apply to it. A body larger than the request class's C{max_body} (declared
with the API's body, L{senselink.web.api.MAX_BODY}) is answered with a JSON
413 as soon as its C{Content-Length} (or its chunks) show it, none of the
rest is read, and the connection closes.

Refusals and time-outs are counted (L{ConnectionLimits.dropped}) and logged
at most once a minute per reason, never once per connection.
"""

import resource

from twisted.logger import LogLevel
from twisted.web.http import HTTPChannel

from senselink.log import Logger
from senselink.openconnections import OpenConnections
from senselink.web.api import error_bytes, too_large_message

log = Logger()

MAX_CONNECTIONS = 128        # per listener, with descriptors to spare (connection_limit)
MAX_PER_PEER = 32            # per peer address, per listener (a browser opens about 6)
MIN_CONNECTIONS = 8          # per listener, however low the descriptor limit
RESERVED_DESCRIPTORS = 256   # kept for the Kasa ports, the state file, sources, logs
LISTENERS = 3                # web:, --web-port, --ingress-port
HEADERS_TIMEOUT = 10.0       # seconds from a request's first byte to the end of its head
BODY_TIMEOUT = 30.0          # seconds from the end of the head to the end of the body
LOG_INTERVAL = 60.0          # seconds between log lines per reason


def connection_limit(soft=None) -> int:
    """Connections one listener may hold, given the soft C{RLIMIT_NOFILE} C{soft}
    (read from the process when None)."""
    if soft is None:
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY or soft < 0:
        return MAX_CONNECTIONS
    spare = (soft - RESERVED_DESCRIPTORS) // LISTENERS
    return max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, spare))


class ConnectionLimits:
    """The open connections of one listener: at most C{max_connections} (default:
    L{connection_limit}), C{max_per_peer} of them from one address (None: no cap
    per address, for a listener that only a proxy reaches). C{clock} times the log lines."""

    def __init__(self, clock, max_connections=None, max_per_peer=MAX_PER_PEER):
        self.clock = clock
        self.max_connections = connection_limit() if max_connections is None \
            else max_connections
        self.max_per_peer = self.max_connections if max_per_peer is None else max_per_peer
        self.open = OpenConnections()    # channels open now
        self.dropped = {}            # reason -> connections refused or timed out
        self.logged = {}             # reason -> time of the last log line

    def admit(self, host) -> bool:
        """Whether a new connection from C{host} may be served (refusals are counted)."""
        if len(self.open) >= self.max_connections:
            self.drop("connection_limit", "Web interface: refusing connections, {n} are "
                      "open (the limit); last from {peer}", peer=host, n=len(self.open))
            return False
        held = self.open.held(host)
        if held >= self.max_per_peer:
            self.drop("peer_limit", "Web interface: refusing connections from {peer}, it "
                      "holds {n} (the limit per address)", peer=host, n=held)
            return False
        return True

    def opened(self, channel):
        self.open.add(channel, channel.peer)

    def closed(self, channel):
        self.open.discard(channel, channel.peer)

    def drop(self, reason, message, level=LogLevel.warn, **fields):
        """Count C{reason}; log C{message} at most once per L{LOG_INTERVAL} for it."""
        count = self.dropped[reason] = self.dropped.get(reason, 0) + 1
        now = self.clock.seconds()
        last = self.logged.get(reason)
        if last is None or not 0 <= now - last < LOG_INTERVAL:
            self.logged[reason] = now
            log.emit(level, message + " ({count} so far; such lines are logged once a minute)",
                     count=count, **fields)

    def close_all(self):
        for channel in self.open:
            if channel.transport is not None:
                channel.transport.abortConnection()


class BoundedChannel(HTTPChannel):
    """An HTTP/1.1 connection of the web interface, bounded in time and body size.

    Its site (C{self.site}, set by the site) has C{limits}, the
    L{ConnectionLimits} it registers with.
    """

    headers_timeout = HEADERS_TIMEOUT
    body_timeout = BODY_TIMEOUT

    def __init__(self):
        super().__init__()
        self.peer = None
        self.receiving = False       # a request has begun and is not whole yet
        self.handling = False        # a whole request is being answered
        self.refused = False         # answered early; nothing more is read
        self.deadline = None
        self.aborting = None

    def connectionMade(self):
        super().connectionMade()
        address = self.transport.getPeer()
        self.peer = getattr(address, "host", str(address))
        self.site.limits.opened(self)
        self.start_deadline(self.headers_timeout, "slow_headers")

    def connectionLost(self, reason):
        self.end_deadline()
        if self.aborting is not None and self.aborting.active():
            self.aborting.cancel()
        self.aborting = None
        self.site.limits.closed(self)
        super().connectionLost(reason)

    def dataReceived(self, data):
        if self.refused:
            return
        if not self.receiving and not self.handling:
            self.receiving = True
            if self.deadline is None:        # the connection's first request has one
                self.start_deadline(self.headers_timeout, "slow_headers")
        super().dataReceived(data)

    def rawDataReceived(self, data):
        if not self.refused:
            super().rawDataReceived(data)

    def allHeadersReceived(self):
        self.end_deadline()
        request = self.requests[-1]
        limit = getattr(request, "max_body", None)
        if limit is not None and self.length is not None and self.length > limit:
            request.refuse_too_large()
            self.refuse_body(limit)
            return
        super().allHeadersReceived()
        if self.length != 0:
            self.start_deadline(self.body_timeout, "slow_body")

    def allContentReceived(self):
        if self.refused:
            return
        self.end_deadline()
        self.receiving = False
        self.handling = True
        super().allContentReceived()

    def requestDone(self, request):
        self.handling = False            # before the next request's buffered bytes are read
        super().requestDone(request)

    def refuse_body(self, limit):
        """Answer a JSON 413 for a body over C{limit} bytes and close; read nothing more."""
        self.site.limits.drop("body_too_large", "Web interface: refused a request body over "
                              "{limit} bytes from {peer}", limit=limit, peer=self.peer)
        body = error_bytes(too_large_message(limit))
        self.refused = True
        self.end_deadline()
        self.setTimeout(None)
        self.transport.write(b"HTTP/1.1 413 Content Too Large\r\n"
                             b"Content-Type: application/json; charset=utf-8\r\n"
                             b"Cache-Control: no-store\r\nConnection: close\r\n"
                             b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.close()

    def start_deadline(self, seconds, reason):
        self.end_deadline()
        self.deadline = self.callLater(seconds, self.late, reason)

    def end_deadline(self):
        deadline, self.deadline = self.deadline, None
        if deadline is not None and deadline.active():
            deadline.cancel()

    def late(self, reason):
        self.deadline = None
        self.site.limits.drop(reason, "Web interface: closed a connection from {peer} that "
                              "sent a request too slowly ({what})", peer=self.peer,
                              what=reason)
        self.close()

    def timeoutConnection(self):
        """Idle between requests for the site's C{timeout} (Twisted's idle time-out)."""
        self.site.limits.drop("idle", "Web interface: closed a connection from {peer} idle "
                              "for {seconds} s", LogLevel.debug, peer=self.peer,
                              seconds=self.timeOut)
        self.close()

    def close(self):
        """Close after what is written has been sent; abort after C{abortTimeout} seconds."""
        self.end_deadline()
        self.loseConnection()
        if self.aborting is None and self.abortTimeout is not None:
            self.aborting = self.callLater(self.abortTimeout, self.transport.abortConnection)
