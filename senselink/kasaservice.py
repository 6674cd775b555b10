"""The Kasa side of the daemon as one service: what Sense and Kasa clients talk to.

L{KasaService} owns the Sense reply cache (a subscriber of the plug hub), the
responder with its guard and counters, who polls (L{senselink.requesters.Polling}),
where replies go (L{senselink.target.Target}), the strip Kasa clients see, and its
children: the listeners on UDP (Twisted's C{UDPServer} through
L{senselink.udpport.ArrivalListener}, so that on a wildcard address replies leave
from the address asked) and TCP (L{TCPListener}), and a timer that lets the energy
totals in cached Sense replies follow the counters.

A port that cannot be bound is one line (L{senselink.errors.StartupError}) naming
the listener. C{reconfigure(settings)} applies a C{DaemonSettings}' C{allow_from},
C{rate_limit}, C{device} and C{kasa_clients}.
"""

from types import MappingProxyType

from twisted.application.internet import TimerService, UDPServer
from twisted.application.service import MultiService, Service
from twisted.internet import defer

from senselink.guard import Guard
from senselink.log import Logger
from senselink.replies import SenseReplyCache
from senselink.requesters import Polling
from senselink.responder import KasaStreamFactory, Responder
from senselink.startchildren import start_each
from senselink.strip import make_strip
from senselink.target import Target
from senselink.udp import KasaDatagramProtocol
from senselink.udpport import ArrivalListener

log = Logger()

# Seconds between refreshes of the energy totals in cached Sense replies: the
# total a Sense reply carries is at most this old (Kasa clients read fresh ones).
REFRESH_INTERVAL = 60.0

# What each listening child is, for people (by service name).
LISTENERS = MappingProxyType({"udp": "on UDP {where}", "tcp": "on TCP {where}"})


class TCPListener(Service):
    """Listens on a TCP port with C{reactor.listenTCP} and keeps the listening port
    (C{port}, an C{IListeningPort}, None while not listening).

    Twisted's C{TCPServer} keeps its port in a private attribute; a TCP endpoint
    would hand it back, but importing the endpoints module loads pyOpenSSL and
    cryptography, a start-up cost the hot daemon avoids.
    """

    def __init__(self, port_number, factory, interface, reactor):
        self.port_number = port_number
        self.factory = factory
        self.interface = interface
        self.reactor = reactor
        self.port = None

    def privilegedStartService(self):
        Service.privilegedStartService(self)
        self._listen()

    def startService(self):
        Service.startService(self)
        self._listen()

    def _listen(self):
        if self.port is None:
            self.port = self.reactor.listenTCP(self.port_number, self.factory,
                                               interface=self.interface)

    def stopService(self):
        Service.stopService(self)
        port, self.port = self.port, None
        if port is not None:
            return defer.maybeDeferred(port.stopListening)


class KasaService(MultiService):
    """The responder, its guard, target and strip, and the Kasa listeners.

    C{hub}: the plugs (a L{senselink.plughub.PlugHub}); C{meter}: their energy
    counters; C{delivery}: told of each Sense poll; C{resolve}: host name ->
    Deferred(address), for a C{target} name.
    """

    name = "kasa"

    def __init__(self, settings, hub, meter, delivery, *, port, interface, reactor, resolve,
                 respond=True, debug=False):
        super().__init__()
        self.hub = hub
        self.meter = meter
        self.reactor = reactor
        self.replies = SenseReplyCache(total_kwh=meter.total_kwh)
        hub.subscribe(changed=self.replies.changed, replaced=self.replies.replace)
        self.polling = Polling(reactor)   # who polls us (Sense, Kasa clients), for the web
        self.delivery = delivery
        self.responder = Responder(self.replies, respond=respond, debug=debug,
                                   polling=self.polling, delivery=delivery)
        self.udp_protocol = KasaDatagramProtocol(self.responder, clock=reactor)
        self.target = Target(self.udp_protocol.aim, resolve, reactor)
        self.tcp_factory = KasaStreamFactory(self.responder, clock=reactor)
        udp = UDPServer(port, self.udp_protocol, interface=interface,
                        reactor=ArrivalListener(reactor))
        udp.setName("udp")
        udp.setServiceParent(self)
        self.tcp = TCPListener(port, self.tcp_factory, interface, reactor)
        self.tcp.setName("tcp")
        self.tcp.setServiceParent(self)
        totals = TimerService(REFRESH_INTERVAL, self.replies.refresh_totals)
        totals.clock = reactor
        totals.setName("totals")
        totals.setServiceParent(self)
        self.reconfigure(settings)

    def reconfigure(self, settings):
        """Who is answered (C{allow_from}, C{rate_limit}) and what Kasa clients see
        (C{device}, C{kasa_clients}), from a C{DaemonSettings}."""
        self.responder.set_guard(Guard(self.reactor, settings.allow_from, settings.rate_limit))
        device = None
        if settings.kasa_clients:
            device = make_strip(settings, self.hub, self.meter, self.reactor)
        self.responder.set_device(device)

    # -- reading --

    @property
    def counters(self):
        """What the responder saw and did (L{senselink.responder.Counters})."""
        return self.responder.counters

    @property
    def udp_port(self) -> int:
        """The UDP port answering Kasa requests (once started)."""
        return self.udp_protocol.transport.getHost().port

    @property
    def tcp_port(self) -> int:
        """The TCP port answering Kasa requests (once started)."""
        return self.tcp.port.getHost().port

    @property
    def quiet(self) -> bool:
        """Quiet mode: requests are received and counted, never answered."""
        return not self.responder.respond

    @property
    def strip(self):
        """The power strip Kasa clients see, or None (C{kasa_clients: false})."""
        return self.responder.device

    @property
    def listening(self) -> bool:
        """Whether both Kasa listeners listen."""
        return self.tcp.port is not None and self.udp_protocol.transport is not None

    @property
    def host(self) -> str:
        """The address the Kasa listeners are bound to (once started)."""
        return self.udp_protocol.transport.getHost().host

    # -- lifecycle --

    def privilegedStartService(self):
        Service.privilegedStartService(self)
        start_each(self, "privilegedStartService", LISTENERS)

    def startService(self):
        Service.startService(self)
        self.polling.restart()
        start_each(self, "startService", LISTENERS)

    def stopService(self):
        counters = self.counters
        log.info("Stopping: requests {requests}, replies {replies}, ignored {ignored}",
                 requests=counters.requests, replies=counters.replies, ignored=counters.ignored)
        self.target.stop()
        return super().stopService()
