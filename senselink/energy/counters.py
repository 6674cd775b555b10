"""Energy counters: each plug integrates its watts over time into kWh.

A L{PlugEnergy} keeps a plug's C{total} (what C{emeter.get_realtime}
reports, in the Sense reply too) and its energy per local day and per local
month (C{get_daystat}/C{get_monthstat}). Power is piecewise constant between
changes, so integrating exactly needs one step per change: the meter hears of
every change of a plug (see L{senselink.plughub}), and readers
add the energy of the interval still open. Intervals crossing local midnight
are split between the days.
"""

from datetime import date, datetime, time as dtime, timedelta

from senselink.energy.statefile import STATE_VERSION, StateFileError, check_plug_state
from senselink.excerpt import excerpt

KEEP_DAYS = 400              # days of per-day energy kept
MAX_SPLITS = 1000            # bound on day boundaries handled in one integration step


def _local(seconds, tz):
    if tz is not None:
        return datetime.fromtimestamp(seconds, tz)
    return datetime.fromtimestamp(seconds)


def _next_midnight(moment: datetime) -> float:
    following = datetime.combine(moment.date() + timedelta(days=1), dtime(0), moment.tzinfo)
    return following.timestamp()


class PlugEnergy:
    """The energy counters of one plug, fed by the plug's changes."""

    __slots__ = ("clock", "tz", "total_wh", "days", "months", "_watts", "_since",
                 "_on", "on_since", "_today", "saved_wh")

    def __init__(self, plug, clock, tz=None):
        self.clock = clock
        self.tz = tz
        self._today = None
        self.total_wh = 0.0
        self.saved_wh = None  # total_wh as the state file has it (None: never saved or loaded)
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

    def changed(self, plug, now=None):
        """Observer of the plug: its power or state changed, close the interval at the old value.

        @param now: the clock's time, when the caller has just read it.
        """
        if now is None:
            now = self.clock.seconds()
        self.advance(now)
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

    def figures(self, now=None):
        """C{(today, this month, total)} in kWh at C{now} (local days), open interval included."""
        if now is None:
            now = self.clock.seconds()
        self.advance(now)
        day = _local(now, self.tz).date().isoformat()
        return (self.days.get(day, 0.0) / 1000.0, self.months.get(day[:7], 0.0) / 1000.0,
                self.total_wh / 1000.0)

    def daily(self, count, now=None):
        """C{[("YYYY-MM-DD", kWh), ...]} of the last C{count} local days, today last."""
        if now is None:
            now = self.clock.seconds()
        self.advance(now)
        today = _local(now, self.tz).date()
        keys = ((today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1))
        return [(key, self.days.get(key, 0.0) / 1000.0) for key in keys]

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
        """Add saved counters (validated by L{check_plug_state}: bounded numbers) to these."""
        self.total_wh += float(saved["total_wh"])
        self.saved_wh = float(saved["total_wh"])
        for key, wh in saved["days"].items():
            self.days[key] = self.days.get(key, 0.0) + float(wh)
        for key, wh in saved["months"].items():
            self.months[key] = self.months.get(key, 0.0) + float(wh)


class EnergyMeter:
    """The counters of every plug, by plug id; a subscriber of the plug hub
    (L{senselink.plughub}): L{changed} per plug change, L{watch} per new plug set.

    Counters outlive their plugs: a plug that a reload rebuilt under the same
    id (or removed and added again) goes on counting where it stopped.
    """

    def __init__(self, clock, tz=None):
        self.clock = clock
        self.tz = tz
        self.counters = {}
        self.kept = False        # a state file keeps the counters (see keep)

    def keep(self, kept=True):
        """Whether a state file keeps the counters from now on (its service says so)."""
        self.kept = kept

    def mark_saved_wh(self, plug_id, wh):
        """Plug C{plug_id}'s counter has C{wh} in the state file now."""
        counter = self.counters.get(plug_id)
        if counter is not None:
            counter.saved_wh = wh

    def watch(self, plugs):
        """Count C{plugs} (a L{senselink.plugs.PlugSet}) from now on: a plug new by its id
        gets counters, a kept or rebuilt one closes its interval at its old value."""
        now = self.clock.seconds()
        for plug in plugs:
            counter = self.counters.get(plug.id)
            if counter is None:
                self.counters[plug.id] = PlugEnergy(plug, self.clock, self.tz)
            else:
                counter.changed(plug, now)    # the same plug, or one rebuilt under its id

    def changed(self, plug, now=None):
        """A plug changed (the hub's C{changed}): its counters close the interval."""
        counter = self.counters.get(plug.id)
        if counter is not None:
            counter.changed(plug, now)

    def __getitem__(self, plug_id) -> PlugEnergy:
        return self.counters[plug_id]

    def get(self, plug_id):
        return self.counters.get(plug_id)

    def total_kwh(self, plug) -> float:
        """Energy counted so far for C{plug}, in kWh (0 for a plug without counters)."""
        counter = self.counters.get(plug.id)
        return counter.total_kwh if counter is not None else 0.0

    def kept_kwh(self, plug):
        """kWh of C{plug} that a crash cannot take back: as last saved in (or loaded from)
        the state file; None before its first save or load; all of them without one."""
        counter = self.counters.get(plug.id)
        if not self.kept:
            return counter.total_kwh if counter is not None else 0.0
        if counter is None or counter.saved_wh is None:
            return None
        return counter.saved_wh / 1000.0

    def mark_saved(self, snapshot):
        """The counters of C{snapshot} (L{snapshot}) are in the state file now."""
        for plug_id, saved in snapshot["plugs"].items():
            self.mark_saved_wh(plug_id, saved["total_wh"])

    def advance_all(self):
        now = self.clock.seconds()
        for counter in self.counters.values():
            counter.advance(now)

    def snapshot(self) -> dict:
        self.advance_all()
        return {"version": STATE_VERSION, "saved": self.clock.seconds(),
                "plugs": {plug_id: c.snapshot() for plug_id, c in self.counters.items()}}

    def restore(self, state: dict):
        """Load counters from a parsed state file; returns C{(restored, bad)}: the ids
        restored, and C{(id, problem)} of each entry that is unusable.

        Raises L{StateFileError} when the document is not a state file.
        Every entry is checked on its own: a bad one costs only its plug its
        counters. Entries of plugs without counters are checked, not restored.
        """
        if not isinstance(state, dict) or not isinstance(state.get("plugs"), dict):
            raise StateFileError("not a SenseLink state file (no 'plugs' mapping)")
        if state.get("version") != STATE_VERSION:
            raise StateFileError(f"unknown state file version {excerpt(state.get('version'))}")
        restored, bad = [], []
        for plug_id, saved in state["plugs"].items():
            problem = check_plug_state(saved)
            if problem:
                bad.append((plug_id, problem))
                continue
            counter = self.counters.get(plug_id)
            if counter is not None:
                counter.restore(saved)
                restored.append(plug_id)
        return restored, bad
