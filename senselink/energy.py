"""Energy counters: each plug integrates its watts over time into kWh.

A L{PlugEnergy} keeps a plug's C{total} (what C{emeter.get_realtime}
reports, in the Sense reply too) and its energy per local day and per local
month (C{get_daystat}/C{get_monthstat}). Power is piecewise constant between
changes, so integrating exactly needs one step per change: a plug calls
L{PlugEnergy.changed} whenever its watts or on/off state change (see
L{senselink.plugs.Plug.changed}), and readers add the energy of the interval
still open. Intervals crossing local midnight are split between the days.

The counters survive restarts in a JSON state file (C{state_file}, default
C{senselink-state.json} in the working directory), written atomically
(temporary file, fsync, rename) every few minutes and on shutdown by
L{EnergyService}. A missing state file starts the counters at zero; a
corrupt one is logged, kept aside as C{<state_file>.corrupt}, and the
counters start at zero. Neither stops the daemon.

The Sense reply of a plug is cached until the plug changes. Its C{total}
grows all the time, so instead of rebuilding the reply on every request
(the hot path), L{EnergyService} drops the cached replies of plugs drawing
power once every L{REFRESH_INTERVAL} seconds: the total in a Sense reply is
at most that old. Kasa clients always read fresh counters.
"""

import json
import math
import os
import tempfile
from datetime import date, datetime, time as dtime, timedelta

from twisted.application.service import Service
from twisted.internet.task import LoopingCall

from senselink.config.sections import DEFAULT_STATE_FILE
from senselink.log import Logger

log = Logger()

SAVE_INTERVAL = 300.0        # seconds between state file writes
REFRESH_INTERVAL = 60.0      # seconds between refreshes of cached Sense replies
KEEP_DAYS = 400              # days of per-day energy kept
MAX_SPLITS = 1000            # bound on day boundaries handled in one integration step
STATE_VERSION = 1


def _local(seconds, tz):
    if tz is not None:
        return datetime.fromtimestamp(seconds, tz)
    return datetime.fromtimestamp(seconds)


def _next_midnight(moment: datetime) -> float:
    following = datetime.combine(moment.date() + timedelta(days=1), dtime(0), moment.tzinfo)
    return following.timestamp()


class PlugEnergy:
    """The energy counters of one plug, fed by the plug's changes."""

    __slots__ = ("plug", "clock", "tz", "total_wh", "days", "months", "_watts", "_since",
                 "_on", "on_since", "_today")

    def __init__(self, plug, clock, tz=None):
        self.plug = plug
        self.clock = clock
        self.tz = tz
        self._today = None
        self.total_wh = 0.0
        self.days = {}       # "YYYY-MM-DD" -> Wh
        self.months = {}     # "YYYY-MM" -> Wh
        now = clock.seconds()
        self._since = now
        self._watts = plug.watts
        self._on = plug.on
        self.on_since = now if self._on else None

    # -- integration --

    def advance(self, now=None):
        """Book the energy of the open interval up to C{now} (default: the clock's now)."""
        if now is None:
            now = self.clock.seconds()
        start = self._since
        watts = self._watts
        if now > start and watts > 0.0:
            # (start, end, date, "YYYY-MM-DD", "YYYY-MM") of the local day booked last
            today = self._today
            if (today is not None and today[0] <= start and now <= today[1]
                    and today[3] in self.days):
                # Every change of every plug, nearly: no date arithmetic.
                wh = watts * (now - start) / 3600.0
                self.total_wh += wh
                self.days[today[3]] += wh
                months = self.months
                months[today[4]] = months.get(today[4], 0.0) + wh
            else:
                self._add(start, now, watts)
        # A clock that went backwards restarts the interval without booking anything.
        self._since = now

    def changed(self, now=None):
        """The plug's power or state changed: close the interval at the old value.

        @param now: the clock's time, when the caller has just read it.
        """
        if now is None:
            now = self.clock.seconds()
        self.advance(now)
        plug = self.plug
        self._watts = plug.watts
        on = plug.on
        if on and not self._on:
            self.on_since = now
        elif not on:
            self.on_since = None
        self._on = on

    def _add(self, start, end, watts):
        """Book C{watts} from C{start} to C{end}, split at local midnights; remember the day."""
        moment = _local(end, self.tz)
        day = moment.date()
        key = day.isoformat()
        self._today = (datetime.combine(day, dtime(0), moment.tzinfo).timestamp(),
                       _next_midnight(moment), day, key, key[:7])
        t = start
        for _ in range(MAX_SPLITS):
            moment = _local(t, self.tz)
            boundary = _next_midnight(moment)
            stop = end if boundary >= end else boundary
            self._book(moment.date(), watts * (stop - t) / 3600.0)
            t = stop
            if t >= end:
                return
        # A gap of more than MAX_SPLITS days: book the rest on the last day.
        self._book(_local(end, self.tz).date(), watts * (end - t) / 3600.0)

    def _book(self, day: date, wh: float):
        """Add C{wh} to the total, to C{day} and to its month."""
        if wh <= 0.0:
            return
        self.total_wh += wh
        key = day.isoformat()
        days = self.days
        if key not in days:
            days[key] = 0.0
            self._prune(day)
        days[key] += wh
        month = key[:7]
        self.months[month] = self.months.get(month, 0.0) + wh

    def _prune(self, today: date):
        cutoff = (today - timedelta(days=KEEP_DAYS)).isoformat()
        for key in [k for k in self.days if k < cutoff]:
            del self.days[key]

    # -- reading --

    def pending_wh(self, now=None) -> float:
        if now is None:
            now = self.clock.seconds()
        return self._watts * max(0.0, now - self._since) / 3600.0

    @property
    def total_kwh(self) -> float:
        """Energy since the counters began, including the open interval, in kWh."""
        return (self.total_wh + self.pending_wh()) / 1000.0

    def on_time(self, now=None) -> int:
        """Seconds since the plug was last seen switching on (0 while off)."""
        if self.on_since is None:
            return 0
        if now is None:
            now = self.clock.seconds()
        return max(0, int(now - self.on_since))

    def day_energy(self, year, month):
        """C{[(day, kWh), ...]} for that month, in day order (call L{advance} first)."""
        prefix = f"{year:04d}-{month:02d}-"
        return sorted((int(key[8:]), wh / 1000.0) for key, wh in self.days.items()
                      if key.startswith(prefix))

    def month_energy(self, year):
        """C{[(month, kWh), ...]} for that year, in month order (call L{advance} first)."""
        prefix = f"{year:04d}-"
        return sorted((int(key[5:]), wh / 1000.0) for key, wh in self.months.items()
                      if key.startswith(prefix))

    # -- persistence --

    def snapshot(self) -> dict:
        return {"total_wh": self.total_wh, "days": dict(self.days), "months": dict(self.months)}

    def restore(self, saved: dict):
        """Add saved counters (validated by L{check_plug_state}) to these."""
        self.total_wh += saved["total_wh"]
        for key, wh in saved["days"].items():
            self.days[key] = self.days.get(key, 0.0) + wh
        for key, wh in saved["months"].items():
            self.months[key] = self.months.get(key, 0.0) + wh


class EnergyMeter:
    """The counters of every plug; attaches one L{PlugEnergy} to each plug."""

    def __init__(self, plugs, clock, tz=None):
        self.plugs = plugs
        self.clock = clock
        self.tz = tz
        self.counters = {}
        self.attach()

    def attach(self):
        """Give every plug without counters its own (at start, and for plugs a reload added)."""
        for plug in self.plugs:
            if getattr(plug, "energy", None) is None:
                counter = self.counters.get(plug.id)
                if counter is None:
                    counter = self.counters[plug.id] = PlugEnergy(plug, self.clock, self.tz)
                elif counter.plug is not plug:
                    # A plug the reload rebuilt under the same id: its counts go on.
                    counter.advance()
                    counter.plug = plug
                    counter.changed()
                plug.energy = counter

    def __getitem__(self, plug_id) -> PlugEnergy:
        return self.counters[plug_id]

    def advance_all(self):
        now = self.clock.seconds()
        for counter in self.counters.values():
            counter.advance(now)

    def refresh_replies(self):
        """Drop the cached Sense replies whose C{total} has grown."""
        for plug in self.plugs.reported:
            if plug.watts > 0.0:
                plug.drop_reply()

    def snapshot(self) -> dict:
        self.advance_all()
        return {"version": STATE_VERSION, "saved": self.clock.seconds(),
                "plugs": {plug_id: c.snapshot() for plug_id, c in self.counters.items()}}

    def restore(self, state: dict):
        """Load counters from a parsed state file; returns the ids restored.

        Raises L{StateFileError} when the document is not a state file.
        Entries of unknown plugs are ignored, unusable entries logged and skipped.
        """
        if not isinstance(state, dict) or not isinstance(state.get("plugs"), dict):
            raise StateFileError("not a SenseLink state file (no 'plugs' mapping)")
        if state.get("version") != STATE_VERSION:
            raise StateFileError(f"unknown state file version {state.get('version')!r}")
        restored = []
        for plug_id, saved in state["plugs"].items():
            counter = self.counters.get(plug_id)
            if counter is None:
                continue
            problem = check_plug_state(saved)
            if problem:
                log.warn("Energy counters of plug {plug} in the state file are unusable "
                         "({problem}); starting them at zero", plug=plug_id, problem=problem)
                continue
            counter.restore(saved)
            restored.append(plug_id)
        if restored:
            self.refresh_replies()
        return restored


class StateFileError(ValueError):
    """The state file exists but cannot be used."""


def _energy(value) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and value >= 0)


def check_plug_state(saved) -> str:
    """What is wrong with one plug's saved counters, or an empty string."""
    if not isinstance(saved, dict):
        return "not a mapping"
    if not _energy(saved.get("total_wh")):
        return "total_wh is not a number >= 0"
    for name, length in (("days", 10), ("months", 7)):
        table = saved.get(name)
        if not isinstance(table, dict):
            return f"{name} is not a mapping"
        for key, wh in table.items():
            if not isinstance(key, str) or len(key) != length or not _energy(wh):
                return f"bad {name} entry {key!r}"
            try:
                date.fromisoformat(key if length == 10 else key + "-01")
            except ValueError:
                return f"bad {name} entry {key!r}"
    return ""


def read_state(path):
    """The parsed state file, or None when it does not exist; L{StateFileError} if unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateFileError(f"cannot read: {e.strerror or e}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise StateFileError(f"not JSON ({e.__class__.__name__})") from None


def write_state(path, state: dict):
    """Write C{state} atomically: a temporary file in the same directory, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    data = json.dumps(state, separators=(",", ":"), sort_keys=True).encode("utf-8")
    fd, temporary = tempfile.mkstemp(prefix=".senselink-state-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


class EnergyService(Service):
    """Loads the counters on start, saves them periodically and on stop.

    Also refreshes the cached Sense replies every L{REFRESH_INTERVAL} seconds
    so their C{total} follows the counters.
    """

    name = "energy"

    def __init__(self, meter: EnergyMeter, path, clock, *, save_interval=SAVE_INTERVAL,
                 refresh_interval=REFRESH_INTERVAL):
        self.meter = meter
        self.path = os.path.abspath(path)
        self.clock = clock
        self.save_interval = save_interval
        self.refresh_interval = refresh_interval
        self._save_loop = None
        self._refresh_loop = None
        self.saves = 0
        self._failing = False    # the last save failed (logged once until one succeeds)

    def startService(self):
        super().startService()
        self.load()
        self._save_loop = self._start(self.save, self.save_interval)
        self._refresh_loop = self._start(self.meter.refresh_replies, self.refresh_interval)

    def _start(self, function, interval):
        loop = LoopingCall(function)
        loop.clock = self.clock
        loop.start(interval, now=False).addErrback(
            lambda failure: log.failure("Energy counter task stopped", failure))
        return loop

    def stopService(self):
        super().stopService()
        for loop in (self._save_loop, self._refresh_loop):
            if loop is not None and loop.running:
                loop.stop()
        self._save_loop = self._refresh_loop = None
        self.save()

    def load(self):
        try:
            state = read_state(self.path)
            if state is None:
                log.info("No energy state file at {path}; counters start at zero", path=self.path)
                return
            restored = self.meter.restore(state)
        except StateFileError as e:
            aside = self.path + ".corrupt"
            try:
                os.replace(self.path, aside)
                kept = f"; kept as {aside}"
            except OSError:
                kept = ""
            log.warn("Energy state file {path} is unusable ({reason}){kept}; counters start "
                     "at zero", path=self.path, reason=str(e), kept=kept)
            return
        log.info("Energy counters restored from {path} for {n} of {total} plugs",
                 path=self.path, n=len(restored), total=len(self.meter.counters))

    def save(self):
        """Write the counters now; a failure is logged, never raised."""
        try:
            write_state(self.path, self.meter.snapshot())
        except (OSError, TypeError, ValueError) as e:
            if not self._failing:
                self._failing = True
                log.error("Cannot write energy state file {path}: {reason} (the counters keep "
                          "counting; retried every {interval:.0f} s)", path=self.path,
                          reason=getattr(e, "strerror", None) or str(e),
                          interval=self.save_interval)
            return False
        self.saves += 1
        if self._failing:
            self._failing = False
            log.info("Energy state file {path} written again", path=self.path)
        log.debug("Energy counters saved to {path}", path=self.path)
        return True
