"""The service tree: C{makeService(config) -> Daemon} (a C{MultiService}), composed from
factory functions, one per part.

The plug hub (L{senselink.plughub.PlugHub}: the plugs and who follows them) with
the energy meter, the delivery records and the identities subscribed; the daemon
(L{senselink.daemon.Daemon}: the sources, the web interface, the state file and
the public API); under it the Kasa service (L{senselink.kasaservice.KasaService}:
responder, guard, target, the UDP and TCP listeners), the reloader (SIGHUP), the
web interface on C{--web-port}/C{--ingress-port}, and under systemd the notifier
(READY, STATUS, RELOADING, STOPPING, watchdog), last. twistd (or any Twisted
program embedding us) owns start, stop and logging.
"""

import ipaddress

from senselink.daemon import Daemon
from senselink.delivery import Delivery
from senselink.energy.counters import EnergyMeter
from senselink.identities import Identities
from senselink.kasaservice import KasaService
from senselink.plugbuilder import build_plugs
from senselink.plughub import PlugHub
from senselink.reload import Reloader
from senselink.systemd import SystemdNotify, status_text

DEFAULT_PORT = 9999
DEFAULT_INTERFACE = "0.0.0.0"

# Home Assistant's ingress proxy (the Supervisor): the only peer of the ingress listener.
INGRESS_PROXY = "172.30.32.2"


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
    C{resolve}: host name -> Deferred(address), for a C{target} name (default:
    the reactor's resolver).
    """
    if reactor is None:
        from twisted.internet import reactor
    if kinds is None:
        from senselink.sources import default_kinds
        kinds = default_kinds()
    if isinstance(config, str):
        from senselink.config import load
        config = load(config, kinds)
    hub, meter, identities = make_plugs(config, reactor, kinds)
    kasa = make_kasa(config, hub, meter, identities.delivery, port=port, interface=interface,
                     reactor=reactor, resolve=resolve, respond=respond, debug=debug)
    daemon = Daemon(config, hub=hub, meter=meter, identities=identities, kasa=kasa,
                    reactor=reactor, kinds=kinds, foreground=foreground, debug=debug)
    kasa.setServiceParent(daemon)       # after the sources, the state file and the web
    reloader = make_reloader(daemon)
    reloader.setServiceParent(daemon)
    if web_port is not None:
        _add_web_listener(daemon, "web-port", web_port, interface)
    if ingress_port is not None:
        _add_web_listener(daemon, "ingress", ingress_port, interface, allow=(ingress_proxy,),
                          note=f" for Home Assistant's ingress: only {ingress_proxy} may connect")
    notify = make_systemd(daemon, reloader, reactor, environ)
    if notify is not None:
        notify.setServiceParent(daemon)
    return daemon


def make_plugs(config, reactor, kinds):
    """The plug hub of C{config}'s plugs, and its subscribers that the whole tree shares:
    C{(hub, meter, identities)} (the identities read the delivery records)."""
    hub = PlugHub(build_plugs(config, reactor, kinds))
    meter = EnergyMeter(reactor)
    hub.subscribe(changed=meter.changed, replaced=meter.watch)
    delivery = Delivery(reactor)          # which Sense polls carried each plug
    identities = Identities(delivery)     # the MACs Sense was answered with
    # The identities note what Sense got of old plugs before their delivery records go.
    hub.subscribe(replaced=identities.watch)
    hub.subscribe(replaced=delivery.watch)
    return hub, meter, identities


def make_kasa(config, hub, meter, delivery, *, port, interface, reactor, resolve=None,
              respond=True, debug=False) -> KasaService:
    """The Kasa service: responder, guard, target and the listeners on C{port}."""
    if resolve is None:
        def resolve(name):              # read at each resolution, as a test may replace it
            return reactor.resolve(name)
    return KasaService(config.settings, hub, meter, delivery, port=port, interface=interface,
                       reactor=reactor, resolve=resolve, respond=respond, debug=debug)


def make_reloader(daemon) -> Reloader:
    """SIGHUP: reload the config through the daemon's public API."""
    reloader = Reloader(daemon)
    reloader.setName("reload")
    return reloader


def make_systemd(daemon, reloader, reactor, environ=None):
    """The systemd notifier (None outside systemd): the daemon's plugs and sources in
    its STATUS, told of reloads."""
    return SystemdNotify.from_environment(
        lambda: status_text(daemon.plugs, daemon.sources), reactor, reloader, environ)


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
