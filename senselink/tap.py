"""twistd glue: command-line options and C{makeService} for C{twistd senselink}."""

import os
import socket

from twisted.application.service import MultiService
from twisted.logger import ILogObserver
from twisted.python import usage

from senselink import config as _config
from senselink import log as _log
from senselink import service as _service
from senselink.energy.service import state_file_problem
from senselink.errors import StartupError
from senselink.service import DEFAULT_INTERFACE, DEFAULT_PORT, parse_interface

FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _port(value):
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be 0..65535, got {port}")
    return port


class Options(usage.Options):
    synopsis = ("[-c CONFIG] [-p PORT] [--interface ADDR] [-q] [-l LEVEL] [--web-port PORT] "
                "[--ingress-port PORT]")
    longdesc = ("Serve virtual TP-Link Kasa HS110 plugs to a Sense Home Energy Monitor. "
                "Environment: CONFIG_LOCATION (config path), LOGLEVEL, SENSE_RESPONSE=false "
                "(same as --quiet).")
    optParameters = [
        ["config", "c", None,
         f"YAML config file (default: $CONFIG_LOCATION, else {_config.DEFAULT_PATH})"],
        ["port", "p", DEFAULT_PORT, "UDP and TCP port to answer on", _port],
        ["interface", None, DEFAULT_INTERFACE,
         "Address to listen on (default: all IPv4; '::' for IPv4 and IPv6)"],
        ["log-level", "l", None, "DEBUG, INFO, WARNING or ERROR (default: $LOGLEVEL, else INFO)"],
        ["web-port", None, None, "Also serve the web interface on this TCP port of --interface",
         _port],
        ["ingress-port", None, None, "Serve the web interface on this TCP port of --interface "
         "to Home Assistant's ingress proxy (172.30.32.2) only", _port],
    ]
    optFlags = [
        ["quiet", "q", "Receive and log requests but never answer"],
    ]

    def postOptions(self):
        env = os.environ
        if self["config"] is None:
            self["config"] = env.get("CONFIG_LOCATION") or _config.DEFAULT_PATH
        level = self["log-level"] or env.get("LOGLEVEL") or "INFO"
        try:
            self.level = _log.parse_level(level)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None
        self["log-level"] = level.strip().upper()
        if env.get("SENSE_RESPONSE", "true").strip().lower() in FALSE_WORDS:
            self["quiet"] = True
        try:
            self["interface"] = parse_interface(self["interface"])
        except ValueError as e:
            raise usage.UsageError(str(e)) from None


class TwistdRoot(MultiService):
    """What twistd runs: the daemon, with the log filtered by C{--log-level}.

    twistd asks its application for an C{ILogObserver} component when it
    begins logging (after C{makeService}, when no C{--logger} was given);
    this service sets one on the application it is given as parent: the
    observer twistd would make, filtered by level. So C{-l WARNING} also
    hides Twisted's own INFO lines.
    """

    def __init__(self, daemon, observer):
        super().__init__()
        self.daemon = daemon
        self.observer = observer
        daemon.setServiceParent(self)

    def setServiceParent(self, parent):
        if self.observer is not None and hasattr(parent, "setComponent"):
            parent.setComponent(ILogObserver, self.observer)
        super().setServiceParent(parent)


def check_ports(port, interface):
    """Raise L{StartupError} when UDP or TCP C{port} cannot be bound on C{interface} now.

    The sockets are bound the way Twisted's ports bind them and closed again.
    """
    family = socket.AF_INET6 if ":" in interface else socket.AF_INET
    for kind, what in ((socket.SOCK_DGRAM, "UDP"), (socket.SOCK_STREAM, "TCP")):
        with socket.socket(family, kind) as probe:
            if kind == socket.SOCK_STREAM:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((interface, port))
            except OSError as e:
                raise StartupError(f"cannot listen on {what} {interface}:{port}: "
                                   f"{e.strerror or e}") from None


def makeService(options, kinds=None):
    """Load and validate the config, then build the service tree.

    C{kinds}: the source kinds (default: the built-in ones).

    A bad config ends the program with one line per problem (file:line: key:
    what was expected) and exit code 1, before anything listens.
    """
    try:
        config = _config.load(options["config"], kinds)
    except _config.ConfigError as e:
        raise SystemExit(e.report()) from None
    parent = getattr(options, "parent", None)
    foreground = bool(parent["nodaemon"]) if parent is not None else True
    if not foreground:
        # twistd binds after detaching, where an error can only reach the
        # launching terminal as a repr and a traceback in the log file: try
        # the ports while a one-line error can still be printed.
        try:
            check_ports(options["port"], options["interface"])
        except StartupError as e:
            raise SystemExit(f"senselink: {e}") from None
        problem = state_file_problem(config.settings)
        if problem is not None:
            raise SystemExit(f"senselink: energy state file unusable: {problem}")
    daemon = _service.makeService(config, port=options["port"], interface=options["interface"],
                                  respond=not options["quiet"], foreground=foreground,
                                  kinds=kinds, debug=options.level is _log.LEVELS["DEBUG"],
                                  web_port=options["web-port"],
                                  ingress_port=options["ingress-port"])
    if parent is None:
        return daemon
    observer = None if parent.get("logger") else _log.twistd_observer(parent, options.level)
    return TwistdRoot(daemon, observer)
