"""The state file's service: loads the counters on start, saves them periodically and on stop.

At start the file's location is checked: a file that cannot be read (for
instance after a first run as another user) or a location that cannot be
written (a missing or read-only directory) stops the daemon with one line
(L{senselink.errors.StartupError}) and the file is left alone. A missing
file starts the counters at zero; a corrupt one is kept as a copy,
C{<state_file>.corrupt-<UTC time>}, and the counters start at zero; an
unusable entry costs only its plug its counters, and the file as it was is
kept the same way before the first save overwrites it. Nothing but a regular
file is read, copied or replaced. Saving
happens at start, every C{state_save_interval} seconds (so a power cut or
SIGKILL loses at most that much), and on stop; a failure while running is
logged once until a save succeeds again.

A relative C{state_file} (the default is one) lives in the platform's state
directory, L{state_directory}: C{$SENSELINK_STATE_DIR} (the Docker image and
the Home Assistant app set it), else C{$STATE_DIRECTORY} (systemd's
C{StateDirectory=}), else the working directory. The start-up log line names
the full path and where its directory came from.
"""

import os

from twisted.application.internet import TimerService
from twisted.application.service import MultiService

from senselink.config.sections import DEFAULT_STATE_FILE, DEFAULT_STATE_SAVE_INTERVAL
from senselink.energy.statefile import (StateFileError, StateFileUnusable, check_location,
                                        keep_aside, parse_state, read_state, write_state)
from senselink.errors import StartupError
from senselink.excerpt import excerpt
from senselink.log import Logger

log = Logger()

__all__ = ("DEFAULT_STATE_FILE", "EnergyService", "SAVE_INTERVAL", "STATE_DIRECTORY_VARIABLES",
           "configured_state_file", "describe_location", "state_directory", "state_file_path",
           "state_file_problem")

SAVE_INTERVAL = DEFAULT_STATE_SAVE_INTERVAL     # seconds between state file writes
CHANGE_DELAY = 5.0           # seconds from a change worth saving to its save (one per delay)

# Where a relative state file lives, first set wins: ours (the Docker image and
# the Home Assistant app), then systemd's (StateDirectory=; a ':'-separated list).
STATE_DIRECTORY_VARIABLES = ("SENSELINK_STATE_DIR", "STATE_DIRECTORY")


def state_directory(environ=None):
    """C{(directory, variable)}: the platform's state directory and the variable
    that named it, or the working directory and None."""
    environ = os.environ if environ is None else environ
    for variable in STATE_DIRECTORY_VARIABLES:
        value = (environ.get(variable) or "").split(":")[0].strip()
        if value:
            return os.path.abspath(value), variable
    return os.getcwd(), None


def state_file_path(configured=None, environ=None) -> str:
    """The full path of the state file: C{configured} (default L{DEFAULT_STATE_FILE}),
    relative to the L{state_directory}."""
    directory, _ = state_directory(environ)
    return os.path.join(directory, configured or DEFAULT_STATE_FILE)


def configured_state_file(settings, environ=None):
    """The full path of the state file a config's top-level C{settings} name, or None for
    C{state_file: false} (counters in memory only)."""
    configured = settings.state_file
    if configured is False:
        return None
    return os.path.abspath(state_file_path(configured, environ))


def state_file_problem(settings, environ=None):
    """Why that state file is unusable (see L{check_location}), or None."""
    path = configured_state_file(settings, environ)
    return check_location(path) if path is not None else None


def describe_location(configured, environ=None) -> str:
    """Why the state file is where it is, for the start-up log line. C{configured}
    is C{state_file} as written (None: the default); only a relative one is
    placed in the L{state_directory}."""
    if configured is not None and os.path.isabs(configured):
        return "as configured by state_file"
    _, variable = state_directory(environ)
    if variable is not None:
        return f"in the state directory ${variable}"
    return ("in the working directory; set state_file to an absolute path to keep one file "
            "wherever the daemon starts")


class EnergyService(MultiService):
    """Keeps an L{senselink.energy.counters.EnergyMeter} in its state file."""

    name = "energy"

    def __init__(self, meter, path, clock, *, save_interval=SAVE_INTERVAL, load=True,
                 configured=None, sections=()):
        super().__init__()
        # More sections of the file, beside the counters: each has a C{name}, C{snapshot()}
        # and C{restore(section or None)} -> the words of its unusable entries.
        self.sections = tuple(sections)
        self._soon = None            # the save a change asked for, while pending
        # state_file as written (relative: in the state directory), for the start-up line
        self.configured = configured
        self.load_at_start = load    # False: a new file for counters already running
        self.meter = meter
        meter.keep(True)
        self.clock = clock
        self.path = os.path.abspath(path)
        self.save_interval = save_interval
        self.saves = 0
        self._failing = False    # the last save failed (logged once until one succeeds)
        timer = TimerService(save_interval, self.save)
        timer.clock = clock
        timer.setServiceParent(self)

    def startService(self):
        problem = check_location(self.path)
        if problem is not None:
            raise StartupError(f"energy state file unusable: {problem} (set state_file to "
                               f"another path, or state_file: false to keep the counters in "
                               f"memory only)")
        if self.load_at_start:
            self.load()
        log.info("Energy counters are kept in {path}, saved every {interval:g} s ({where})",
                 path=self.path, interval=self.save_interval,
                 where=describe_location(self.configured or self.path))
        super().startService()     # the timer saves at once, then every save_interval

    def stopService(self):
        if not self.running:       # the start failed: nothing was loaded, nothing is saved
            return None
        try:
            d = super().stopService()
        except Exception:
            log.failure("Stopping the energy state file's timer failed")
            d = None
        if self._soon is not None and self._soon.active():
            self._soon.cancel()
        self._soon = None
        self.save(final=True)
        return d

    def save_soon(self):
        """Save within L{CHANGE_DELAY} seconds (a value set at run time): changes close
        together are written once, and changes write at most once per delay."""
        if self.running and self._soon is None:
            self._soon = self.clock.callLater(CHANGE_DELAY, self._save_now)

    def _save_now(self):
        self._soon = None
        self.save()

    def load(self):
        """Restore the counters from the file; a corrupt file, or a bad entry in it, is
        kept beside it as a copy before anything overwrites it.

        L{StartupError} when the file is unusable, or when a copy cannot be kept.
        """
        try:
            data = read_state(self.path)
        except StateFileUnusable as e:
            raise StartupError(f"energy state file unusable: {e}") from None
        if data is None:
            log.info("No energy state file at {path}; counters start at zero", path=self.path)
            return
        try:
            state = parse_state(data)
            restored, bad = self.meter.restore(state)
        except StateFileError as e:
            kept = self.keep_copy(data, f"it is corrupt ({e})")
            log.warn("Energy state file {path} is corrupt ({reason}); kept as {kept}; counters "
                     "start at zero", path=self.path, reason=str(e), kept=kept)
            return
        except Exception:
            kept = self.keep_copy(data, "it could not be restored")
            log.failure("Energy state file {path} could not be restored whole; kept as {kept}",
                        path=self.path, kept=kept)
            return
        for plug_id, problem in bad:
            log.warn("Energy counters of plug {plug} in the state file are unusable "
                     "({problem}); starting them at zero", plug=excerpt(plug_id), problem=problem)
        for section in self.sections:
            try:
                problems = section.restore(state.get(section.name))
            except Exception:
                log.failure("The state file's section {name} could not be restored",
                            name=section.name)
                problems = [f"section {section.name!r} could not be restored"]
            for words in problems:
                log.warn("{problem}", problem=words)
                bad.append((section.name, words))
        if bad:
            log.warn("Energy state file {path} had {n} unusable {entries}; the file as it was "
                     "is kept as {kept}", path=self.path, n=len(bad),
                     entries="entry" if len(bad) == 1 else "entries",
                     kept=self.keep_copy(data, f"{len(bad)} of its entries are unusable"))
        log.info("Energy counters restored from {path} for {n} of {total} plugs",
                 path=self.path, n=len(restored), total=len(self.meter.counters))

    def keep_copy(self, data, why):
        """Keep C{data} beside the state file; its name. L{StartupError} when it cannot be
        kept: the file stays as it is and the daemon does not start."""
        try:
            return keep_aside(self.path, data, self.clock.seconds())
        except OSError as e:
            raise StartupError(f"energy state file {self.path}: {why}, and no copy of it can "
                               f"be kept beside it ({e.strerror or e}); it is left as it is "
                               f"(move it away to start the counters at zero)") from None

    def save(self, final=False):
        """Write the counters now; a failure is logged, never raised."""
        try:
            snapshot = self.meter.snapshot()
            state = dict(snapshot)
            for section in self.sections:
                state[section.name] = section.snapshot()
            write_state(self.path, state)
        except Exception as e:
            expected = isinstance(e, (OSError, TypeError, ValueError, StateFileUnusable))
            reason = (getattr(e, "strerror", None) or str(e)) if expected else repr(e)
            if not expected:
                log.failure("Writing the energy state file {path} failed", path=self.path)
            if final:
                log.error("Cannot write energy state file {path}: {reason}; the counts since "
                          "its last save are lost", path=self.path, reason=reason)
            elif not self._failing:
                self._failing = True
                log.error("Cannot write energy state file {path}: {reason} (the counters keep "
                          "counting; retried every {interval:g} s)", path=self.path,
                          reason=reason, interval=self.save_interval)
            return False
        self.saves += 1
        self.meter.mark_saved(snapshot)
        if self._failing:
            self._failing = False
            log.info("Energy state file {path} written again", path=self.path)
        log.debug("Energy counters saved to {path}", path=self.path)
        return True
