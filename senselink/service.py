"""The service tree: C{makeService(config) -> SenseLinkService} (a C{MultiService}).

Children: the energy counters' service (state file), the UDP listener, the
TCP listener, and one service per source that connects to something. twistd (or any Twisted program embedding us)
owns start, stop and logging.
"""

import ipaddress

from twisted.application.service import MultiService, Service
from twisted.internet.error import CannotListenError

from senselink import config as _config
from senselink import energy as _energy
from senselink import strip as _strip
from senselink.guard import Guard
from senselink.log import Logger
from senselink.plugs import AggregatePlug, Plug, PlugSet
from senselink.reload import Reloader
from senselink.responder import UNRESOLVED, KasaDatagramProtocol, KasaStreamFactory, Responder
from senselink.sources import default_kinds

log = Logger()

DEFAULT_PORT = 9999
DEFAULT_INTERFACE = "0.0.0.0"


class StartupError(Exception):
    """The daemon cannot start (port in use, bad interface, ...). One line, no traceback."""


def _listen_error(what, port, interface, error):
    reason = getattr(error, "socketError", None) or error
    reason = getattr(reason, "strerror", None) or str(reason)
    where = f"{interface}:{port}" if interface else str(port)
    return StartupError(f"cannot listen on {what} {where}: {reason}")


class _Listener(Service):
    """Listens on a port with a Kasa protocol, bound in privilegedStartService."""

    what = ""

    def __init__(self, protocol_or_factory, port, interface, reactor):
        self.target = protocol_or_factory
        self.port = port
        self.interface = interface
        self.reactor = reactor
        self.listening = None

    def privilegedStartService(self):
        super().privilegedStartService()
        self._listen()

    def startService(self):
        super().startService()
        if self.listening is None:
            self._listen()

    def _listen(self):
        try:
            self.listening = self.listen()
        except (CannotListenError, OSError, ValueError) as e:
            raise _listen_error(self.what, self.port, self.interface, e) from None
        log.info("Answering Kasa requests on {what} {interface}:{port}", what=self.what,
                 interface=self.interface, port=self.listening.getHost().port)

    def stopService(self):
        super().stopService()
        listening, self.listening = self.listening, None
        if listening is not None:
            return listening.stopListening()


class UDPListener(_Listener):
    """The Kasa datagram protocol on a UDP port (Twisted has no UDP endpoints)."""

    what = "UDP"

    def listen(self):
        return self.reactor.listenUDP(self.port, self.target, interface=self.interface)


class TCPListener(_Listener):
    """The Kasa stream factory on a TCP port.

    reactor.listenTCP rather than a TCP endpoint: importing
    twisted.internet.endpoints loads pyOpenSSL and cryptography, which costs
    start-up time and several MB of memory for nothing here.
    """

    what = "TCP"

    def listen(self):
        return self.reactor.listenTCP(self.port, self.target, interface=self.interface)


def build_plugs(config, clock, kinds=None) -> PlugSet:
    """Plug objects for every configured plug, aggregates wired to their elements."""
    if kinds is None:
        kinds = default_kinds()
    made = {}
    for pc in config.plugs.values():
        cls = AggregatePlug if pc.kind == "aggregate" else Plug
        watts, on = kinds[pc.kind].initial(pc)
        made[pc.id] = cls(pc.id, alias=pc.get("alias"), mac=pc["mac"], device_id=pc["device_id"],
                          kind=pc.kind, clock=clock, skip_rate=pc["skip_rate"],
                          voltage=pc["voltage"], watts=watts, on=on)
    for pc in config.plugs.values():
        if pc.kind == "aggregate":
            for element in pc["elements"]:
                made[pc.id].add(made[element])
    return PlugSet(made.values())


class SenseLinkService(MultiService):
    """The whole daemon: plugs, Kasa listeners and source services.

    The Python API for embedding: L{plugs} (a L{PlugSet}), L{set_power}
    for mutable plugs, L{udp_port}/L{tcp_port} once started.
    """

    name = "senselink"

    def __init__(self, config, *, port=DEFAULT_PORT, interface=DEFAULT_INTERFACE,
                 respond=True, reactor=None, foreground=True, kinds=None):
        super().__init__()
        if reactor is None:
            from twisted.internet import reactor
        if kinds is None:
            kinds = default_kinds()
        self.config = config
        self.reactor = reactor
        self.kinds = kinds
        self.foreground = foreground
        self.plugs = build_plugs(config, reactor, kinds)
        self.meter = _energy.EnergyMeter(self.plugs, reactor)
        self.energy = _energy.EnergyService(
            self.meter, config.options.get("state_file") or _energy.DEFAULT_STATE_FILE, reactor)
        self.energy.setServiceParent(self)
        self.strip = None
        if config.options.get("kasa_clients", True):
            self.strip = _strip.make_strip(config, self.plugs, reactor)
        self.guard = Guard.from_config(config, reactor)
        self.responder = Responder(self.plugs, respond=respond, device=self.strip, guard=self.guard)
        target = config.target
        self.udp_protocol = KasaDatagramProtocol(
            self.responder, target if target and _config.is_ip(target) else None)
        self.udp = UDPListener(self.udp_protocol, port, interface, reactor)
        self.udp.setName("udp")
        self.udp.setServiceParent(self)
        self.tcp_factory = KasaStreamFactory(self.responder, clock=reactor)
        self.tcp = TCPListener(self.tcp_factory, port, interface, reactor)
        self.tcp.setName("tcp")
        self.tcp.setServiceParent(self)
        self.sources = []
        self.source_configs = []   # the SourceConfig of each of self.sources (for reload)
        for source in config.sources:
            service = kinds[source.kind].make_service(source, self.plugs, reactor)
            if service is not None:
                service.setServiceParent(self)
                self.sources.append(service)
                self.source_configs.append(source)
        # SIGHUP and reload(): re-read the config without dropping the listeners.
        self.reloader = Reloader(self)
        self.reloader.setName("reload")
        self.reloader.setServiceParent(self)
        self.web = None
        if config.options.get("web") is not None:
            from senselink import web as _web     # loaded only when configured
            self.web = _web.attach(self)

    # -- lifecycle --

    def privilegedStartService(self):
        try:
            super().privilegedStartService()
        except StartupError as e:
            self._fail(e)

    def startService(self):
        try:
            super().startService()
        except StartupError as e:
            self._fail(e)
        for warning in self.config.warnings:
            log.warn("{problem}", problem=warning)
        reported = self.config.reported()
        log.info("SenseLink started from {path}: {n} plugs, {r} reported to Sense{quiet}",
                 path=self.config.path, n=len(self.plugs), r=len(reported),
                 quiet="" if self.responder.respond else " (quiet mode: not answering)")
        if self.strip is not None:
            log.info("Kasa clients see a power strip {alias} ({mac}) with {n} sockets",
                     alias=self.strip.alias, mac=self.strip.mac, n=len(reported))
        else:
            log.info("kasa_clients is false: only the Sense request is answered")
        for plug in self.plugs:
            where = "reported" if plug.reported else f"in aggregate {plug.aggregate.id}"
            log.info("Plug {plug} ({alias}, {mac}, {kind}): {watts} W, {where}",
                     plug=plug.id, alias=plug.alias, mac=plug.mac, kind=plug.kind,
                     watts=plug.watts, where=where)
        target = self.config.target
        if target and self.udp_protocol.target is None:
            self.reactor.resolve(target).addCallbacks(self._resolved, self._unresolved,
                                                      errbackArgs=(target,))

    def stopService(self):
        counters = self.responder.counters
        log.info("Stopping: requests {requests}, replies {replies}, ignored {ignored}",
                 requests=counters.requests, replies=counters.replies, ignored=counters.ignored)
        return super().stopService()

    def _resolved(self, address):
        log.info("Replies go to target {address}", address=address)
        self.udp_protocol.target = address

    def _unresolved(self, failure, target):
        log.error("Cannot resolve target {target}: {reason}; Sense requests are not answered",
                  target=target, reason=failure.getErrorMessage())
        self.udp_protocol.target = UNRESOLVED  # never answer the requester instead of the target

    def _fail(self, error):
        if self.foreground:
            # One line on stderr (twistd -n shows it in its log) and exit code 1.
            raise SystemExit(f"senselink: {error}")
        # Daemon mode: twistd reports the exception to the waiting parent process.
        log.critical("{error}", error=str(error))
        raise error

    # -- API --

    @property
    def udp_port(self) -> int:
        return self.udp.listening.getHost().port

    @property
    def tcp_port(self) -> int:
        return self.tcp.listening.getHost().port

    def set_power(self, plug_id, watts, on=None):
        """Set a C{mutable} plug's power in watts (a finite number >= 0).

        Raises KeyError for an unknown plug, TypeError for a plug that is not
        mutable, ValueError for a bad value.
        """
        plug = self.plugs[plug_id]
        if plug.kind != "mutable":
            raise TypeError(f"plug {plug_id!r} is a {plug.kind} plug, not mutable")
        from senselink.power import UnreadableValue, number
        try:
            value = number(watts)
        except UnreadableValue as e:
            raise ValueError(str(e)) from None
        if value < 0:
            raise ValueError(f"power must not be negative, got {value!r}")
        plug.set_power(value, on)
        log.info("Mutable plug {plug} set to {watts} W", plug=plug_id, watts=value)


def makeService(config, **kwargs) -> SenseLinkService:
    """Build the service tree from a L{Config} or a config file path."""
    if isinstance(config, str):
        config = _config.load(config)
    return SenseLinkService(config, **kwargs)


def parse_interface(value: str) -> str:
    """Check an interface address for listening; ValueError if it is not an IP address."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"--interface must be an IP address, got {value!r}") from None
