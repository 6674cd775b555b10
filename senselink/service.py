"""The service tree: C{makeService(config) -> Daemon} (a C{MultiService}).

Under the L{senselink.daemon.Daemon} (which runs the sources, the web
interface and the state file itself): the Kasa listeners on UDP and TCP
(Twisted's C{UDPServer}, listening through L{senselink.udpport.ArrivalPort},
and C{TCPServer}), the reloader (SIGHUP), a timer that lets the Sense
replies' energy totals follow the counters, and under systemd the notifier
(READY, STATUS, RELOADING, STOPPING, watchdog). twistd (or any Twisted
program embedding us) owns start, stop and logging.
"""

import ipaddress

from twisted.application.internet import TCPServer, TimerService, UDPServer

from senselink.daemon import Daemon
from senselink.reload import Reloader
from senselink.systemd import SystemdNotify, status_text
from senselink.udpport import ArrivalListener

DEFAULT_PORT = 9999
DEFAULT_INTERFACE = "0.0.0.0"

# Home Assistant's ingress proxy (the Supervisor): the only peer of the ingress listener.
INGRESS_PROXY = "172.30.32.2"

# Seconds between refreshes of the energy totals in cached Sense replies: the
# total a Sense reply carries is at most this old (Kasa clients read fresh ones).
REFRESH_INTERVAL = 60.0


def makeService(config, *, port=DEFAULT_PORT, interface=DEFAULT_INTERFACE, respond=True,
                reactor=None, foreground=True, kinds=None, resolve=None,
                debug=False, environ=None, web_port=None, ingress_port=None,
                ingress_proxy=INGRESS_PROXY) -> Daemon:
    """Build the service tree from a L{senselink.config.Config} or a config file path.

    C{debug}: build the DEBUG lines of hot paths (per request, per message).
    C{web_port}: serve the web interface on this TCP port of C{interface} too,
    besides the config's C{web} section. C{ingress_port}: serve it on this TCP
    port of C{interface} to C{ingress_proxy} only (Home Assistant's ingress).
    C{environ} (default C{os.environ}): under systemd, C{NOTIFY_SOCKET} and
    C{WATCHDOG_USEC} add the L{senselink.systemd.SystemdNotify} child, last.

    TCPServer rather than a TCP endpoint: importing twisted.internet.endpoints
    loads pyOpenSSL and cryptography, which costs start-up time and several MB
    of memory for nothing here.
    """
    if reactor is None:
        from twisted.internet import reactor
    if kinds is None:
        from senselink.sources import default_kinds
        kinds = default_kinds()
    if isinstance(config, str):
        from senselink.config import load
        config = load(config, kinds)
    daemon = Daemon(config, reactor=reactor, kinds=kinds, respond=respond,
                    foreground=foreground, resolve=resolve, debug=debug)
    # UDPServer listening through ArrivalPort: on a wildcard address, replies
    # leave from the address each request was sent to.
    udp = UDPServer(port, daemon.udp_protocol, interface=interface,
                    reactor=ArrivalListener(reactor))
    udp.setName("udp")
    udp.setServiceParent(daemon)
    tcp = TCPServer(port, daemon.tcp_factory, interface=interface, reactor=reactor)
    tcp.setName("tcp")
    tcp.setServiceParent(daemon)
    reloader = Reloader(daemon)
    reloader.setName("reload")
    reloader.setServiceParent(daemon)
    totals = TimerService(REFRESH_INTERVAL, daemon.replies.refresh_totals)
    totals.clock = reactor
    totals.setName("totals")
    totals.setServiceParent(daemon)
    if web_port is not None:
        _add_web_listener(daemon, "web-port", web_port, interface)
    if ingress_port is not None:
        _add_web_listener(daemon, "ingress", ingress_port, interface, allow=(ingress_proxy,),
                          note=f" for Home Assistant's ingress: only {ingress_proxy} may connect")
    notify = SystemdNotify.from_environment(
        lambda: status_text(daemon.plugs, daemon.sources), reactor, reloader, environ)
    if notify is not None:
        notify.setServiceParent(daemon)
    return daemon


def _add_web_listener(daemon, name, port, interface, allow=None, note=""):
    """One more listener of the web interface, on a TCP port of C{interface}."""
    from senselink import web            # loaded only when asked for
    where = interface.replace(":", "\\:")     # endpoint strings escape the colons of IPv6
    listener = web.make_listener(daemon, f"tcp:{port}:interface={where}", allow=allow, note=note)
    listener.setName(name)
    listener.setServiceParent(daemon)


def parse_interface(value: str) -> str:
    """Check an interface address for listening; ValueError if it is not an IP address."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"--interface must be an IP address, got {value!r}") from None
