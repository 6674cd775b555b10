"""Values set at run time: the last value and on/off of each mutable plug, across restarts.

A value set through the daemon's API (the web API, C{Daemon.set_power},
C{Daemon.switch}) is recorded here and kept in the state file (section
C{values}, beside the energy counters); at start, and at a reload for a
plug rebuilt or reset from the config, a plug that still exists, is still
mutable and has C{restore: true} (the default) gets it back. A plug with
C{restore: false} starts from its C{power} and its value is not kept.

The state file is outside input: each entry is checked on its own against
the bounds declared here, and a bad one costs only its plug its value.
"""

from senselink.config.scalars import MAX_WATTS
from senselink.energy.statefile import state_time
from senselink.excerpt import excerpt

SECTION = "values"           # the state file's key of this section
MAX_ENTRIES = 10_000         # entries read from the state file; more are unusable
MAX_LINES = 20               # unusable entries named one by one; the rest are counted


def check_value(entry) -> str:
    """What is wrong with one plug's saved value, or an empty string."""
    if not isinstance(entry, dict):
        return "not a mapping"
    watts = entry.get("watts")
    if isinstance(watts, bool) or not isinstance(watts, (int, float)) or not 0 <= watts <= MAX_WATTS:
        return f"watts is not a number from 0 to {MAX_WATTS:g}"
    if entry.get("on") not in (True, False, None):
        return "on is not true, false or null"
    if not state_time(entry.get("set")):
        return "set is not a time in the years 2000 to 2100"
    return ""


def restores(plug, plug_config) -> bool:
    """Whether C{plug} takes back its value set at run time: mutable, with C{restore: true}."""
    return bool(plug.settable and getattr(plug_config.settings, "restore", False))


class RunValues:
    """The last value set at run time of each mutable plug: C{id -> (watts, on, set time)}."""

    name = SECTION

    def __init__(self):
        self.values = {}

    def record(self, plug_id, watts, on, now):
        self.values[plug_id] = (float(watts), on, float(now))

    def keep_only(self, plugs, config):
        """Forget the values of plugs gone, no longer mutable or set to C{restore: false}."""
        for plug_id in list(self.values):
            plug = plugs.get(plug_id)
            if plug is None or not restores(plug, config.plugs[plug_id]):
                del self.values[plug_id]

    def apply(self, plugs, config, ids=None):
        """Give the plugs of C{ids} (default all of C{plugs}) that restore their value back;
        returns C{(restored, refused)}: C{(id, watts, set time)} of each value restored, and
        C{(id, words)} of each kept value above the config's C{max_plug_watts}."""
        restored, refused = [], []
        ceiling = config.settings.max_plug_watts
        for plug_id in (plugs.by_id if ids is None else ids):
            value = self.values.get(plug_id)
            plug = plugs.get(plug_id)
            if value is None or plug is None or not restores(plug, config.plugs[plug_id]):
                continue
            watts, on, when = value
            if watts > ceiling:
                refused.append((plug_id, f"{watts:g} W is above max_plug_watts ({ceiling:g} W)"))
                del self.values[plug_id]
                continue
            plug.set_power(watts, on)
            restored.append((plug_id, watts, when))
        return restored, refused

    # -- the state file's section --

    def snapshot(self) -> dict:
        return {plug_id: {"watts": watts, "on": on, "set": when}
                for plug_id, (watts, on, when) in self.values.items()}

    def restore(self, section):
        """Read the state file's section (None: absent); the words of each unusable entry."""
        if section is None:
            return []
        if not isinstance(section, dict):
            return [f"Values set at run time in the state file are unusable (section "
                    f"{SECTION!r} is not a mapping); mutable plugs start from their power"]
        bad, skipped = [], 0
        for index, (plug_id, entry) in enumerate(section.items()):
            problem = "too many entries" if index >= MAX_ENTRIES else check_value(entry)
            if problem:
                if len(bad) < MAX_LINES:
                    bad.append(f"The value set at run time of plug {excerpt(plug_id)} in the "
                               f"state file is unusable ({problem}); it starts from its power")
                else:
                    skipped += 1
                continue
            self.values[plug_id] = (float(entry["watts"]), entry["on"], float(entry["set"]))
        if skipped:
            bad.append(f"{skipped} more values set at run time in the state file are unusable")
        return bad
