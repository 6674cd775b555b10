"""The power history the web page shows (10 minutes of changes, 24 hours of minutes), kept
across a restart: a section of the state file (C{history}), beside the energy counters.

Only while the web interface keeps a history (a C{web} section) is there anything to
keep or to put back. The state file is outside input: only the entries of plugs
configured are read, each checked on its own (points finite, from 0 to the plug's
ceiling, times in the years 2000 to 2100 and in order, no more than the windows hold);
a bad entry costs only its plug its history, named in one line. Points older than the
windows are dropped when loaded. The histories of at most L{MAX_PLUGS} plugs (in config
order) are kept, so that the file stays well under its size cap.
"""

import math

from senselink.energy.statefile import state_time
from senselink.excerpt import excerpt
from senselink.history import MINUTES, RECENT_POINTS

SECTION = "history"          # the state file's key of this section
MAX_PLUGS = 100              # plugs whose history is kept (about 70 KB each at most)
MAX_LINES = 20               # unusable entries named one by one; the rest are counted
SLACK = 1e-6                 # watts kept as 32-bit floats may round a little above a ceiling
ROUNDING = 0.01              # watts are kept to 2 decimals: a mean may pass its min or max by that


def ceiling(plug, max_plug_watts) -> float:
    """The most watts C{plug} can hold: C{max_plug_watts}, or its elements' added up."""
    elements = getattr(plug, "elements", None)
    if elements:
        return sum(ceiling(element, max_plug_watts) for element in elements)
    return float(max_plug_watts)


def _number(value, low, high) -> bool:
    return (not isinstance(value, bool) and isinstance(value, (int, float))
            and math.isfinite(value) and low <= value <= high)


def check_points(points, most, width, top, minutes=False) -> str:
    """What is wrong with a list of points (C{[time, watts...]}), or an empty string."""
    name = "minutes" if minutes else "recent"
    if not isinstance(points, list) or len(points) > most:
        return f"{name} is not a list of at most {most} points"
    before = None
    for point in points:
        if not isinstance(point, list) or len(point) not in width:
            return f"a point of {name} is not a list of {' or '.join(map(str, width))} numbers"
        t = point[0]
        if not state_time(t) or (minutes and t % 60):
            return f"a time of {name} is not a {'minute' if minutes else 'time'} in the " \
                   f"years 2000 to 2100"
        if before is not None and (t <= before if minutes else t < before):
            return f"the times of {name} are not in order"
        before = t
        if not all(_number(w, 0, top) for w in point[1:]):
            return f"a value of {name} is not a number of watts from 0 to {top:g}"
        if len(point) == 4 and not point[1] - ROUNDING <= point[2] <= point[3] + ROUNDING:
            return "a minute's min, mean and max are not in order"
    return ""


def check_entry(entry, top) -> str:
    """What is wrong with one plug's saved history, or an empty string."""
    if not isinstance(entry, dict):
        return "not a mapping"
    return (check_points(entry.get("recent"), RECENT_POINTS, (2,), top)
            or check_points(entry.get("minutes"), MINUTES, (2, 4), top, minutes=True))


class SavedHistory:
    """The state file's section of the web interface's power history.

    C{hub}: the plugs in use (a L{senselink.plughub.PlugHub}); C{history()}: the
    web interface's L{senselink.history.PowerHistory}, or None while it keeps none;
    C{max_plug_watts()}: the running config's ceiling of a plug. Both are read at each
    save and load, so that a reload's changes apply.
    """

    name = SECTION

    def __init__(self, hub, clock, history, max_plug_watts):
        self.hub = hub
        self.clock = clock
        self.history = history
        self.max_plug_watts = max_plug_watts

    def snapshot(self) -> dict:
        history = self.history()
        if history is None:
            return {}
        now = self.clock.seconds()
        out = {}
        for plug in self.hub.plugs:
            if len(out) >= MAX_PLUGS:
                break
            kept = history.get(plug.id)
            if kept is not None:
                recent, minutes = kept.saved(now)
                out[plug.id] = {"recent": recent, "minutes": minutes}
        return out

    def restore(self, section):
        """Read the state file's section (None: absent); the words of each unusable entry."""
        history = self.history()
        if section is None or history is None:
            return []
        if not isinstance(section, dict):
            return [f"The power history in the state file is unusable (section {SECTION!r} "
                    f"is not a mapping); the web page's charts start empty"]
        now = self.clock.seconds()
        most = self.max_plug_watts()
        bad, skipped = [], 0
        for plug in self.hub.plugs:
            entry, kept = section.get(plug.id), history.get(plug.id)
            if entry is None or kept is None:
                continue
            problem = check_entry(entry, ceiling(plug, most) * (1 + SLACK))
            if problem:
                if len(bad) < MAX_LINES:
                    bad.append(f"The power history of plug {excerpt(plug.id)} in the state "
                               f"file is unusable ({problem}); it starts empty")
                else:
                    skipped += 1
                continue
            minutes = [(p[0], p[1], p[1], p[1]) if len(p) == 2 else tuple(p)
                       for p in entry["minutes"]]
            kept.load([tuple(p) for p in entry["recent"]], minutes, now)
        if skipped:
            bad.append(f"{skipped} more power histories in the state file are unusable")
        return bad
