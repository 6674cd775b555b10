"""Server push for the status page: C{GET /api/events}, Server-Sent Events.

A new client gets a C{snapshot} event (everything the page shows). While
clients are connected, a tick every L{TICK} seconds sends C{plugs} (the
plugs whose watts or state changed since the tick before). Every
L{STATUS_TICKS} ticks the status is looked at, and only what changed is
sent: C{status} (the status document and every plug's energy) when more
than the activity changed (a source connected, the no-Sense banner came or
went, a reload), else, at most every L{ACTIVITY_TICKS} ticks, C{activity}
(the Sense and Kasa clients' counters and the sources' last values) when
those moved; every L{ENERGY_TICKS} ticks C{energy} with the plugs whose kWh
as shown (3 decimals) changed. A stream that had nothing for
L{HEARTBEAT_TICKS} ticks gets a comment line, so proxies and the browser
know it is alive. An idle page receives well under 10 KB a minute. A
changed plug set (a reload) sends a new C{snapshot}. Each event is encoded
once and written to every client; nothing is done per Kasa request.

Bounded per client: each connection is a push producer of its HTTP
request. When the transport's buffer is full (a slow reader) it is paused
and nothing more is written to it; what it missed is coalesced into one
C{snapshot} when it resumes. A client paused for L{DROP_AFTER} seconds is
dropped. At most L{MAX_CLIENTS} clients at once; more get a JSON 503.
"""

import json

from zope.interface import implementer

from twisted.internet.interfaces import IPushProducer
from twisted.internet.task import LoopingCall
from twisted.web.server import NOT_DONE_YET

from senselink.log import Logger
from senselink.web.api import JsonResource, error
from senselink.web.documents import energy_figures, snapshot, status_document

log = Logger()

TICK = 0.5                   # seconds between checks for changed plugs
STATUS_TICKS = 4             # the status is looked at every this many ticks (2 s)
ACTIVITY_TICKS = 12          # an activity event at most every this many ticks (6 s)
ENERGY_TICKS = 60            # changed energy figures every this many ticks (30 s)
HEARTBEAT_TICKS = 30         # a comment after this many ticks without an event (15 s)
HEARTBEAT = b":\n\n"
DROP_AFTER = 30.0            # seconds a paused (not reading) client is kept
MAX_CLIENTS = 100            # event streams open at once
RETRY_MS = 2000              # the browser reconnects this long after the stream ends


def event(name, document) -> bytes:
    """One Server-Sent Event: C{event: name} and one line of JSON data."""
    return (b"event: " + name.encode("ascii") + b"\ndata: "
            + json.dumps(document, separators=(",", ":")).encode("utf-8") + b"\n\n")


def _live(plug):
    return (plug.watts, plug.on, plug.updated)


def activity(status):
    """The parts of a status document that move while nothing else does: the counters of
    Sense and Kasa clients, and when each source last gave a value."""
    return {"now": status["now"], "sense": status["sense"],
            "kasa_clients": status["kasa_clients"], "not_allowed": status["not_allowed"],
            "sources": [source["last_update"] for source in status["sources"]]}


def shape(status):
    """A status document without its activity and its times: what, when it changes, is
    worth a whole C{status} event."""
    out = dict(status, now=None, reported_watts=None, sense=None, kasa_clients=None,
               not_allowed=None)
    out["sources"] = [dict(source, last_update=None, age=None) for source in status["sources"]]
    if status["silence"] is not None:
        out["silence"] = dict(status["silence"], seconds=None)
    return out


def without_ages(document):
    """C{activity(...)} without what changes with time alone."""
    out = dict(document, now=None)
    for key in ("sense", "kasa_clients"):
        out[key] = dict(document[key], age=None, polls_per_minute=None)
    return out


@implementer(IPushProducer)
class Client:
    """One open event stream: its request, and whether its transport wants more."""

    def __init__(self, hub, request):
        self.hub = hub
        self.request = request
        self.paused_since = None     # reactor seconds it was paused, while paused
        self.missed = False          # events were skipped while paused
        self.sent = 0                # bytes written
        self.closed = False

    def send(self, data):
        if self.closed:
            return
        if self.paused_since is not None:
            self.missed = True
            return
        self.sent += len(data)
        self.request.write(data)

    # IPushProducer: the transport's buffer filled up or drained.

    def pauseProducing(self):
        if self.paused_since is None:
            self.paused_since = self.hub.clock.seconds()

    def resumeProducing(self):
        self.paused_since = None
        if self.missed and not self.closed:
            self.missed = False
            self.send(event("snapshot", snapshot(self.hub.web, self.hub.clock.seconds())))

    def stopProducing(self):
        self.close()

    def gone(self):
        """The request ended (the hub forgets this client itself): send nothing more."""
        self.closed = True

    def close(self):
        """Forget this client and end its stream."""
        if self.closed:
            return
        self.closed = True
        self.hub.clients.discard(self)
        transport = self.request.transport
        if transport is not None:
            transport.abortConnection()


class EventHub:
    """The event streams of one web interface and the tick that feeds them."""

    def __init__(self, web, clock, *, tick=TICK, drop_after=DROP_AFTER, max_clients=MAX_CLIENTS):
        self.web = web
        self.clock = clock
        self.interval = tick
        self.drop_after = drop_after
        self.max_clients = max_clients
        self.clients = set()
        self.ticks = 0
        self._loop = None
        self._plugs = None           # the plug set of the last events
        self._live = {}              # plug id -> (watts, on, updated) last sent
        self._shape = None           # shape() of the last status sent
        self._activity = None        # without_ages(activity()) last sent
        self._activity_tick = 0      # the tick of the last activity sent
        self._energy = {}            # plug id -> energy figures last sent
        self._quiet_ticks = 0        # ticks since the last event

    def add(self, request):
        """Start streaming to C{request} (the resource has checked L{max_clients})."""
        client = Client(self, request)
        self.clients.add(client)
        now = self.clock.seconds()
        if self._plugs is not self.web.plugs:
            self._remember()
        request.registerProducer(client, True)
        request.notifyFinish().addBoth(lambda _: self._gone(client))
        client.send(f"retry: {RETRY_MS}\n\n".encode("ascii")
                    + event("snapshot", snapshot(self.web, now)))
        if self._loop is None:
            self._loop = LoopingCall(self.tick)
            self._loop.clock = self.clock
            self._loop.start(self.interval, now=False)
        return client

    def _gone(self, client):
        client.gone()
        self.clients.discard(client)
        if not self.clients:
            self._stop_loop()

    def _stop_loop(self):
        if self._loop is not None:
            loop, self._loop = self._loop, None
            if loop.running:
                loop.stop()

    def _remember(self):
        plugs = self._plugs = self.web.plugs
        self._live = {plug.id: _live(plug) for plug in plugs}

    def broadcast(self, data):
        self._quiet_ticks = 0
        for client in list(self.clients):
            client.send(data)

    def tick(self):
        """Send what changed; drop clients that have not read for L{drop_after} seconds."""
        now = self.clock.seconds()
        self.ticks += 1
        for client in list(self.clients):
            if client.paused_since is not None and now - client.paused_since >= self.drop_after:
                log.info("Web: dropping an event stream that has not read for {seconds:.0f} s",
                         seconds=now - client.paused_since)
                client.close()
        if not self.clients:
            self._stop_loop()
            return
        plugs = self.web.plugs
        if plugs is not self._plugs:
            self._remember()
            self._shape = None
            self.broadcast(event("snapshot", snapshot(self.web, now)))
            return
        live = self._live
        changed = []
        for plug in plugs:
            values = _live(plug)
            if live.get(plug.id) != values:
                live[plug.id] = values
                changed.append({"id": plug.id, "watts": plug.watts, "on": plug.on,
                                "updated": plug.updated})
        if changed:
            self.broadcast(event("plugs", {"now": now, "plugs": changed}))
        if self.ticks % STATUS_TICKS == 0:
            self.status_changes(now)
        if self.ticks % ENERGY_TICKS == 0:
            energy = self.changed_energy(now)
            if energy:
                self.broadcast(event("energy", {"now": now, "energy": energy}))
        self._quiet_ticks += 1
        if self._quiet_ticks >= HEARTBEAT_TICKS:
            self.broadcast(HEARTBEAT)

    def status_changes(self, now):
        """A C{status} event when more than the activity changed, else an C{activity}
        event when that moved (at most every L{ACTIVITY_TICKS} ticks)."""
        status = status_document(self.web, now)
        moved = without_ages(activity(status))
        if shape(status) != self._shape:
            self._shape = shape(status)
            self._activity = moved
            self._activity_tick = self.ticks
            self.broadcast(event("status", self.status(now, status)))
        elif moved != self._activity and self.ticks - self._activity_tick >= ACTIVITY_TICKS:
            self._activity = moved
            self._activity_tick = self.ticks
            self.broadcast(event("activity", activity(status)))

    def changed_energy(self, now):
        """C{{plug id: figures}} of the plugs whose figures changed since last sent."""
        meter = self.web.daemon.meter
        out = {}
        for plug in self.web.plugs:
            figures = energy_figures(meter, plug, now)
            if figures is not None:
                shown = [round(kwh, 3) for kwh in figures]
                if self._energy.get(plug.id) != shown:
                    self._energy[plug.id] = shown
                    out[plug.id] = figures
        return out

    def status(self, now, status=None):
        meter = self.web.daemon.meter
        energy = {}
        for plug in self.web.plugs:
            figures = energy_figures(meter, plug, now)
            if figures is not None:
                energy[plug.id] = figures
                self._energy[plug.id] = [round(kwh, 3) for kwh in figures]
        if status is None:
            status = status_document(self.web, now)
        delivery = self.web.daemon.delivery
        sense = {plug.id: delivery.summary(plug.id, now) for plug in self.web.plugs.reported}
        return {"now": now, "status": status, "energy": energy, "sense": sense}

    def close(self):
        """End every stream and the tick (the web interface stops)."""
        for client in list(self.clients):
            client.close()
        self._stop_loop()


class Events(JsonResource):
    """C{/api/events}: the event stream (C{text/event-stream})."""

    isLeaf = True

    def __init__(self, hub):
        super().__init__()
        self.hub = hub

    def _headers(self, request):
        request.setHeader(b"Content-Type", b"text/event-stream; charset=utf-8")
        request.setHeader(b"Cache-Control", b"no-store")
        request.setHeader(b"X-Accel-Buffering", b"no")    # proxies: do not buffer the stream

    def render_HEAD(self, request):
        self._headers(request)
        return b""

    def render_GET(self, request):
        if len(self.hub.clients) >= self.hub.max_clients:
            request.setHeader(b"Retry-After", b"10")
            return error(request, 503, f"too many event streams open "
                                       f"({self.hub.max_clients}); try again later")
        self._headers(request)
        self.hub.add(request)
        return NOT_DONE_YET
