"""A reload plan applied in steps, each with its undo: all of it, or nothing.

L{apply} takes the steps in order; when one fails, the steps already taken
are undone, newest first, and L{NotApplied} says which one failed and why,
so the daemon serves exactly as before. L{ReloadSteps} are the steps of one
reload: first those that only prepare what is new (the plugs, without
touching the running ones; the new sources' services, not started; the
state file's place checked; a new web listener opened beside the old one),
then those that switch over (the plugs, the top-level sections, the target)
and last, once nothing can fail any more, the old web listener closed. The
sources switch after all of them (L{senselink.daemon.Daemon.replace_sources}:
the replaced ones stop before their successors start).
"""

from dataclasses import dataclass
from typing import Callable, Optional

from senselink.runningsources import describe_source
from senselink.excerpt import clip
from senselink.log import Logger
from senselink.plugbuilder import prepare_plugs

log = Logger()


class StepFailed(Exception):
    """A step cannot be taken; C{str()} says why, in words for the reload's one line."""


class NotApplied(Exception):
    """A reload was undone; C{reason} names the step that failed and why."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Step:
    name: str                              # what it does, for people: "open the web listener"
    do: Callable[[], None]
    undo: Optional[Callable[[], None]] = None     # None: it changes nothing that runs


def apply(steps) -> list:
    """Take C{steps} in order; the steps taken. When one raises, undo those taken, newest
    first, and raise L{NotApplied} (L{StepFailed} gives its words; anything else is
    logged with its traceback and named by the step)."""
    done = []
    for step in steps:
        try:
            step.do()
        except Exception as e:
            if isinstance(e, StepFailed):
                reason = str(e)
            else:
                log.failure("Reload: cannot {step}", step=step.name)
                reason = f"cannot {step.name}: {clip(str(e) or type(e).__name__)}"
            undo(done)
            raise NotApplied(reason) from e
        done.append(step)
    return done


def undo(steps):
    """Undo C{steps} (taken in this order), newest first; an undo that fails is logged and
    the others still run."""
    for step in reversed(steps):
        if step.undo is None:
            continue
        try:
            step.undo()
        except Exception:
            log.failure("Reload: cannot undo the step '{step}'", step=step.name)


class ReloadSteps:
    """The steps that run C{config} on C{daemon} as C{plan} (a
    L{senselink.reloadplan.ReloadPlan} from the running config to C{config}) says.

    Once applied: C{plugs} is the new set, C{kept} and C{starting} the
    C{(SourceConfig, service)} pairs for L{senselink.daemon.Daemon.replace_sources},
    C{idle} the sources with nothing to connect, C{restored} and C{refused} what
    L{senselink.daemon.Daemon.restore_values} said.
    """

    def __init__(self, daemon, config, plan):
        self.daemon = daemon
        self.old_config = daemon.config
        self.config = config
        self.plan = plan
        self.swap = None
        self.kept, self.starting, self.idle = [], [], []
        self.restored, self.refused = [], []
        self.undo_plugs = None
        self.sections_applied = False

    @property
    def plugs(self):
        return self.swap.plugs

    def steps(self) -> list:
        return [
            Step("prepare the plugs", self.prepare_plugs),
            Step("set up the sources", self.prepare_sources, self.drop_sources),
            Step("check the state file", self.check_state_file),
            Step("open the web listener", self.open_web, self.daemon.webswitch.close_opened),
            Step("switch the plugs", self.switch_plugs, self.unswitch_plugs),
            Step("apply the top-level sections", self.apply_sections, self.unapply_sections),
            Step("set the target", self.set_target, self.unset_target),
            Step("move the web listener", self.take_web),      # closes the old one: last
        ]

    # -- preparing: nothing running changes --

    def prepare_plugs(self):
        daemon = self.daemon
        self.swap = prepare_plugs(self.plan, self.config, daemon.plugs, daemon.reactor,
                                  daemon.kinds)

    def prepare_sources(self):
        daemon, plan = self.daemon, self.plan
        running = {id(source): service for source, service in daemon.running_sources()}
        making = list(plan.sources_to_start)
        for old, new in plan.sources_kept:
            service = running.get(id(self.old_config.sources[old]))
            if service is not None:
                self.kept.append((self.config.sources[new], service))
            else:       # nothing to run (static...), or it failed to start: made again
                making.append(new)
        for index in sorted(making):
            source = self.config.sources[index]
            try:
                service = daemon.kinds[source.kind].make_service(source, self.plugs,
                                                                 daemon.reactor)
            except Exception as e:
                log.failure("Reload: cannot set up the {source}", source=describe_source(source))
                raise StepFailed(f"cannot set up the {describe_source(source)}: "
                                 f"{clip(str(e) or type(e).__name__)}") from e
            if service is None:       # static, mutable, aggregate: plugs only
                self.idle.append(source)
            else:
                self.starting.append((source, service))

    def drop_sources(self):
        self.kept, self.starting, self.idle = [], [], []

    def check_state_file(self):
        problem = self.daemon.state_file_problem(self.config.settings)
        if problem is not None:
            raise StepFailed(f"state_file: {problem}")

    def open_web(self):
        problem = self.daemon.webswitch.open(self.config.settings.web)
        if problem is not None:
            raise StepFailed(f"web: {problem}")

    # -- switching over --

    def switch_plugs(self):
        daemon, plan = self.daemon, self.plan
        self.swap.commit()
        self.undo_plugs = daemon.replace_plugs(self.config, self.swap.plugs)
        # Plugs rebuilt (a new MAC) or reset from the config take back a value set at run time.
        again = set(plan.plugs_added + plan.plugs_rebuilt
                    + tuple(change.id for change in plan.plugs_changed if change.reset))
        self.restored, self.refused = daemon.restore_values(
            [plug_id for plug_id in plan.plug_ids if plug_id in again])

    def unswitch_plugs(self):
        self.undo_plugs()
        self.swap.undo()

    def apply_sections(self):
        if not self.plan.sections:
            return
        self.sections_applied = True
        kept = self.daemon.apply_settings(self.config, web=False)
        if kept:
            self.unapply_sections()
            raise StepFailed("; ".join(f"{key}: {reason}" for key, reason in kept.items()
                                       if key != "state_save_interval"))

    def unapply_sections(self):
        if self.sections_applied:
            self.daemon.apply_settings(self.old_config, web=False)

    def set_target(self):
        if self.config.target != self.old_config.target:
            self.daemon.set_target(self.config.target)

    def unset_target(self):
        if self.config.target != self.old_config.target:
            self.daemon.set_target(self.old_config.target)

    def take_web(self):
        web = self.config.settings.web
        if web != self.daemon.webswitch.settings:
            problem = self.daemon.webswitch.reconfigure(web)
            if problem is not None:
                raise StepFailed(f"web: {problem}")
