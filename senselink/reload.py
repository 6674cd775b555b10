"""Live reload: SIGHUP re-reads the config and applies it to the running daemon.

A reload is a plan, then an apply, through the daemon's public API only:

- The new file is loaded and validated exactly as at start-up. When it is
  invalid, the error is logged with the same text and nothing changes.
- L{senselink.reloadplan.plan} says what changes: plugs added, removed,
  kept or changed, sources kept, replaced, stopped or started, top-level
  sections and listeners. It is pure: no reactor, no daemon.
- L{senselink.reloadsteps} applies it: what is new is prepared first (new
  plug objects; the running ones are changed only once the plan is known to
  apply; the new sources' services; the state file's place; a new web
  listener opened beside the old one), then the daemon switches over. When
  any step fails, the steps taken are undone, one line says what was not
  applied and why, and the daemon serves exactly as before.
- A plug whose identity (id and MAC) and type are unchanged stays the same
  object and keeps its value, unless its starting value changed.
- A source whose settings (kind, options and its plugs' settings) are equal
  in both configs keeps its service and its connection. Other sources are
  stopped, and the new ones started once the old ones have stopped.
- The Kasa listeners are never touched.
"""

import signal
import threading
from dataclasses import dataclass, field

from twisted.application.service import Service
from twisted.internet import defer
from twisted.python.failure import Failure

from senselink import config as _config
from senselink.runningsources import describe_source
from senselink.excerpt import clip, excerpt, shown_name
from senselink.log import Logger
from senselink.startlines import moment

log = Logger()


class ReloadRejected(Exception):
    """The new config is invalid; the running config stays. C{str()} is the error text."""


class ReloadNotApplied(ReloadRejected):
    """The new config is valid but a step of applying it failed: every step taken was
    undone and the running config stays. C{reason} (and C{str()}) says which step and why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass
class ReloadSummary:
    path: str
    plugs_added: list = field(default_factory=list)
    plugs_removed: list = field(default_factory=list)
    plugs_kept: list = field(default_factory=list)
    plugs_reset: list = field(default_factory=list)      # kept, value reset from the new config
    values_restored: list = field(default_factory=list)  # given back their run-time value
    aliases_changed: list = field(default_factory=list)  # kept plugs: (id, old alias, new alias)
    sources_kept: list = field(default_factory=list)      # SourceConfig of the new config
    sources_stopped: list = field(default_factory=list)   # SourceConfig of the old config
    sources_started: list = field(default_factory=list)   # SourceConfig of the new config
    sources_idle: list = field(default_factory=list)      # new config, no connection to run
    sources_failed: list = field(default_factory=list)    # new config, could not be started
    settings_changed: list = field(default_factory=list)  # top-level sections applied anew
    plan: object = None                                   # the ReloadPlan applied


def _log_failure(failure):
    """Errback of signalled reloads: a rejected config is logged already."""
    if not failure.check(ReloadRejected):
        log.failure("Reload failed part-way; the log above says what was applied", failure)


class Reloader(Service):
    """Child of the L{senselink.daemon.Daemon}: reloads its config on SIGHUP or on L{reload}.

    Objects in C{watchers} are told C{reloading()} when a reload begins and
    C{reloaded(applied, why)} when it has been applied or rejected (C{why}: what a
    valid config could not apply, or None; systemd's RELOADING=1 and READY=1 with
    a STATUS=, see L{senselink.systemd}).

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
        self.watchers = []         # told reloading() and reloaded(applied, why) around each

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
        self._tell("reloading")
        try:
            new_config = _config.load(path, self.daemon.kinds)
        except _config.ConfigError as e:
            message = e.report()
            log.error("Reload rejected, still running the previous config:\n{error}",
                      error=message)
            self._tell("reloaded", False, None)
            return defer.fail(ReloadRejected(message))
        except Exception as e:       # a config value no check foresaw: still one line
            message = f"senselink: cannot read {path}: {clip(str(e) or type(e).__name__)}"
            log.failure("Reload rejected, still running the previous config: {error}",
                        error=message)
            self._tell("reloaded", False, None)
            return defer.fail(ReloadRejected(message))
        d = self._busy = defer.maybeDeferred(self._apply, new_config)
        d.addBoth(self._done)
        return d

    def _tell(self, event, *args):
        for watcher in list(self.watchers):
            try:
                getattr(watcher, event)(*args)
            except Exception:
                log.failure("A reload watcher failed on {event}", event=event)

    def _done(self, result):
        self._busy = None
        why = result.value.reason if isinstance(result, Failure) and result.check(
            ReloadNotApplied) else None
        self._tell("reloaded", not isinstance(result, Failure), why)
        if self._again and self.running:
            self._again = False
            self.reload().addErrback(_log_failure)
        return result

    def _apply(self, new_config):
        daemon = self.daemon
        # Loaded at the first reload: start-up does without them.
        from senselink.reloadplan import plan as plan_reload
        from senselink.reloadsteps import NotApplied, ReloadSteps, apply
        plan = plan_reload(daemon.config, new_config, daemon.kinds)
        steps = ReloadSteps(daemon, new_config, plan)
        try:
            apply(steps.steps())
        except NotApplied as e:
            log.error("Reload: {path} not applied: {reason}; still serving the previous config",
                      path=new_config.path, reason=e.reason)
            return defer.fail(ReloadNotApplied(e.reason))
        summary = summarize(new_config, plan, steps)
        log_changes(summary, steps, new_config, daemon)
        d = daemon.replace_sources(steps.kept, steps.starting)
        d.addCallback(self._sources_replaced, summary, steps, new_config)
        return d

    def _sources_replaced(self, stopped, summary, steps, new_config):
        summary.sources_stopped = [source for source, _ in stopped]
        started = {id(service) for _, service in self.daemon.running_sources()}
        summary.sources_started = [source for source, service in steps.starting
                                   if id(service) in started]
        summary.sources_failed = [source for source, service in steps.starting
                                  if id(service) not in started]
        log_summary(summary, len(steps.plugs), len(new_config.sources))
        return summary


def summarize(config, plan, steps) -> ReloadSummary:
    """What a reload applied (the sources stopped and started are added once they are)."""
    added = set(plan.plugs_added + plan.plugs_rebuilt)
    return ReloadSummary(
        config.path, plan=plan,
        plugs_added=[plug_id for plug_id in plan.plug_ids if plug_id in added],
        plugs_removed=list(plan.plugs_removed), plugs_kept=list(plan.plugs_kept),
        plugs_reset=[change.id for change in plan.plugs_changed if change.reset],
        aliases_changed=[(change.id,) + change.alias for change in plan.plugs_changed
                         if change.alias and not change.rebuilt],
        values_restored=[plug_id for plug_id, _, _ in steps.restored],
        sources_kept=[source for source, _ in steps.kept], sources_idle=list(steps.idle),
        settings_changed=list(plan.sections))


def log_changes(summary, steps, config, daemon):
    """A line per change a reload made, before its sources switch."""
    plugs, restored = steps.plugs, steps.restored
    for key in summary.settings_changed:
        log.info("Reload: {key} changed in {path}; applied", key=key, path=config.path)
    for warning in config.warnings:
        log.warn("{problem}", problem=warning)
    for source, _ in steps.kept:
        log.info("Reload: {source} unchanged, keeping its connection",
                 source=describe_source(source))
    for plug_id in summary.plugs_added:
        plug = plugs[plug_id]
        log.info("Reload: plug {plug} ({alias}, {mac}, {kind}) added: {watts} W",
                 plug=shown_name(plug_id), alias=shown_name(plug.alias), mac=plug.mac,
                 kind=plug.kind, watts=plug.watts)
    for plug_id in summary.plugs_removed:
        log.info("Reload: plug {plug} removed", plug=shown_name(plug_id))
    for words in daemon.identity_warnings():
        log.warn("Reload: {problem}", problem=words)
    for plug_id, old, new in summary.aliases_changed:
        log.info("Reload: plug {plug} now has the alias {alias} (was {old})",
                 plug=shown_name(plug_id), alias=excerpt(new), old=excerpt(old))
    for plug_id in summary.plugs_reset:
        plug = plugs[plug_id]
        if plug_id not in summary.values_restored:
            log.info("Reload: plug {plug} ({kind}) set to {watts} W from the new config",
                     plug=shown_name(plug_id), kind=plug.kind, watts=plug.watts)
    for plug_id, watts, when in restored:
        log.info("Reload: plug {plug} keeps its value set at run time, {watts} W (set on "
                 "{when}; restore: false starts it from its power)",
                 plug=shown_name(plug_id), watts=watts, when=moment(when))
    for plug_id, words in steps.refused:
        log.warn("Reload: plug {plug} starts from its power: its value set at run time, "
                 "{words}, is not restored", plug=shown_name(plug_id), words=words)
    kept = {id(service) for _, service in steps.kept}
    why = {id(steps.old_config.sources[change.old]): replaced_because(change)
           for change in summary.plan.sources_replaced}
    for source, service in daemon.running_sources():
        if id(service) not in kept:
            log.info("Reload: stopping the {source} ({why})", source=describe_source(source),
                     why=why.get(id(source), "removed"))
    for source, _ in steps.starting:
        log.info("Reload: starting the {source}", source=describe_source(source))


def replaced_because(change) -> str:
    """Why a source is replaced, for people: C{host changed; plugs changed: a, b}."""
    words = [f"{', '.join(change.keys)} changed"] if change.keys else []
    if change.plugs:
        words.append(f"plugs changed: {clip(', '.join(shown_name(i) for i in change.plugs))}")
    return "; ".join(words) or "settings changed"


def log_summary(summary, plugs, sources):
    """The reload's last line: what became of the plugs and of every source in the new config
    (kept, started, without a connection to run, failed add up to C{sources})."""
    failed = len(summary.sources_failed)
    aliases = len(summary.aliases_changed)
    log.info("Reloaded {path}: {n} {plugs} ({added} added, {removed} removed, {kept} kept"
             "{aliases}); sources: {sources} ({skept} kept, {started} started, {idle} without "
             "a connection{failed}), {stopped} stopped",
             path=summary.path, n=plugs, plugs="plug" if plugs == 1 else "plugs",
             added=len(summary.plugs_added), removed=len(summary.plugs_removed),
             kept=len(summary.plugs_kept),
             aliases=f", {aliases} with a new alias" if aliases else "",
             sources=sources, skept=len(summary.sources_kept),
             started=len(summary.sources_started), idle=len(summary.sources_idle),
             failed=f", {failed} failed" if failed else "",
             stopped=len(summary.sources_stopped))
