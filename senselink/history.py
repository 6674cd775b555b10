"""Power history: each plug's recent watts, in a fixed amount of memory per plug.

An observer of plugs, as the energy meter is. Per plug, L{PlugHistory} keeps:

  - the last L{RECENT_SECONDS} (10 minutes) at change resolution: a ring of
    L{RECENT_POINTS} C{(time, watts)} points; a change less than
    L{RECENT_SPACING} seconds after the point before it replaces that point's
    value, so 10 minutes always fit;
  - the last L{MINUTES} (24 hours) at 1-minute resolution: minimum, mean
    (time-weighted) and maximum watts of each minute.

Both live in preallocated C{array}s (see L{BYTES_PER_PLUG}); nothing grows
with time or with the rate of changes. Minutes without a change are filled
in lazily, when the next change comes or someone reads.
"""

from array import array

RECENT_SECONDS = 600.0       # the change-resolution window
RECENT_POINTS = 600          # points kept for it ...
RECENT_SPACING = RECENT_SECONDS / RECENT_POINTS   # ... so changes closer than this merge
MINUTES = 24 * 60            # the 1-minute window
EMPTY = -(2 ** 31)          # the minute number of a slot that holds nothing

# The arrays of one plug: recent times (d) and watts (f); per minute its number (i)
# and min, mean, max (f).
BYTES_PER_PLUG = (RECENT_POINTS * (array("d").itemsize + array("f").itemsize)
                  + MINUTES * (array("i").itemsize + 3 * array("f").itemsize))


class PlugHistory:
    """The recent watts of one plug; fed with L{record}, read with L{recent} and L{minutes}."""

    __slots__ = ("times", "values", "head", "count", "minute_ids", "mins", "means", "maxs",
                 "watts", "since", "minute", "minute_from", "minute_ws", "minute_min", "minute_max")

    def __init__(self, watts, now):
        self.times = array("d", bytes(RECENT_POINTS * array("d").itemsize))
        self.values = array("f", bytes(RECENT_POINTS * array("f").itemsize))
        self.head = 0            # the slot of the next point
        self.count = 0           # points held
        self.minute_ids = array("i", [EMPTY]) * MINUTES
        self.mins = array("f", bytes(MINUTES * array("f").itemsize))
        self.means = array("f", bytes(MINUTES * array("f").itemsize))
        self.maxs = array("f", bytes(MINUTES * array("f").itemsize))
        self.watts = float(watts)
        self.since = now
        self._start_minute(int(now // 60), now)
        self._point(now, self.watts)

    # -- feeding --

    def record(self, watts, now):
        """The plug's watts became C{watts} at C{now}."""
        if now < self.since:
            now = self.since                     # a clock that went backwards: no gap
        self.advance(now)
        self.watts = watts = float(watts)
        if watts < self.minute_min:
            self.minute_min = watts
        if watts > self.minute_max:
            self.minute_max = watts
        self._point(now, watts)

    def _point(self, now, watts, merge=True):
        if merge and self.count:
            last = (self.head - 1) % RECENT_POINTS
            if now - self.times[last] < RECENT_SPACING:
                self.values[last] = watts        # too close to the point before: merge
                return
        self.times[self.head] = now
        self.values[self.head] = watts
        self.head = (self.head + 1) % RECENT_POINTS
        if self.count < RECENT_POINTS:
            self.count += 1

    def advance(self, now):
        """Book the current watts up to C{now}, closing the minutes that ended."""
        if now <= self.since:
            return
        watts = self.watts
        minute = int(now // 60)
        if minute != self.minute:
            # Close the open minute, then the whole minutes in between (at most a day of them).
            end = (self.minute + 1) * 60.0
            self.minute_ws += watts * (end - self.since)
            self._close(self.minute, self.minute_ws / max(end - self.minute_from, 1e-9))
            first = max(self.minute + 1, minute - MINUTES)
            for gap in range(first, minute):
                slot = gap % MINUTES
                self.minute_ids[slot] = gap
                self.mins[slot] = self.means[slot] = self.maxs[slot] = watts
            self._start_minute(minute, minute * 60.0)
        self.minute_ws += watts * (now - self.since)
        self.since = now

    def _start_minute(self, minute, start):
        self.minute = minute
        self.minute_from = start
        self.minute_ws = 0.0
        self.minute_min = self.minute_max = self.watts
        self.since = start

    def _close(self, minute, mean):
        slot = minute % MINUTES
        self.minute_ids[slot] = minute
        self.mins[slot] = self.minute_min
        self.means[slot] = mean
        self.maxs[slot] = self.minute_max

    # -- kept across a restart (L{senselink.savedhistory}) --

    def saved(self, now):
        """C{(recent, minutes)} to keep: the points held (C{[time, watts]}) and the minutes
        held (C{[start, min, mean, max]}, or C{[start, watts]} when the three are equal)."""
        recent = []
        for i in range(self.count):
            slot = (self.head - self.count + i) % RECENT_POINTS
            recent.append([round(self.times[slot], 3), round(float(self.values[slot]), 2)])
        minutes = []
        for start, low, mean, high in self.minutes(now):
            low, mean, high = round(low, 2), round(mean, 2), round(high, 2)
            minutes.append([int(start), mean] if low == mean == high
                           else [int(start), low, mean, high])
        return recent, minutes

    def load(self, recent, minutes, now):
        """Put back C{recent} (C{(time, watts)}) and C{minutes} (C{(start, min, mean, max)}),
        checked and oldest first, before the value held now (never merged into a point kept):
        what is beyond the windows, and the minute in progress, is dropped."""
        self.head = self.count = 0
        for t, watts in recent:
            if now - RECENT_SECONDS <= t < now:
                self._point(t, watts)
        self._point(now, self.watts, merge=False)    # the value now, whatever came before
        current = int(now // 60)
        for start, low, mean, high in minutes:
            minute = int(start // 60)
            if current - MINUTES < minute < current:
                slot = minute % MINUTES
                self.minute_ids[slot] = minute
                self.mins[slot], self.means[slot], self.maxs[slot] = low, mean, high

    # -- reading --

    def recent(self, now, seconds=RECENT_SECONDS):
        """C{[(time, watts), ...]} of the last C{seconds} (at most 10 minutes), oldest first.

        The first point is the value held at the start of the window (at that time).
        """
        start = now - min(seconds, RECENT_SECONDS)
        out = []
        before = None
        for i in range(self.count):
            slot = (self.head - self.count + i) % RECENT_POINTS
            t = self.times[slot]
            if t <= start:
                before = float(self.values[slot])
                continue
            if t > now:
                break
            out.append((t, float(self.values[slot])))
        if before is not None:
            out.insert(0, (start, before))
        return out

    def minutes(self, now):
        """C{[(minute_start, min, mean, max), ...]} of the last 24 hours, oldest first.

        The minute in progress comes last, with its mean so far.
        """
        self.advance(now)
        current = int(now // 60)
        out = []
        for minute in range(current - MINUTES + 1, current):
            slot = minute % MINUTES
            if self.minute_ids[slot] == minute:
                out.append((minute * 60.0, float(self.mins[slot]), float(self.means[slot]),
                            float(self.maxs[slot])))
        elapsed = now - self.minute_from
        mean = self.minute_ws / elapsed if elapsed > 0 else self.watts
        out.append((current * 60.0, self.minute_min, mean, self.minute_max))
        return out


class PowerHistory:
    """The histories of every plug, by plug id; a subscriber of the plug hub
    (L{senselink.plughub}) while it records (L{follow} to L{stop}).

    L{watch} moves it to a new plug set (a reload): plugs that stay (by id)
    keep their history, the histories of removed plugs are dropped.
    """

    def __init__(self, clock):
        self.clock = clock
        self.plugs = {}          # plug id -> PlugHistory
        self.subscription = None

    def follow(self, hub):
        """Record the plugs of C{hub} (a L{senselink.plughub.PlugHub}) until L{stop}."""
        self.subscription = hub.subscribe(changed=self.changed, replaced=self.watch)

    def watch(self, plugs):
        """Record C{plugs} (a L{senselink.plugs.PlugSet}) from now on, not the previous set."""
        now = self.clock.seconds()
        kept = {}
        for plug in plugs:
            history = self.plugs.get(plug.id)
            if history is None:
                history = PlugHistory(plug.watts, now)
            elif history.watts != plug.watts:
                history.record(plug.watts, now)      # rebuilt under its id with another value
            kept[plug.id] = history
        self.plugs = kept

    def changed(self, plug, now):
        """A plug changed (the hub's C{changed})."""
        history = self.plugs.get(plug.id)
        if history is not None:
            history.record(plug.watts, now)

    def get(self, plug_id):
        return self.plugs.get(plug_id)

    def __getitem__(self, plug_id) -> PlugHistory:
        return self.plugs[plug_id]

    def stop(self):
        """Stop recording: leave the hub and drop every history."""
        if self.subscription is not None:
            self.subscription.cancel()
            self.subscription = None
        self.plugs = {}
