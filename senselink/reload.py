"""Live reload: SIGHUP re-reads the config and applies it to the running daemon.

What a reload does, all in one reactor turn up to the source restarts:

- The new file is loaded and validated exactly as at start-up. When it is
  invalid, the error is logged with the same text and nothing changes.
- The UDP and TCP listeners are never touched.
- A plug whose identity (id and MAC) and type (plain or aggregate) are
  unchanged stays the same object, so it keeps its value and whatever it
  counts. Its alias, device id, skip_rate and voltage follow the new config.
  Its value is reset to the new config's starting value only when that
  starting value changed (a static plug's watts, a mutable plug's C{power}).
- The running L{PlugSet} is updated in place, so the responder (and anything
  else holding it) switches from the old plugs to the new ones at once.
- A source whose settings (kind, options and its plugs' settings) are equal
  in both configs keeps its service and its connection. Other sources are
  stopped, and the new ones started once the old ones have stopped.
- Top-level settings other than C{sources} and C{target} take effect after
  a restart; a reload says so.
"""

import signal
import threading
from dataclasses import dataclass, field

from twisted.application.service import Service
from twisted.internet import defer

from senselink import config as _config
from senselink.log import Logger
from senselink.plugs import AggregatePlug, Plug, PlugSet

log = Logger()

# Plug attributes that come from the config and follow it on reload. Everything
# else on a kept plug (value, counters, timers) is run-time state and stays.
CONFIG_ATTRIBUTES = ("alias", "device_id", "skip_rate", "voltage", "kind")

# Seconds to wait for replaced sources to stop before starting their successors.
STOP_TIMEOUT = 30

LIVE_TOP_LEVEL = {"sources", "target"}


class ReloadRejected(Exception):
    """The new config is invalid; the running config stays. C{str()} is the error text."""


def invalid_config_message(error: _config.ConfigError) -> str:
    """The text start-up uses for an invalid config (see L{senselink.tap.makeService})."""
    return f"senselink: invalid config:\n{error}"


@dataclass
class ReloadSummary:
    path: str
    plugs_added: list = field(default_factory=list)
    plugs_removed: list = field(default_factory=list)
    plugs_kept: list = field(default_factory=list)
    plugs_reset: list = field(default_factory=list)      # kept, value reset from the new config
    sources_kept: list = field(default_factory=list)      # SourceConfig of the new config
    sources_stopped: list = field(default_factory=list)   # SourceConfig of the old config
    sources_started: list = field(default_factory=list)   # SourceConfig of the new config
    restart_needed: list = field(default_factory=list)    # top-level keys that changed


def source_settings(source):
    """What a source's service is built from: kind, options, and each plug's id and settings."""
    return (source.kind, source.options, [(plug.id, plug.options) for plug in source.plugs])


def _describe_source(source):
    ids = ", ".join(plug.id for plug in source.plugs) or "no plugs"
    return f"{source.kind} source #{source.index + 1} ({ids})"


def merge_plugs(running: PlugSet, old_config, new_config, kinds, clock, summary):
    """The plugs of C{new_config}, reusing running plug objects whose identity is unchanged.

    Returns a new L{PlugSet}; the running one is not changed here, but kept
    plug objects already carry their new config attributes.
    """
    final = {}
    for pc in new_config.plugs.values():
        cls = AggregatePlug if pc.kind == "aggregate" else Plug
        watts, on = kinds[pc.kind].initial(pc)
        old = running.get(pc.id)
        if old is not None and old.mac == pc["mac"].upper() and type(old) is cls:
            fresh = cls(pc.id, alias=pc.get("alias"), mac=pc["mac"], device_id=pc["device_id"],
                        kind=pc.kind, clock=clock, skip_rate=pc["skip_rate"],
                        voltage=pc["voltage"])
            for name in CONFIG_ATTRIBUTES:
                setattr(old, name, getattr(fresh, name))
            old.aggregate = None
            if cls is AggregatePlug:
                old.elements = []
            old_pc = old_config.plugs.get(pc.id)
            same_start = (old_pc is not None and old_pc.kind == pc.kind
                          and kinds[old_pc.kind].initial(old_pc) == (watts, on))
            if not same_start and cls is Plug:
                old.set_power(watts, on)
                summary.plugs_reset.append(pc.id)
            final[pc.id] = old
            summary.plugs_kept.append(pc.id)
        else:
            final[pc.id] = cls(pc.id, alias=pc.get("alias"), mac=pc["mac"],
                               device_id=pc["device_id"], kind=pc.kind, clock=clock,
                               skip_rate=pc["skip_rate"], voltage=pc["voltage"],
                               watts=watts, on=on)
            summary.plugs_added.append(pc.id)
    for pc in new_config.plugs.values():
        if pc.kind == "aggregate":
            for element in pc["elements"]:
                final[pc.id].add(final[element])
    summary.plugs_removed.extend(plug.id for plug in running if plug.id not in final)
    for plug in final.values():
        plug.changed()
    return PlugSet(final.values())


def _log_failure(failure):
    """Errback of signalled reloads: a rejected config is logged already."""
    if not failure.check(ReloadRejected):
        log.failure("Reload failed part-way; the log above says what was applied", failure)


class Reloader(Service):
    """Child of L{SenseLinkService}: reloads its config on SIGHUP or on L{reload}.

    The SIGHUP handler is installed when the service starts (only in the
    main thread, where Python allows signal handlers) and the previous
    handler is put back when it stops.
    """

    def __init__(self, daemon):
        self.daemon = daemon
        self._previous = None
        self._installed = False
        self._busy = None          # Deferred of the reload in progress
        self._again = False        # a signal arrived during a reload

    # -- lifecycle --

    def startService(self):
        super().startService()
        sighup = getattr(signal, "SIGHUP", None)
        if sighup is None or threading.current_thread() is not threading.main_thread():
            log.debug("Not installing a SIGHUP handler (no SIGHUP here, or not the main thread)")
            return
        self._previous = signal.signal(sighup, self._on_signal)
        self._installed = True

    def stopService(self):
        super().stopService()
        if self._installed:
            self._installed = False
            if signal.getsignal(signal.SIGHUP) == self._on_signal:
                signal.signal(signal.SIGHUP, self._previous)
            self._previous = None

    def _on_signal(self, signum, frame):
        # Signal handlers run between bytecodes: hand the work to the reactor.
        self.daemon.reactor.callFromThread(self._signalled)

    def _signalled(self):
        log.info("SIGHUP received: reloading {path}", path=self.daemon.config.path)
        if self._busy is not None:
            self._again = True
            return
        self.reload().addErrback(_log_failure)

    # -- reload --

    def reload(self, path=None) -> defer.Deferred:
        """Re-read the config (default: the running config's file) and apply it.

        Fires with a L{ReloadSummary} once replaced sources have stopped and
        new ones have started; fails with L{ReloadRejected} (the running
        config stays) when the new config is invalid.
        """
        if self._busy is not None:
            return defer.fail(RuntimeError("a reload is already in progress"))
        path = path or self.daemon.config.path
        try:
            new_config = _config.load(path, self.daemon.kinds)
        except _config.ConfigError as e:
            message = invalid_config_message(e)
            log.error("Reload rejected, still running the previous config:\n{error}",
                      error=message)
            return defer.fail(ReloadRejected(message))
        d = self._busy = self._apply(new_config)
        d.addBoth(self._done)
        return d

    def _done(self, result):
        self._busy = None
        if self._again and self.running:
            self._again = False
            self.reload().addErrback(_log_failure)
        return result

    @defer.inlineCallbacks
    def _apply(self, new_config):
        daemon = self.daemon
        old_config = daemon.config
        kinds = daemon.kinds
        summary = ReloadSummary(new_config.path)

        # Plugs: build the new set, then switch the running set over in place.
        new_set = merge_plugs(daemon.plugs, old_config, new_config, kinds, daemon.reactor, summary)
        vars(daemon.plugs).update(vars(new_set))
        daemon.config = new_config
        meter = getattr(daemon, "meter", None)
        if meter is not None:
            meter.attach()      # energy counters for plugs the reload added

        # Sources: keep the ones with equal settings, replace the others.
        running = list(zip(daemon.source_configs, daemon.sources))
        kept, starting = [], []
        for source in new_config.sources:
            settings = source_settings(source)
            match = next((pair for pair in running if source_settings(pair[0]) == settings), None)
            if match is not None:
                running.remove(match)
                kept.append((source, match[1]))
                summary.sources_kept.append(source)
        unchanged = {id(source) for source, _ in kept}
        for source in new_config.sources:
            if id(source) in unchanged:
                continue
            try:
                service = kinds[source.kind].make_service(source, daemon.plugs, daemon.reactor)
            except Exception:
                log.failure("Cannot set up the {source}; it stays stopped",
                            source=_describe_source(source))
                continue
            if service is not None:
                starting.append((source, service))
        stopping = running

        # Target: takes effect at once.
        target = new_config.target
        if target != old_config.target:
            self._retarget(target)

        for key in sorted(set(new_config.options) | set(old_config.options)):
            if key not in LIVE_TOP_LEVEL and new_config.options.get(key) != old_config.options.get(key):
                summary.restart_needed.append(key)
                log.warn("Reload: {key} changed in {path}; it takes effect after a restart",
                         key=key, path=new_config.path)

        for warning in new_config.warnings:
            log.warn("{problem}", problem=warning)
        for source, _ in kept:
            log.info("Reload: {source} unchanged, keeping its connection",
                     source=_describe_source(source))
        for plug_id in summary.plugs_added:
            plug = daemon.plugs[plug_id]
            log.info("Reload: plug {plug} ({alias}, {mac}, {kind}) added: {watts} W",
                     plug=plug_id, alias=plug.alias, mac=plug.mac, kind=plug.kind,
                     watts=plug.watts)
        for plug_id in summary.plugs_removed:
            log.info("Reload: plug {plug} removed", plug=plug_id)
        for plug_id in summary.plugs_reset:
            plug = daemon.plugs[plug_id]
            log.info("Reload: plug {plug} ({kind}) set to {watts} W from the new config",
                     plug=plug_id, kind=plug.kind, watts=plug.watts)

        # Stop replaced sources first (two connections with one client id
        # would push each other out), then start their successors.
        daemon.sources[:] = [service for _, service in kept]
        daemon.source_configs[:] = [source for source, _ in kept]
        stops = []
        for source, service in stopping:
            log.info("Reload: stopping the {source} (removed or settings changed)",
                     source=_describe_source(source))
            summary.sources_stopped.append(source)
            stops.append(defer.maybeDeferred(service.disownServiceParent))
        if stops:
            waiting = defer.DeferredList(stops, consumeErrors=True)
            waiting.addTimeout(STOP_TIMEOUT, daemon.reactor)
            try:
                results = yield waiting
            except defer.TimeoutError:
                log.warn("Reload: replaced sources did not stop within {timeout} s; "
                         "starting the new ones anyway", timeout=STOP_TIMEOUT)
            else:
                for ok, value in results:
                    if not ok:
                        log.failure("Reload: a replaced source failed to stop", value)
        for source, service in starting:
            log.info("Reload: starting the {source}", source=_describe_source(source))
            try:
                service.setServiceParent(daemon)
            except Exception:
                log.failure("Reload: cannot start the {source}", source=_describe_source(source))
                continue
            daemon.sources.append(service)
            daemon.source_configs.append(source)
            summary.sources_started.append(source)
        log.info("Reloaded {path}: {n} plugs ({added} added, {removed} removed, {kept} kept); "
                 "sources: {skept} kept, {stopped} stopped, {started} started",
                 path=new_config.path, n=len(daemon.plugs), added=len(summary.plugs_added),
                 removed=len(summary.plugs_removed), kept=len(summary.plugs_kept),
                 skept=len(summary.sources_kept), stopped=len(summary.sources_stopped),
                 started=len(summary.sources_started))
        return summary

    def _retarget(self, target):
        daemon = self.daemon
        if not target:
            daemon.udp_protocol.target = None
            log.info("Reload: replies go to the requester again")
        elif _config.is_ip(target):
            daemon.udp_protocol.target = target
            log.info("Reload: replies go to target {address}", address=target)
        else:
            daemon.udp_protocol.target = "0.0.0.0"   # until resolved: never the requester
            daemon.reactor.resolve(target).addCallbacks(daemon._resolved, daemon._unresolved,
                                                        errbackArgs=(target,))
