"""The running daemon and its public API.

L{Daemon} is the top of the service tree (a C{MultiService}) and the one
object through which reload, the web interface and embedding programs touch
the running daemon:

- read: L{Daemon.plugs} (a L{senselink.plugs.PlugSet}, replaced whole by a
  reload), L{Daemon.config}, L{Daemon.sources}, L{Daemon.counters},
  L{Daemon.meter} (energy counters), L{Daemon.target}, L{Daemon.polling}
  (who polls), L{Daemon.delivery} (which Sense polls carried each plug), L{Daemon.history} (power history, with the web interface);
- change: L{Daemon.set_power} and L{Daemon.switch} (mutable plugs),
  L{Daemon.replace_plugs}, L{Daemon.replace_sources}, L{Daemon.set_target},
  L{Daemon.apply_settings} (the top-level sections: guard, device, web,
  state file, publish).

Data flows one way: sources set plug values, plugs tell the subscribers of
the plug hub (L{senselink.plughub}: the Sense reply cache, the energy meter,
the power history), the responder answers from the cache. L{senselink.service}
composes the tree and gives the daemon its parts: the hub, the meter, the
identities and the Kasa service (L{senselink.kasaservice}), which it parents
after the sources, the state file and the web interface; then the reloader
and systemd.
"""

from types import MappingProxyType

from twisted.application.service import MultiService, Service

from senselink.energy.switch import StateFileSwitch
from senselink.identities import reported_plugs
from senselink.log import Logger
from senselink.mutableplugs import MutablePlugs
from senselink.runningsources import RunningSources
from senselink.runvalues import RunValues
from senselink.savedhistory import SavedHistory
from senselink.startchildren import start_or_exit
from senselink.startlines import log_start
from senselink.webswitch import WebSwitch

log = Logger()

# What each listening child is, for people (by service name).
LISTENERS = MappingProxyType({"web": "for the web interface on {where}",
             "web-port": "for the web interface (--web-port) on {where}",
             "ingress": "for the web interface (--ingress-port) on {where}"})


def _read(part, name, doc):
    """A property of the daemon read from one of its parts (C{kasa}, C{webswitch})."""
    return property(lambda daemon: getattr(getattr(daemon, part), name), doc=doc)


class Daemon(MultiService):
    """The root of the tree and the public API: sources, web, state file, publisher;
    the plugs (C{hub}) and the Kasa side (C{kasa}) are parts it is given."""

    name = "senselink"

    def __init__(self, config, *, hub, meter, identities, kasa, reactor, kinds,
                 foreground=True, debug=False):
        super().__init__()
        self.debug = debug           # build the DEBUG lines of hot paths
        self.config = config
        self.reactor = reactor
        self.kinds = kinds
        self.foreground = foreground
        self.hub = hub               # the plugs and who follows them (a PlugHub)
        self.meter = meter           # their energy counters (subscribed to the hub)
        self.identities = identities  # the MACs Sense was answered with
        self.delivery = identities.delivery   # which Sense polls carried each plug
        self.kasa = kasa             # the Kasa side (a KasaService); service.py parents it
        self.values = RunValues()    # values set at run time, kept in the state file
        self.mutable = MutablePlugs(hub, self.values, reactor, lambda: self.config,
                                    self._recorded)
        self.publisher = None        # the publish section's Publisher, or None
        self.webswitch = WebSwitch(self)   # the web section's listener and history
        self.saved_history = SavedHistory(      # that history in the state file
            self.hub, reactor, history=lambda: self.webswitch.history,
            max_plug_watts=lambda: self.config.settings.max_plug_watts)
        self.state_file = StateFileSwitch(       # the file that keeps the counters
            self, meter, reactor, (self.values, self.identities, self.saved_history))
        self.sources_parent = RunningSources(reactor, debug)   # the source services
        self.sources_parent.setServiceParent(self)
        self.apply_settings(config, starting=True)
        self.sources_parent.start(config, kinds, self.plugs, reactor)

    # -- reading --

    @property
    def plugs(self):
        """The plug set in use (a L{senselink.plugs.PlugSet}; a reload replaces it whole)."""
        return self.hub.plugs

    counters = _read("kasa", "counters", "What the responder saw and did (Counters).")
    polling = _read("kasa", "polling", "Who polls us: Sense and Kasa clients (Polling).")
    replies = _read("kasa", "replies", "The Sense reply cache (SenseReplyCache).")
    responder = _read("kasa", "responder", "Kasa requests to replies (Responder).")
    udp_protocol = _read("kasa", "udp_protocol", "The Kasa UDP protocol.")
    tcp_factory = _read("kasa", "tcp_factory", "The Kasa TCP factory.")
    udp_port = _read("kasa", "udp_port", "The UDP port answering Kasa requests (once started).")
    tcp_port = _read("kasa", "tcp_port", "The TCP port answering Kasa requests (once started).")

    @property
    def sources(self):
        """The running source services, in config order."""
        return self.sources_parent.in_order

    def running_sources(self):
        """C{[(SourceConfig, service), ...]} of the running sources, in config order."""
        return list(self.sources_parent.pairs)

    @property
    def energy(self):
        """The state file's EnergyService, or None (C{state_file: false})."""
        return self.state_file.service

    @property
    def reloader(self):
        return self.getServiceNamed("reload")

    @property
    def target(self):
        """The configured target (host name or address), or None."""
        return self.kasa.target.wanted

    quiet = _read("kasa", "quiet", "Quiet mode: requests are counted, never answered.")
    strip = _read("kasa", "strip", "The strip Kasa clients see, or None (kasa_clients: false).")
    web = _read("webswitch", "service", "The web section's listening service, or None.")
    history = _read("webswitch", "history", "The web interface's PowerHistory, or None.")

    # -- lifecycle --

    def privilegedStartService(self):
        # MultiService's loops, with a port that cannot be bound turned into
        # one line naming the listener.
        Service.privilegedStartService(self)
        start_or_exit(self, "privilegedStartService", LISTENERS, self.foreground)

    def startService(self):
        Service.startService(self)
        start_or_exit(self, "startService", LISTENERS, self.foreground)
        restored, refused = self.values.apply(self.plugs, self.config)
        self.values.keep_only(self.plugs, self.config)
        log_start(self, restored, refused, self.identity_warnings())
        self.set_target(self.config.target)

    # -- mutable plugs (senselink.mutableplugs) --

    def set_power(self, plug_id, watts, on=None):
        """Set a C{mutable} plug's power in watts (a finite number >= 0): KeyError for an
        unknown plug, TypeError for a plug that is not mutable, ValueError for a bad value."""
        self.mutable.set_power(plug_id, watts, on)

    def switch(self, plug_id, on: bool):
        """Switch a C{mutable} plug on (C{max_watts}, else its C{power}) or off (C{off_usage})."""
        self.mutable.switch(plug_id, on)

    def _recorded(self):
        self.state_file.save_soon()

    # -- replacing parts (reload) --

    def replace_plugs(self, config, plugs):
        """Run C{plugs} (built from C{config}) from now on: replies, energy and strip follow.

        @return: a callable that runs the previous config and plugs again (a reload
            that does not apply puts them back), with the records this dropped.
        """
        previous = (self.config, self.plugs, dict(self.values.values),
                    dict(self.delivery.records))
        self._watch_plugs(config, plugs)

        def undo():
            old_config, old_plugs, values, records = previous
            self._watch_plugs(old_config, old_plugs)
            self.values.values.update(values)
            self.delivery.records.update(records)
        return undo

    def _watch_plugs(self, config, plugs):
        self.config = config
        self.hub.replace(plugs)   # meter, replies, identities, delivery, history, publisher
        self.values.keep_only(plugs, config)

    def identity_warnings(self):
        """A warning per reported plug Sense would see as a new device by accident
        (L{senselink.identities.ghost_warnings})."""
        return self.identities.check(reported_plugs(self.plugs))

    def restore_values(self, ids):
        """Give the plugs of C{ids} (rebuilt or reset by a reload) their values set at run
        time back; see L{senselink.runvalues.RunValues.apply}."""
        return self.values.apply(self.plugs, self.config, ids)

    def replace_sources(self, keep, start):
        """Keep the C{(SourceConfig, service)} pairs in C{keep}, stop every other source,
        then start C{start} (pairs of new services). Fires with the pairs stopped.

        See L{senselink.runningsources.RunningSources.replace}.
        """
        return self.sources_parent.replace(keep, start)

    def set_target(self, target):
        """Send Sense replies to C{target} (a host name or IP address), or to the requester.

        While a host name resolves, nothing is sent anywhere; a name that does
        not resolve keeps it so (never the requester instead of the target).
        """
        self.kasa.target.set(target)

    def apply_settings(self, config, starting=False, web=True):
        """Apply the top-level sections of C{config}: who is answered (C{allow_from},
        C{rate_limit}), what Kasa clients see (C{device}, C{kasa_clients}), the
        web interface (unless C{web} is false) and the state file.

        @return: C{{key: reason}} of the sections that could not be applied (the old
            one stays in use: a state file that cannot be written, a web listener
            that cannot listen).
        """
        settings = config.settings
        kept = {}
        self.kasa.reconfigure(settings)      # allow_from, rate_limit, device, kasa_clients
        # The publisher first: it starts before the counters are loaded and connects
        # after; it stops after their last save, and publishes what was saved.
        self._set_publisher(settings.publish)
        problem = self.state_file.reconfigure(settings, starting)
        if problem:
            kept["state_file"] = kept["state_save_interval"] = problem
        if web and (starting or settings.web != self.webswitch.settings):
            problem = self.webswitch.reconfigure(settings.web, starting)
            if problem:
                kept["web"] = problem     # the old listener and its options stay
        return kept

    def state_file_problem(self, settings):
        """Why the state file C{settings} name cannot be used (the running one stays),
        or None (it can, it is the running one, or there is none)."""
        return self.state_file.problem(settings)

    def _set_publisher(self, settings):
        """Publish to MQTT as C{settings} (PublishSettings, or None) say: the running
        publisher takes what it can in place; a new broker or prefix is a new publisher."""
        old = self.publisher
        if old is not None and settings is not None and old.reconfigure(settings):
            return
        if old is not None:
            self.publisher = None
            old.disownServiceParent()        # says offline and disconnects
        if settings is not None:
            from senselink.publish import Publisher   # loaded only when configured
            self.publisher = Publisher(settings, self.hub, self.meter, self.reactor)
            self.publisher.setServiceParent(self)
